import Foundation
import Testing
import TroveTestSupport
import TroveRules
@testable import TroveApp

/// One row of the explain table: a request to a seed's rules file and what Trove must say about it.
struct ExplainCase: CustomTestStringConvertible, Sendable {
    let file: String
    let request: String
    var headers: [String] = []
    let decision: String
    let route: String?
    var key: String?
    var tags: [String]?
    var purge: PurgeSet?
    var origin: String?

    var testDescription: String { "\(file): \(request) \(headers)" }
}

private let alice = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"  // sha256("alice"): the token, its scheme taken off
private let bob = "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9"    // sha256("bob")
/// A Supabase access token for user 7f3c… (valid until 2096), and the same signed with another secret.
private let supabase = TestTokens.hs256(["sub": "7f3c2a10", "aud": "authenticated", "exp": 4_000_000_000])
private let forged = TestTokens.hs256(["sub": "7f3c2a10", "aud": "authenticated", "exp": 4_000_000_000],
    secret: "not-the-project-secret-0123456789abcdef")
private let tokenABC = "64cc961af68cc57ee17ad64911b0b0d8acb1935571fa0b36166644562aa21fad" // sha256("Token abc")

private let cases: [ExplainCase] = [
    // Shopify events API (seeds 000, 002).
    ExplainCase(file: "shopify-events.yaml", request: "GET /api/v1/events?page=2&limit=5", decision: "cache",
        route: "events-list", key: "events:list:page=2:limit=5:search=:category=:status=", tags: ["events", "events:list"]),
    ExplainCase(file: "shopify-events.yaml", request: "GET /api/v1/events", decision: "cache",
        route: "events-list", key: "events:list:page=1:limit=20:search=:category=:status="),
    ExplainCase(file: "shopify-events.yaml", request: "GET /api/v1/events?limit=5&page=2", decision: "cache",
        route: "events-list", key: "events:list:page=2:limit=5:search=:category=:status="),
    // The seed's f-string key let `search` forge other parameters; here the value is escaped.
    ExplainCase(file: "shopify-events.yaml", request: "GET /api/v1/events?search=x:limit=5}", decision: "cache",
        route: "events-list", key: "events:list:page=1:limit=20:search=x%3Alimit%3D5%7D:category=:status="),
    ExplainCase(file: "shopify-events.yaml", request: "GET /api/v1/events/42", decision: "cache",
        route: "event-detail", key: "events:full:42", tags: ["events", "event:42"]),
    ExplainCase(file: "shopify-events.yaml", request: "HEAD /api/v1/events/42", decision: "cache",
        route: "event-detail", key: "events:full:42"),
    ExplainCase(file: "shopify-events.yaml", request: "GET /api/v1/events", headers: ["Authorization: Bearer x"],
        decision: "bypass", route: "events-list"),
    ExplainCase(file: "shopify-events.yaml", request: "POST /api/v1/events", decision: "write", route: "event-create",
        // RFC 9111 §4.4: a write also purges what a GET of its own target stored.
        purge: PurgeSet(tags: ["events:list"], keys: ["events:list:page=1:limit=20:search=:category=:status="])),
    ExplainCase(file: "shopify-events.yaml", request: "PUT /api/v1/events/42", decision: "write", route: "event-change",
        purge: PurgeSet(tags: ["event:42", "events:list"], keys: ["events:full:42"])),
    ExplainCase(file: "shopify-events.yaml", request: "DELETE /api/v1/events/7", decision: "write", route: "event-change",
        purge: PurgeSet(tags: ["event:7", "events:list"], keys: ["events:full:7"])),
    ExplainCase(file: "shopify-events.yaml", request: "GET /products/632910392.json", decision: "cache",
        route: "shopify-product", key: "shopify:product:632910392", origin: "shopify"),
    ExplainCase(file: "shopify-events.yaml", request: "POST /webhooks/products/update", decision: "pass", route: "webhooks"),
    ExplainCase(file: "shopify-events.yaml", request: "GET /docs", decision: "pass", route: "everything-else"),

    // Django product catalog (seed 001).
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/categories/", decision: "cache", route: "categories",
        key: "categories:all"),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/top_sellers/", decision: "cache",
        route: "top-sellers", key: "products:top_sellers", tags: ["products"]),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/7/", decision: "cache", route: "product",
        key: "product:7", tags: ["product:7"]),
    // A storefront browser's csrftoken and analytics cookies do not make it bypass (#15); a sessionid does.
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/7/", headers: ["Cookie: csrftoken=abc; _ga=GA1.1"],
        decision: "cache", route: "product", key: "product:7", tags: ["product:7"]),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/7/", headers: ["Cookie: csrftoken=abc; sessionid=s1"],
        decision: "bypass", route: "product"),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/7/variants/", decision: "cache",
        route: "product-variants", key: "product:7:variants", tags: ["product:7", "variants"]),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/?category=2&brand=x", decision: "cache",
        route: "product-list", key: "products:list:brand=x&category=2"),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/variants/?product=7", decision: "cache",
        route: "variant-list", key: "product:7:variants:list"),
    ExplainCase(file: "django-catalog.yaml", request: "GET /api/products/personalized/", headers: ["Authorization: Token abc"],
        decision: "cache", route: "personalized", key: "products:personalized:\(tokenABC)"),
    ExplainCase(file: "django-catalog.yaml", request: "PATCH /api/products/7/", decision: "write", route: "product-change",
        purge: PurgeSet(tags: ["product:7", "products"], keys: ["product:7"])),
    ExplainCase(file: "django-catalog.yaml", request: "POST /api/variants/3/reduce_stock/", decision: "write",
        route: "stock-change", purge: PurgeSet(tags: ["variants", "products"])),
    ExplainCase(file: "django-catalog.yaml", request: "PUT /api/colors/4/", decision: "write", route: "color-write",
        purge: PurgeSet(tags: ["colors"])),
    ExplainCase(file: "django-catalog.yaml", request: "GET /admin/", decision: "pass", route: "django"),

    // Flask property API (seed 004).
    ExplainCase(file: "flask-property.yaml", request: "GET /api/areas/buy", decision: "cache", route: "areas",
        key: "areas:buy:", tags: ["areas"]),
    ExplainCase(file: "flask-property.yaml", request: "GET /api/property/valuation?bedrooms=3&area=Marina", decision: "cache",
        route: "valuation", key: "valuation:area=Marina&bedrooms=3"),
    ExplainCase(file: "flask-property.yaml", request: "GET /api/property/valuation?area=Marina&bedrooms=3", decision: "cache",
        route: "valuation", key: "valuation:area=Marina&bedrooms=3"),
    ExplainCase(file: "flask-property.yaml", request: "GET /api/property-types", decision: "cache", route: "property-types",
        key: "prop_types:all"),
    ExplainCase(file: "flask-property.yaml", request: "DELETE /api/admin/areas/12", decision: "write", route: "area-write",
        purge: PurgeSet(tags: ["areas", "valuations"])),

    // FastAPI per-user stats (seed 003).
    ExplainCase(file: "fastapi-stats.yaml", request: "GET /api/v1/products/stats/asin-status",
        headers: ["Authorization: Bearer alice"], decision: "cache", route: "asin-stats", key: "asin_stats:\(alice)"),
    ExplainCase(file: "fastapi-stats.yaml", request: "GET /api/v1/products/stats/asin-status",
        headers: ["Authorization: Bearer bob"], decision: "cache", route: "asin-stats", key: "asin_stats:\(bob)"),
    ExplainCase(file: "fastapi-stats.yaml", request: "GET /api/v1/products/stats/asin-status",
        headers: ["Authorization: bearer bob"], decision: "cache", route: "asin-stats", key: "asin_stats:\(bob)"),
    // The same seed with Supabase JWTs: keyed and purged by the user's id, as the hand-written code was.
    ExplainCase(file: "fastapi-stats-jwt.yaml", request: "GET /api/v1/products/stats/asin-status",
        headers: ["Authorization: Bearer \(supabase)"], decision: "cache", route: "asin-stats", key: "asin_stats:7f3c2a10"),
    ExplainCase(file: "fastapi-stats-jwt.yaml", request: "POST /api/v1/products", headers: ["Authorization: bearer \(supabase)"],
        decision: "write", route: "product-create", purge: PurgeSet(keys: ["asin_stats:7f3c2a10"])),
    ExplainCase(file: "fastapi-stats-jwt.yaml", request: "GET /api/v1/products/stats/asin-status",
        headers: ["Authorization: Bearer \(forged)"], decision: "bypass", route: "asin-stats"),
    ExplainCase(file: "fastapi-stats.yaml", request: "POST /api/v1/products", headers: ["Authorization: Bearer alice"],
        decision: "write", route: "product-create", purge: PurgeSet(keys: ["asin_stats:\(alice)"])),
    ExplainCase(file: "fastapi-stats.yaml", request: "DELETE /api/v1/products/deals/9", headers: ["Authorization: Bearer bob"],
        decision: "write", route: "deal-delete", purge: PurgeSet(keys: ["asin_stats:\(bob)"])),
    ExplainCase(file: "fastapi-stats.yaml", request: "GET /api/v1/products/stats/asin-status", headers: ["Cookie: theme=dark"],
        decision: "bypass", route: "asin-stats"),
    ExplainCase(file: "fastapi-stats.yaml", request: "GET /api/v1/products/stats/cache-status",
        headers: ["Authorization: Bearer alice"], decision: "pass", route: "cache-status"),
]

