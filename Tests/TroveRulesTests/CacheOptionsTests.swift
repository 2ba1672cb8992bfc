import TroveHTTP
import Testing
@testable import TroveRules

/// `cache:` options are declared once (`RulesLoader.cacheOptions`): each that `defaults.cache` may give is
/// inherited by every route that does not give its own, and the route-only ones are refused in defaults with
/// the reason.
@Suite struct CacheOptionsTests {
    private static func policy(defaults: String, route: String = "") throws -> CachePolicy {
        let rules = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            defaults:
              cache: {\(defaults)}
            routes:
              - name: event
                match: GET /events/{id}
                cache: {key: "event:{id}"\(route.isEmpty ? "" : ", " + route)}
            """, file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        return try #require(rules.routes.first?.cachePolicy)
    }

    @Test func everyInheritableOptionIsInherited() throws {
        let inheritable = RulesLoader.cacheOptions.filter { $0.scope == .routeOrDefaults }.map(\.name)
        #expect(inheritable == ["ttl", "statuses", "stale", "stale_if_error", "max_body", "freshness", "max_ttl", "ignore_query", "ignore_cookies", "only_cookies", "tags_from", "send_tags", "shadow"])
        let policy = try Self.policy(defaults: """
            ttl: 7m, statuses: [200, 404], stale: 1m, stale_if_error: 1h, max_body: 2MB, freshness: origin, max_ttl: 1d, \
            ignore_query: [utm_*], ignore_cookies: [_ga], tags_from: Surrogate-Key, send_tags: Cache-Tag, \
            shadow: {ignore: [$.generated_at]}
            """)
        #expect(policy.statusTTLs.map(\.status) == [200, 404])
        #expect(policy.statusTTLs.map(\.ttl) == [.seconds(420), .seconds(420)])
        #expect(policy.stale == .seconds(60))
        #expect(policy.staleIfError == .seconds(3600))
        #expect(policy.maxBodyBytes == 2 << 20)
        #expect(policy.freshness == .origin)
        #expect(policy.maxTTL == .seconds(86_400))
        #expect(policy.ignoreQuery == ["utm_*"])
        #expect(policy.cookies == .ignoring(["_ga"]))
        #expect(policy.tagsFrom == OriginTagHeader(name: "Surrogate-Key", keep: false))
        #expect(policy.sendTags == CDNTagHeader(name: "Cache-Tag"))
        #expect(policy.shadow?.ignoredPaths.map(\.description) == ["$.generated_at"])
        #expect(try Self.policy(defaults: "ttl: 1m, only_cookies: [sessionid]").cookies == .only(["sessionid"]))
    }

    /// `tags_from` names a header (or `{header, keep}`), `send_tags` a header; anything else is refused with the
    /// form to write.
    @Test func tagHeaders() throws {
        #expect(try Self.policy(defaults: "ttl: 1m", route: "tags_from: {header: xkey, keep: true}").tagsFrom
            == OriginTagHeader(name: "xkey", keep: true))
        func refused(_ option: String) -> [String] {
            refusal("""
                version: 1
                origins: {api: {url: "http://127.0.0.1:8000"}}
                routes:
                  - {name: a, match: GET /a, cache: {key: a, ttl: 1m, \(option)}}
                """, file: "t.yaml", errorsOnly: true)
        }
        #expect(refused("tags_from: \"Surrogate Key\"") == [
            "t.yaml:4:66: error: route 'a': cache.tags_from: 'Surrogate Key' is not a header name; write one such as Surrogate-Key",
        ])
        #expect(refused("tags_from: {keep: true}") == [
            "t.yaml:4:66: error: route 'a': cache.tags_from: say which response header holds the tags: {header: Surrogate-Key, keep: false}",
        ])
        #expect(refused("tags_from: {header: xkey, keep: maybe}").first?.contains("cache.tags_from.keep") == true)
        #expect(refused("send_tags: [a]").first?.contains("cache.send_tags: expected") == true, "\(refused("send_tags: [a]"))")
    }

    @Test func aRouteOverridesWhatItGives() throws {
        let policy = try Self.policy(defaults: "ttl: 7m, stale: 1m, ignore_query: [utm_*]", route: "ttl: 30s, ignore_query: [fbclid]")
        #expect(policy.statusTTLs.map(\.ttl) == [.seconds(30)])
        #expect(policy.stale == .seconds(60))
        #expect(policy.ignoreQuery == ["fbclid"])
        // The route's cookie option replaces the defaults', whichever of the two each gives.
        #expect(try Self.policy(defaults: "ttl: 1m, ignore_cookies: [_ga]", route: "only_cookies: [sid]").cookies == .only(["sid"]))
    }

    @Test func routeOnlyOptionsAreRefusedInDefaultsWithTheReason() {
        for option in RulesLoader.cacheOptions {
            guard case .routeOnly(let why) = option.scope else { continue }
            let value = option.name == "key" ? "\"x\"" : option.name == "tags" ? "[x]" : "true"
            let found = refusal("""
                version: 1
                origins: {api: {url: "http://127.0.0.1:8000"}}
                defaults:
                  cache: {ttl: 1m, \(option.name): \(value)}
                routes: []
                """, file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
            #expect(found.contains { $0.contains("defaults.cache.\(option.name)") && $0.contains(why) }, "\(option.name): \(found)")
        }
    }

    /// A zero TTL means "only what the origin declares fresh": accepted with freshness: origin wherever it is
    /// given, and refused once, where it is written, with freshness: rules.
    @Test func zeroTTLNeedsOriginFreshness() throws {
        #expect(try Self.policy(defaults: "ttl: 0s, freshness: origin").statusTTLs.map(\.ttl) == [.zero])
        let found = refusal("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            defaults:
              cache: {ttl: 0s}
            routes:
              - {name: a, match: GET /a, cache: {key: a}}
              - {name: b, match: GET /b, cache: {key: b}}
            """, file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(found == ["test.yaml:4:16: error: defaults.cache.ttl: must be more than 0s (0s means \"only what the origin declares fresh\", with freshness: origin)"])
    }
}
