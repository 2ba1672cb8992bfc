import TroveHTTP
import Testing
import TroveCore
import TroveRules

@Suite struct HeaderPolicyTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins:
          api:
            url: http://origin.internal:8000
            headers:
              X-Api-Key: {env: API_KEY}
              Accept: application/json
          keep:
            url: http://origin.internal:8000
            preserve_host: true
        defaults: {origin: api}
        clients: {hosts: [shop.example.com]}
        routes:
          - {name: a, match: GET /a, cache: {ttl: 1m, statuses: [200, 404], max_body: 10B}}
          - {name: b, match: GET /b, cache: {ttl: 1m, override_cache_control: true}}
        """, file: "h.yaml", environment: ["API_KEY": "secret", "TROVE_ADMIN_TOKEN": "t"])

    static let api = rules.origin(named: "api")!
    static let keep = rules.origin(named: "keep")!
    static let strict = rules.route(named: "a")!.cachePolicy!
    static let lenient = rules.route(named: "b")!.cachePolicy!

    private func names(_ headers: [Header]) -> [String] { headers.map(\.name) }
    private func value(_ headers: [Header], _ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// A header that could not be written back as it is never reaches a client (NIO's per-answer validation is
    /// off on the listener because of this).
    @Test func dropsHeadersThatCannotBeWrittenBack() {
        let out = HeaderPolicy.responseHeaders([
            Header("Content-Type", "application/json"), Header("Bad Name", "x"), Header("", "x"), Header("X-Split", "a\r\nInjected: 1"),
            Header("X-Nul", "a\u{0}b"), Header("X-Fine", "tab\tand spaces, ünïcödé"),
        ])
        #expect(names(out) == ["Content-Type", "X-Fine"])
        #expect(HeaderPolicy.storedHeaders([Header("X-Lf", "a\nb"), Header("ETag", "\"1\"")]).map(\.name) == ["ETag"])
    }

    @Test func headerNamesCompareWithoutCase() {
        #expect(HTTPSyntax.name("Cache-Status", is: "cache-status"))
        #expect(HTTPSyntax.name("X-CACHE", is: "x-cache"))
        #expect(!HTTPSyntax.name("X-Cache2", is: "x-cache"))
        #expect(!HTTPSyntax.name("X-Cach", is: "x-cache"))
        #expect(HTTPSyntax.isToken("X-Api-Key") && !HTTPSyntax.isToken("a b") && !HTTPSyntax.isToken("é") && !HTTPSyntax.isToken(""))
    }

    /// Hop-by-hop headers, those `Connection` names, and Content-Length never reach the origin.
    @Test func dropsHopByHopHeaders() {
        let out = HeaderPolicy.originRequestHeaders(client: [
            Header("Host", "shop.example.com"), Header("Connection", "keep-alive, X-Secret-Hop"),
            Header("Keep-Alive", "timeout=5"), Header("X-Secret-Hop", "1"), Header("Transfer-Encoding", "chunked"),
            Header("TE", "trailers"), Header("Upgrade", "h2c"), Header("Content-Length", "12"),
            Header("Proxy-Authorization", "Basic x"), Header("X-Kept", "yes"),
        ], clientAddress: "10.0.0.9", origin: Self.api, forStorage: false)
        #expect(names(out).filter { ["connection", "keep-alive", "x-secret-hop", "transfer-encoding", "te", "upgrade",
            "content-length", "proxy-authorization"].contains($0.lowercased()) }.isEmpty)
        #expect(value(out, "X-Kept") == "yes")
    }

    /// The origin's Host is sent unless the origin preserves the forwarded host; X-Forwarded-* are Trove's: the
    /// host is the one the rules fix (never the client's), a trusted proxy's X-Forwarded-For is appended to.
    @Test func forwardingHeaders() {
        let client = [Header("Host", "evil.example"), Header("X-Forwarded-For", "203.0.113.7"), Header("X-Forwarded-Host", "evil.example")]
        let host = Self.rules.clients.forwardedHost(for: "evil.example")
        #expect(host == "shop.example.com", "one host answered: the forwarded host is fixed")
        let out = HeaderPolicy.originRequestHeaders(client: client, clientAddress: "10.0.0.9", origin: Self.api, forStorage: false,
            forwardedHost: host)
        #expect(value(out, "Host") == "origin.internal:8000")
        #expect(value(out, "X-Forwarded-For") == "203.0.113.7, 10.0.0.9")
        #expect(value(out, "X-Forwarded-Proto") == "http")
        #expect(out.filter { $0.name.lowercased() == "x-forwarded-host" }.map(\.value) == ["shop.example.com"])
        let kept = HeaderPolicy.originRequestHeaders(client: client, clientAddress: "10.0.0.9", origin: Self.keep, forStorage: false,
            forwardedHost: host)
        #expect(value(kept, "Host") == "shop.example.com")
        #expect(out.filter { $0.name.lowercased() == "host" }.count == 1)
        // No forwarded host (any host answered): the origin hears of none.
        let none = HeaderPolicy.originRequestHeaders(client: client, clientAddress: "10.0.0.9", origin: Self.api, forStorage: false)
        #expect(value(none, "X-Forwarded-Host") == nil)
    }

    /// An untrusted client's forwarding headers are removed before anything reads the request; others stay, in
    /// order, and a request without any is returned as it was.
    @Test func forwardingHeadersFromUntrustedClients() {
        let client = [
            Header("Host", "a"), Header("X-Forwarded-Proto", "https"), Header("Forwarded", "for=1.2.3.4;host=evil"),
            Header("X-Real-IP", "1.2.3.4"), Header("X-Original-URL", "/admin"), Header("X-Trace", "t"), Header("FROM", "me"),
            Header("x-forwarded-for", "1.2.3.4"),
        ]
        #expect(HeaderPolicy.withoutForwarding(client).map(\.name) == ["Host", "X-Trace", "FROM"])
        let plain = [Header("Host", "a"), Header("Accept", "*/*")]
        #expect(HeaderPolicy.withoutForwarding(plain) == plain)
        #expect(HeaderPolicy.withoutForwarding(client, trustedProxy: true).map(\.name)
            == ["Host", "X-Forwarded-Proto", "Forwarded", "X-Trace", "FROM", "x-forwarded-for"])
    }

    /// Expect is Trove's to meet (it answers 100 Continue itself): never forwarded (#12, finding 12).
    @Test func expectIsNotForwarded() {
        let out = HeaderPolicy.originRequestHeaders(client: [Header("Host", "a"), Header("Expect", "100-continue")],
            clientAddress: nil, origin: Self.api, forStorage: false)
        #expect(value(out, "Expect") == nil)
    }

    /// A method override never reaches the origin with a fetch whose answer is stored.
    @Test func methodOverridesAreNotStored() {
        let client = [Header("Host", "a"), Header("X-HTTP-Method-Override", "DELETE")]
        let stored = HeaderPolicy.originRequestHeaders(client: client, clientAddress: nil, origin: Self.api, forStorage: true)
        #expect(value(stored, "X-HTTP-Method-Override") == nil)
        let passed = HeaderPolicy.originRequestHeaders(client: client, clientAddress: nil, origin: Self.api, forStorage: false)
        #expect(value(passed, "X-HTTP-Method-Override") == "DELETE")
    }

    /// The origin's configured headers replace the client's. For storage, Accept-Encoding is Trove's own (gzip,
    /// whatever the client said) and the client's conditional headers stay behind; passed through, they go.
    @Test func configuredHeadersAndEncoding() {
        let client = [Header("Accept", "text/html"), Header("X-Api-Key", "forged"), Header("Accept-Encoding", "br"),
            Header("If-None-Match", "\"v1\""), Header("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")]
        let out = HeaderPolicy.originRequestHeaders(client: client, clientAddress: nil, origin: Self.api, forStorage: true)
        #expect(out.filter { $0.name.lowercased() == "accept" }.map(\.value) == ["application/json"])
        #expect(out.filter { $0.name.lowercased() == "x-api-key" }.map(\.value) == ["secret"])
        #expect(out.filter { $0.name.lowercased() == "accept-encoding" }.map(\.value) == ["gzip"])
        #expect(value(out, "If-None-Match") == nil && value(out, "If-Modified-Since") == nil)
        let passed = HeaderPolicy.originRequestHeaders(client: client, clientAddress: nil, origin: Self.api, forStorage: false)
        #expect(value(passed, "Accept-Encoding") == "br")
        #expect(value(passed, "If-None-Match") == "\"v1\"")
    }

    /// Which clients get gzip as it is stored, and what a decoded answer's headers become.
    @Test func contentCodings() {
        func accepts(_ value: String?) -> Bool { ContentCoding.acceptsGzip(value.map { [Header("Accept-Encoding", $0)] } ?? []) }
        #expect(accepts("gzip, deflate, br"))
        #expect(accepts("br;q=1.0, gzip;q=0.8"))
        #expect(accepts("*"))
        #expect(accepts("X-GZIP"))
        #expect(!accepts("gzip;q=0"))
        #expect(!accepts("*, gzip;q=0"))
        #expect(!accepts("br, identity"))
        #expect(!accepts(nil), "no Accept-Encoding: decoded (many libraries send none and cannot decode)")
        #expect(ContentCoding.isGzip([Header("Content-Encoding", "gzip")]))
        #expect(!ContentCoding.isGzip([Header("Content-Encoding", "br")]))
        #expect(!ContentCoding.isGzip([Header("Content-Encoding", "gzip, br")]))
        #expect(!ContentCoding.isGzip([]))
        #expect(ContentCoding.decodedHeaders([Header("Content-Encoding", "gzip"), Header("ETag", "\"a\""), Header("X", "1")])
            == [Header("ETag", "W/\"a\""), Header("X", "1")])
        #expect(ContentCoding.varyingOnEncoding([Header("Vary", "Accept-Language")]) == [Header("Vary", "Accept-Language, Accept-Encoding")])
        #expect(ContentCoding.varyingOnEncoding([Header("vary", "accept-encoding")]) == [Header("vary", "accept-encoding")])
        #expect(ContentCoding.varyingOnEncoding([]) == [Header("Vary", "Accept-Encoding")])
    }

    /// What is stored leaves out Set-Cookie, Age and hop-by-hop headers.
    @Test func storedHeaders() {
        let stored = HeaderPolicy.storedHeaders([
            Header("Content-Type", "application/json"), Header("Set-Cookie", "a=1"), Header("Age", "30"),
            Header("Connection", "close"), Header("Content-Length", "5"), Header("Cache-Status", "origin; hit"),
        ])
        #expect(names(stored) == ["Content-Type", "Cache-Status"])
    }

    /// Each reason an answer must not be stored, and the route override that lifts only Cache-Control.
    @Test func refusals() {
        func refusal(_ status: Int, _ headers: [Header], length: Int = 5, policy: CachePolicy = Self.strict) -> HeaderPolicy.NotStored? {
            HeaderPolicy.refusal(status: status, headers: headers, bodyLength: length, policy: policy)
        }
        #expect(refusal(200, []) == nil)
        #expect(refusal(404, []) == nil)
        #expect(refusal(500, []) == .status)
        #expect(refusal(200, [], length: 11) == .tooLarge)
        #expect(refusal(200, [Header("Set-Cookie", "s=1")]) == .setCookie)
        #expect(refusal(200, [Header("Cache-Control", "max-age=60, no-store")]) == .noStore)
        #expect(refusal(200, [Header("cache-control", "Private")]) == .private)
        #expect(refusal(200, [Header("Vary", "*")]) == .varyStar)
        #expect(refusal(200, [Header("Cache-Control", "private")], policy: Self.lenient) == nil)
        #expect(refusal(200, [Header("Cache-Control", "no-store")], policy: Self.lenient) == nil)
        #expect(refusal(200, [Header("Set-Cookie", "s=1")], policy: Self.lenient) == .setCookie)
    }

    /// An entry answers only requests with the values its Vary headers had; Accept-Encoding is ignored.
    @Test func variants() {
        let variant = HeaderPolicy.variant(vary: [Header("Vary", "Accept, Accept-Encoding"), Header("vary", "X-Region")],
            request: [Header("Accept", "application/json")])
        #expect(variant == [Header("accept", "application/json"), Header("x-region", "")])
        #expect(HeaderPolicy.matches(variant: variant, request: [Header("ACCEPT", "application/json")]))
        #expect(!HeaderPolicy.matches(variant: variant, request: [Header("Accept", "text/html")]))
        #expect(!HeaderPolicy.matches(variant: variant, request: [Header("Accept", "application/json"), Header("X-Region", "eu")]))
    }

    /// Requests that say the same thing differently share a variant: field lines combined, whitespace around
    /// list members ignored, language tags compared without case. Order still matters.
    @Test func variantValuesAreNormalised() {
        let variant = HeaderPolicy.variant(vary: [Header("Vary", "Foo, Accept-Language")],
            request: [Header("Foo", "1, 2"), Header("Accept-Language", "en, de")])
        #expect(variant == [Header("foo", "1,2"), Header("accept-language", "en,de")])
        #expect(HeaderPolicy.matches(variant: variant, request: [Header("Foo", "1"), Header("foo", "2"), Header("Accept-Language", " EN ,   De")]))
        #expect(HeaderPolicy.matches(variant: variant, request: [Header("Foo", " 1,2 "), Header("Accept-Language", "en,de")]))
        #expect(!HeaderPolicy.matches(variant: variant, request: [Header("Foo", "2, 1"), Header("Accept-Language", "en, de")]))
        #expect(!HeaderPolicy.matches(variant: variant, request: [Header("Foo", "1, 2"), Header("Accept-Language", "de, en")]))
        #expect(!HeaderPolicy.matches(variant: variant, request: [Header("Foo", "1, 2")]), "absent is not empty-equal to a value")
        let empty = HeaderPolicy.variant(vary: [Header("Vary", "Foo")], request: [])
        #expect(HeaderPolicy.matches(variant: empty, request: []))
        #expect(!HeaderPolicy.matches(variant: empty, request: [Header("Foo", "1")]))
    }
}