@Suite struct ExplainTableTests {
    /// `trove explain --json` gives the right route, decision, key, tags and purges for each seed's requests.
    @Test(arguments: cases)
    func explains(_ row: ExplainCase) throws {
        let outcome = RulesReport.explain(
            path: Repository.rules(row.file), request: row.request, headers: row.headers, json: true,
            environment: Repository.environment)
        #expect(outcome.success, "\(outcome.output)")
        let explanation = try JSONDecoder().decode(Explanation.self, from: Data(outcome.output.utf8))
        #expect(explanation.decision == row.decision)
        #expect(explanation.route?.name == row.route)
        if let key = row.key { #expect(explanation.key == key) }
        if let tags = row.tags { #expect(explanation.tags == tags) }
        if let purge = row.purge { #expect(explanation.purge == purge) }
        if let origin = row.origin { #expect(explanation.origin == origin) }
        if row.decision != "cache" { #expect(explanation.key == nil) }
    }

    /// `trove check` shows a `statuses: any` route as such, not as the eleven statuses it falls back for.
    @Test func checkShowsAnyStatus() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("any-\(UUID().uuidString).yaml").path
        try """
            version: 1
            admin: {listen: 127.0.0.1:9090, allow_unauthenticated: true}
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: a, match: GET /a, cache: {ttl: 0s, freshness: origin, statuses: any, max_ttl: 1h}}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = RulesReport.check(path: path, strict: false, environment: [:])
        #expect(outcome.output.contains("origin (any status), else 0s (200, 404, ...), ≤ 1h"), "\(outcome.output)")
    }

    /// The rules `conformance/cache-tests/run.sh` runs Trove with stay valid as the rules format moves on.
    @Test func conformanceRulesCheckAndShowAnyStatus() throws {
        let template = try String(contentsOf: Repository.root.appendingPathComponent("conformance/cache-tests/trove.yaml"), encoding: .utf8)
        let rendered = template.replacingOccurrences(of: "@LISTEN@", with: "127.0.0.1:18080")
            .replacingOccurrences(of: "@ADMIN@", with: "127.0.0.1:19090").replacingOccurrences(of: "@ORIGIN@", with: "127.0.0.1:18000")
        #expect(!rendered.contains("@"), "every placeholder run.sh fills is filled here too")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(UUID().uuidString).yaml").path
        try rendered.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = RulesReport.check(path: path, strict: true, environment: [:])
        #expect(outcome.success, "\(outcome.output)")
        #expect(outcome.output.contains("origin (any status), else 0s (200, 404, ...)"), "\(outcome.output)")
    }

    /// The text form names the route, the key, the TTLs and the reason, one per line.
    @Test func textForm() {
        let outcome = RulesReport.explain(
            path: Repository.rules("shopify-events.yaml"), request: "GET /api/v1/events/42", headers: [], json: false,
            environment: Repository.environment)
        #expect(outcome.output == """
            request    GET /api/v1/events/42
            route      event-detail (line 73: GET /api/v1/events/{id})
            origin     events-api → http://127.0.0.1:8000/api/v1/events/42
            decision   CACHE
            why        route 'event-detail' caches answers to requests without credentials, and this one carries none
            key        events:full:42
            fresh for  10m (200), 30s (404)
            stale      1m more, served while one refresh runs
            if error   1d more, served when the origin fails
            tags       events, event:42
            max body   2 MiB; bigger answers are passed through unstored
            users      anonymous
            """)
    }
}
