public import TroveHTTP
public import TroveRules

/// What happens to headers on the way through: which are dropped (hop-by-hop), which are added toward the
/// origin (`X-Forwarded-*`, `Host`, the origin's configured ones), and which are kept in a stored entry.
public enum HeaderPolicy {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus their relatives.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Hop-by-hop headers plus any the `Connection` header names.
    static func connectionHeaders(_ headers: [Header]) -> Set<String> {
        var names = hopByHop
        for header in headers where header.name.lowercased() == "connection" {
            for token in header.value.split(separator: ",") {
                names.insert(token.trimmingWhitespace().lowercased())
            }
        }
        return names
    }

    /// Headers that say where a request came from, or for what, as a proxy in front would set them. From a
    /// client that is not a trusted proxy they are lies until proved otherwise, and an origin that believes them
    /// (links built from `X-Forwarded-Host`, rewrites from `X-Original-URL`) would put the lie in a stored answer:
    /// Trove removes them before anything reads the request (route plans, keys, the origin request).
    static let forwarding: Set<String> = [
        "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-prefix",
        "x-forwarded-server", "x-forwarded-ssl", "x-forwarded-scheme", "x-real-ip", "x-client-ip", "true-client-ip",
        "x-original-url", "x-rewrite-url", "x-original-host", "x-host",
    ]

    /// Method overrides (`X-HTTP-Method-Override: DELETE` on a GET) make an origin run another method than the
    /// one Trove sees: never sent with a request whose answer is stored.
    static let methodOverrides: Set<String> = ["x-http-method-override", "x-http-method", "x-method-override"]

    /// What a trusted proxy says and Trove believes: where the request came from, and over what scheme.
    static let believedFromProxies: Set<String> = ["x-forwarded-for", "x-forwarded-proto", "forwarded"]

    /// The client's headers without the forwarding headers (see `forwarding`); from a trusted proxy
    /// (`trustedProxy`), without those but `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded`. Returns the
    /// same array, without copying, when there are none to remove (the common case).
    public static func withoutForwarding(_ headers: [Header], trustedProxy: Bool = false) -> [Header] {
        func isForwarding(_ header: Header) -> Bool {
            // Every such name starts with X or F: most headers are passed over without lower-casing them.
            guard let first = header.name.utf8.first, first | 0x20 == UInt8(ascii: "x") || first | 0x20 == UInt8(ascii: "f")
            else { return false }
            let name = header.name.lowercased()
            return forwarding.contains(name) && !(trustedProxy && believedFromProxies.contains(name))
        }
        guard headers.contains(where: isForwarding) else { return headers }
        return headers.filter { !isForwarding($0) }
    }

    /// The headers to send to the origin for a client request.
    ///
    /// - Hop-by-hop headers are dropped, and so is `Content-Length` (the client recomputes it).
    /// - `Host` is the origin's, unless the origin says `preserve_host`: then it is `forwardedHost`.
    /// - `X-Forwarded-For` gets the client's address appended; `X-Forwarded-Proto` is `http` unless a trusted
    ///   proxy said otherwise; `X-Forwarded-Host` is `forwardedHost` (the rules' `clients.hosts` decide it), never
    ///   the client's. Untrusted clients' forwarding headers were removed before (`withoutForwarding`).
    /// - Method overrides are dropped when the answer is to be stored.
    /// - For a fetch that will be stored, the client's `Accept-Encoding` is replaced by `gzip`: one entry, in
    ///   whatever coding the origin chose, serves every client (`ContentCoding` decodes it for those that do
    ///   not accept gzip); and the client's
    ///   conditional headers, so the origin answers with the whole representation to store (Trove answers the
    ///   client's conditions itself, from the entry, and sends its own validators when it revalidates).
    /// - The origin's configured headers replace the client's of the same name.
    public static func originRequestHeaders(
        client headers: [Header], clientAddress: String?, origin: Origin, forStorage: Bool, forwardedHost: String? = nil
    ) -> [Header] {
        let dropped = connectionHeaders(headers)
        var out: [Header] = []
        out.reserveCapacity(headers.count + 4)
        var forwardedFor: String?
        var hasProto = false
        let configured = Set(origin.headers.map { $0.name.lowercased() })
        for header in headers {
            let name = header.name.lowercased()
            // Expect is Trove's to meet (it sends 100 Continue itself), not the origin's.
            if dropped.contains(name) || name == "content-length" || name == "expect" || configured.contains(name) { continue }
            switch name {
            case "host", "x-forwarded-host":
                continue
            case "x-forwarded-for":
                forwardedFor = forwardedFor.map { $0 + ", " + header.value } ?? header.value
                continue
            case "x-forwarded-proto":
                hasProto = true
            case _ where forStorage && methodOverrides.contains(name):
                continue
            case "accept-encoding" where forStorage, "if-none-match" where forStorage, "if-modified-since" where forStorage,
                "if-match" where forStorage, "if-unmodified-since" where forStorage, "if-range" where forStorage:
                continue
            default:
                break
            }
            out.append(header)
        }
        out.append(Header("Host", origin.preserveHost ? (forwardedHost ?? origin.hostHeader) : origin.hostHeader))
        if let clientAddress {
            out.append(Header("X-Forwarded-For", forwardedFor.map { $0 + ", " + clientAddress } ?? clientAddress))
        } else if let forwardedFor {
            out.append(Header("X-Forwarded-For", forwardedFor))
        }
        if forStorage && !configured.contains("accept-encoding") { out.append(ContentCoding.storageAcceptEncoding) }
        if !hasProto { out.append(Header("X-Forwarded-Proto", "http")) }
        if let forwardedHost { out.append(Header("X-Forwarded-Host", forwardedHost)) }
        for configured in origin.headers {
            if let value = configured.value.value { out.append(Header(configured.name, value)) }
        }
        return out
    }

