import TroveHTTP
import Testing
@testable import TroveRules

/// `clients:` and the addresses it reads (#12, findings 5 and 12).
@Suite struct ClientSettingsTests {
    static let defaultRoute = "  - {name: r, match: GET /r, cache: {ttl: 1m}}"

    static func yaml(_ extra: String, origin: String, routes: String) -> String {
        """
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000"\(origin)}}
        \(extra)
        routes:
        \(routes)
        """
    }

    static func parse(_ extra: String, origin: String = "", routes: String = defaultRoute) throws -> RuleSet {
        try RulesLoader.parse(yaml(extra, origin: origin, routes: routes), file: "clients.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
    }

    static func errors(_ extra: String, origin: String = "", routes: String = defaultRoute) -> [String] {
        refusal(yaml(extra, origin: origin, routes: routes), file: "clients.yaml", errorsOnly: true)
    }

    @Test func addresses() {
        #expect(IPAddress("192.0.2.1")?.bytes == [192, 0, 2, 1])
        #expect(IPAddress("::1")?.isLoopback == true)
        #expect(IPAddress("127.8.9.10")?.isLoopback == true)
        #expect(IPAddress("::ffff:10.0.0.1")?.bytes == [10, 0, 0, 1])
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8:0:0:0:0:0:1")
        #expect(IPAddress("[fe80::1]")?.bytes.count == 16)
        #expect(IPAddress("::")?.bytes == [UInt8](repeating: 0, count: 16))
        for bad in ["127.0.0.1.nip.io", "localhost", "256.0.0.1", "01.2.3.4", "1.2.3", "1::2::3", ":::", "12345::", "1:2:3:4:5:6:7:8:9", "", "::1.2.3", "::+1", "::-1", "::١"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        let range = AddressRange("10.0.0.0/8")!
        #expect(range.contains(IPAddress("10.200.3.4")!))
        #expect(!range.contains(IPAddress("11.0.0.1")!))
        #expect(!range.contains(IPAddress("::1")!))
        #expect(AddressRange("fd00::/8")!.contains(IPAddress("fdab::1")!))
        #expect(AddressRange("192.0.2.7")!.prefixLength == 32)
        #expect(AddressRange("10.0.0.0/33") == nil)
        #expect(AddressRange("10.0.0.0/x") == nil)
    }

    /// Finding 12: a loopback check reads an address, not a prefix of a name.
    @Test func loopbackIsAnAddress() {
        #expect(ListenAddress(host: "127.0.0.1", port: 1).isLoopback)
        #expect(ListenAddress(host: "::1", port: 1).isLoopback)
        #expect(ListenAddress(host: "localhost", port: 1).isLoopback)
        #expect(!ListenAddress(host: "127.0.0.1.nip.io", port: 1).isLoopback)
        #expect(Self.errors("admin: {listen: \"127.0.0.1.nip.io:9090\", allow_unauthenticated: true}").first?
            .contains("only allowed on a loopback address") == true)
    }

    @Test func hostPatterns() {
        #expect(HostPattern.name(ofHostHeader: "Shop.Example.com:8080") == "shop.example.com")
        #expect(HostPattern.name(ofHostHeader: "shop.example.com.") == "shop.example.com")
        #expect(HostPattern.name(ofHostHeader: "[::1]:80") == "[::1]")
        #expect(HostPattern.name(ofHostHeader: "evil.example/x") == nil)
        #expect(HostPattern.name(ofHostHeader: "a:b") == nil)
        #expect(HostPattern.name(ofHostHeader: "a.example:٨٠") == nil, "a port is ASCII digits")
        #expect(HostPattern("*.example.com")!.matches("a.example.com"))
        #expect(!HostPattern("*.example.com")!.matches("example.com"))
        #expect(!HostPattern("*.example.com")!.matches("aexample.com"))
        let clients = ClientSettings(hosts: [HostPattern("api.example.com")!])
        #expect(clients.answers(host: "API.example.com:443"))
        #expect(!clients.answers(host: "evil.example"))
        #expect(!clients.answers(host: nil))
        #expect(ClientSettings().answers(host: nil))
    }

    @Test func whatTheOriginIsTold() throws {
        #expect(try Self.parse("").clients.forwardedHost == .none)
        #expect(try Self.parse("clients: {hosts: [Api.Example.com]}").clients.forwardedHost == .fixed("api.example.com"))
        let several = try Self.parse("clients: {hosts: [a.example.com, b.example.com]}",
            routes: "  - {name: r, match: GET /r, cache: {key: \"{header.host}:r\", ttl: 1m}}").clients
        #expect(several.forwardedHost == .requests)
        #expect(several.forwardedHost(for: "B.example.com:80") == "b.example.com")
        let trusted = try Self.parse("clients: {trusted_proxies: [10.0.0.0/8, \"::1\"]}").clients
        #expect(trusted.trusts("10.1.2.3"))
        #expect(trusted.trusts("::1"))
        #expect(!trusted.trusts("192.0.2.1"))
        #expect(!trusted.trusts(nil))
    }

    /// Finding 12: API keys in their own headers are credentials too (X-Api-Key and the like by default, more
    /// when the rules say so): such a request never shares an entry its key does not hold.
    @Test func credentialHeaders() throws {
        let rules = try Self.parse("clients: {credentials: [X-Shop-Token]}", routes: """
              - {name: r, match: GET /r, cache: {ttl: 1m}}
              - {name: mine, match: GET /mine, cache: {key: "mine:{header.x-shop-token|sha256}", ttl: 1m}}
            """)
        func decision(_ target: String, _ headers: [Header]) -> String {
            switch rules.plan(for: RequestHead(method: "GET", target: target, headers: headers)).decision {
            case .cache(let cache): "cache \(cache.perUser.map(\.description).sorted())"
            case .bypass(.credentials(let credentials)): "bypass \(credentials.map(\.rawValue).sorted())"
            default: "other"
            }
        }
        #expect(decision("/r", []) == "cache []")
        #expect(decision("/r", [Header("X-API-Key", "k")]) == "bypass [\"x-api-key\"]")
        #expect(decision("/r", [Header("x-shop-token", "k"), Header("Authorization", "a")]) == "bypass [\"authorization\", \"x-shop-token\"]")
        #expect(decision("/mine", [Header("X-Shop-Token", "k")]) == "cache [\"X-Shop-Token\"]")
        #expect(rules.clients.carriesCredentials([Header("X-Auth-Token", "t")]))
        #expect(!rules.clients.carriesCredentials([Header("Accept", "*/*")]))
        // Keyed in clear, a credential header is refused like Authorization.
        #expect(Self.errors("clients: {credentials: [X-Shop-Token]}", routes: "  - {name: r, match: GET /r, cache: {key: \"r:{header.x-shop-token}\", ttl: 1m}}")
            .first?.contains("{header.x-shop-token} would write a credential into the store in clear") == true)
        #expect(Self.errors("clients: {credentials: [\"bad name\"]}").first?.contains("'bad name' is not a header name") == true)
    }

    @Test func errorsNameTheField() {
        #expect(Self.errors("clients: {hosts: [\"https://x.example\"]}") == [
            "clients.yaml:3:19: error: clients.hosts[0]: 'https://x.example' is not a host name; write it like api.example.com or *.example.com (no port, no scheme)",
        ])
        #expect(Self.errors("clients: {trusted_proxies: [10.0.0.0/40]}") == [
            "clients.yaml:3:29: error: clients.trusted_proxies[0]: '10.0.0.0/40' is not an address or range; write it like 10.0.0.0/8, 192.0.2.7 or fd00::/8",
        ])
        #expect(Self.errors("", origin: ", preserve_host: true").first?.hasPrefix(
            "clients.yaml:2:62: error: origins.api.preserve_host: preserve_host: true sends the client's Host to the origin") == true)
        let unkeyed = Self.errors("clients: {hosts: [a.example.com, b.example.com]}")
        #expect(unkeyed.count == 1)
        #expect(unkeyed.first?.contains("route 'r': cache.key: clients.hosts answers several hosts") == true)
    }
}
