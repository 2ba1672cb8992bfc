import TroveHTTP
import Testing
@testable import TroveRules

/// Query parameters and keys (#12, findings 6 and 7): a parameter the key does not tell apart never shares an
/// entry, ignored ones never reach the key or the origin, and repeated values never collide with comma lists.
@Suite struct QueryKeyingTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000"}}
        defaults: {cache: {ignore_query: [utm_*, fbclid]}}
        routes:
          - {name: list, match: GET /list, cache: {key: "list:page={query.page|default:1}:category={query.category}", ttl: 1m}}
          - {name: all, match: GET /all, cache: {key: "all:{query}", ttl: 1m, ignore_query: [gclid]}}
          - {name: item, match: "GET /items/{id}", cache: {key: "item:{id}", ttl: 1m}}
          - {name: change, match: "PUT /items/{id}", purge: {tags: [x]}}
        """, file: "q.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])

    func plan(_ target: String) -> RequestPlan {
        Self.rules.plan(for: RequestHead(method: "GET", target: target))
    }

    func key(_ target: String) -> String? {
        if case .cache(let cache) = plan(target).decision { cache.key } else { nil }
    }

    func bypassed(_ target: String) -> [String]? {
        if case .bypass(.unkeyedQuery(let names)) = plan(target).decision { names } else { nil }
    }

    /// Finding 6: `?page=3&callback=alert(1)` is not stored under the `page=3` key.
    @Test func unkeyedParametersBypass() {
        #expect(key("/list?page=3") == "list:page=3:category=")
        #expect(key("/list?page=3&callback=alert(1)") == nil)
        #expect(bypassed("/list?page=3&callback=alert(1)&x=1&callback=2") == ["callback", "x"])
        #expect(bypassed("/items/4?debug") == ["debug"], "a key that names no parameter tells none apart")
        #expect(key("/all?callback=x&page=2") == "all:callback=x&page=2", "{query} tells every parameter apart")
        let head = RequestHead(method: "GET", target: "/list?page=3&callback=alert(1)")
        let explanation = Explanation(plan: Self.rules.plan(for: head), rules: Self.rules, request: head)
        #expect(explanation.text.contains("query parameter callback, which the key of route 'list' does not tell apart"))
    }

    /// Ignored parameters are removed before the key is rendered and before the request is forwarded.
    @Test func ignoredParameters() {
        #expect(key("/list?utm_source=x&page=3&fbclid=y&utm_medium=z") == "list:page=3:category=")
        #expect(plan("/list?utm_source=x&page=3&fbclid=y").target?.forwardTarget == "/list?page=3")
        #expect(plan("/list?utm_source=x").target?.forwardTarget == "/list")
        #expect(key("/all?gclid=1&b=2") == "all:b=2", "a route's own list replaces the defaults'")
        #expect(bypassed("/all?utm_source=1") == nil)
        #expect(key("/all?utm_source=1") == "all:utm_source=1")
    }

    /// Finding 7: repeated values and a comma list never render the same key.
    @Test func repeatedValuesAreNotACommaList() {
        let repeated = key("/list?category=a&category=b")
        let listed = key("/list?category=a,b")
        let encoded = key("/list?category=a%2Cb")
        #expect(repeated == "list:page=1:category=a%2cb")
        #expect(listed == "list:page=1:category=a%2Cb")
        #expect(encoded == "list:page=1:category=a%252Cb", "a client's own %2c is escaped again: it cannot write the joiner")
        #expect(Set([repeated, listed, encoded]).count == 3)
        #expect(key("/list?category=a%2cb") == encoded)
        // Headers read the same way.
        let template = try! Template(parsing: "h:{header.x-tag}", pathParameters: [])
        let target = try! RequestTarget(parsing: "/")
        func render(_ headers: [Header]) -> String {
            template.render(TemplateContext(method: "GET", target: target, pathParameters: [:], headers: headers))
        }
        #expect(render([Header("X-Tag", "a"), Header("X-Tag", "b")]) != render([Header("X-Tag", "a,b")]))
    }

    /// A write whose Location names a URL with parameters the key ignores still purges that resource's entry.
    @Test func invalidationIgnoresUnkeyedParameters() {
        #expect(Self.rules.invalidationKey(for: "/items/8?x=1", headers: []) == "item:8")
    }

    /// trove check: a tag reading a parameter the key does not name, and a warm URL that would be passed.
    @Test func warnings() throws {
        let rules = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: list, match: GET /list, cache: {key: "list:{query.page}", ttl: 1m, tags: ["cat:{query.category}"]}}
            warm: ["/list?page=1&sort=name"]
            """, file: "w.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        let warnings = rules.warnings.map(\.description)
        #expect(warnings.contains { $0.contains("cache.tags[0]: the tag reads {query.category}, which the key does not name") })
        #expect(warnings.contains { $0.contains("warm[0]: route 'list' does not name sort in its key") })
    }
}