    /// The origin's headers that go back to the client: everything but hop-by-hop headers,
    /// `Content-Length` (recomputed from the body Trove sends), and any header that could not be written back
    /// as it is (a name that is not a token, a value with CR, LF or NUL).
    ///
    /// Every header Trove sends passes through here or is Trove's own, which is why the listener skips NIO's
    /// per-answer header validation: a stored entry's headers were checked once, when it was stored.
    public static func responseHeaders(_ headers: [Header]) -> [Header] {
        let dropped = connectionHeaders(headers)
        return headers.filter {
            let name = $0.name.lowercased()
            return !dropped.contains(name) && name != "content-length" && HTTPSyntax.isToken($0.name)
                && HTTPSyntax.isFieldValue($0.value)
        }
    }

    /// The headers kept in a stored entry: the response headers without `Set-Cookie` (never shared), `Age`
    /// (recomputed on every hit) and the cache's own `X-Cache`.
    public static func storedHeaders(_ headers: [Header]) -> [Header] {
        responseHeaders(headers).filter {
            let name = $0.name.lowercased()
            return name != "set-cookie" && name != "age" && name != "x-cache"
        }
    }

    /// Why an origin answer must not be stored, or nil when it may be.
    public static func refusal(status: Int, headers: [Header], bodyLength: Int, policy: CachePolicy) -> NotStored? {
        let directives = CacheControl(headers)
        // A status the route lists, or (statuses: any) one the origin states a lifetime for.
        if policy.ttl(forStatus: status) == nil, !(policy.storesWithExplicitFreshness(status) && directives.statesLifetime(headers)) {
            return .status
        }
        for header in headers {
            if HTTPSyntax.name(header.name, is: "set-cookie") { return .setCookie }
            if HTTPSyntax.name(header.name, is: "vary"), header.value.trimmingWhitespace() == "*" { return .varyStar }
        }
        if !policy.overrideCacheControl {
            // must-understand: a cache that knows the status's caching rules may ignore no-store; one that does
            // not must not store at all (RFC 9111 §5.2.2.3).
            if directives.has("must-understand") {
                if !HTTPStatus.isUnderstood(status) { return .noStore }
            } else if directives.has("no-store") {
                return .noStore
            }
            if directives.has("private") { return .private }
        }
        if bodyLength > policy.maxBodyBytes { return .tooLarge }
        return nil
    }

    /// The request's values of the headers an answer's `Vary` names, to store with it. `Accept-Encoding` is
    /// left out: one entry serves every client, decoded for those that do not accept its coding.
    public static func variant(vary responseHeaders: [Header], request: [Header]) -> [Header] {
        var names: [String] = []
        for header in responseHeaders where header.name.lowercased() == "vary" {
            for token in header.value.split(separator: ",") {
                let name = token.trimmingWhitespace().lowercased()
                if !name.isEmpty && name != "accept-encoding" && !names.contains(name) { names.append(name) }
            }
        }
        return values(of: names, in: request)
    }

    /// The request's values of these headers (lower-case names), as `variant(vary:request:)` records them:
    /// normalised, so requests that say the same thing differently share a variant.
    public static func values(of names: [String], in request: [Header]) -> [Header] {
        names.map { name in
            let lowered = name.lowercased()
            return Header(lowered, selectingValue(lowered, in: request))
        }
    }

    /// True when a request has the values an entry's variant was stored for.
    public static func matches(variant: [Header], request: [Header]) -> Bool {
        variant.allSatisfy { stored in stored.value == selectingValue(stored.name, in: request) }
    }

    /// One request header's value for `Vary` matching (RFC 9111 §4.1): every field line combined, list members
    /// trimmed of the whitespace around them (`1, 2` on one line, `1,2`, and `1` and `2` on two lines are the
    /// same), and `Accept-Language` lower-cased, since language tags are case-insensitive (RFC 4647 §2).
    static func selectingValue(_ name: String, in request: [Header]) -> String {
        var members: [String] = []
        for header in request where header.name.lowercased() == name {
            for member in header.value.split(separator: ",", omittingEmptySubsequences: false) {
                members.append(member.trimmingWhitespace())
            }
        }
        let combined = members.joined(separator: ",")
        return name == "accept-language" ? combined.lowercased() : combined
    }

    /// Why an answer was not stored; its raw value is the `Cache-Status` detail.
    public enum NotStored: String, Sendable, Equatable {
        case status = "STATUS"
        case setCookie = "SET-COOKIE"
        case noStore = "NO-STORE"
        case `private` = "PRIVATE"
        case varyStar = "VARY-STAR"
        case tooLarge = "BODY-TOO-LARGE"
        /// The origin named more tags than an entry records (`tags_from`), or one too long.
        case originTags = "ORIGIN-TAGS"
        /// A purge of one of the tags the origin named ran while the answer was fetched: it may predate the
        /// purge, so it is not stored.
        case purgedWhileFetched = "PURGED-WHILE-FETCHED"
        /// The memory store is full of entries asked for more often (its admission policy).
        case notAdmitted = "NOT-ADMITTED"
    }
}
