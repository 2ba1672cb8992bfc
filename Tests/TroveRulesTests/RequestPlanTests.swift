import TroveHTTP
import Testing
@testable import TroveRules

private let rules = """
    version: 1
    store: {max_key_length: 100}
    origins:
      api: {url: "http://127.0.0.1:8000/v2"}
    routes:
      - name: top
        match: GET /products/top/
        cache: {key: "top", ttl: 1m, tags: [products]}
      - name: product
        match: GET /products/{id}/
        cache: {key: "product:{id}", ttl: 5m, tags: ["product:{id}", products]}
      - name: search
        match: GET /search
        cache: {key: "search:{query}", ttl: 1m}
      - name: stats
        match: GET /me/stats
        cache: {key: "stats:{header.authorization|sha256}", ttl: 10s, authenticated: true}
      - name: sessions
        match: GET /me/cart
        cache: {key: "cart:{cookie.sessionid|sha256}", ttl: 10s}
      - name: public
        match: GET /catalog
        cache: {key: "catalog", ttl: 1h, shared: true}
      - name: product-change
        match: PUT,PATCH,DELETE /products/{id}/
        purge:
          tags: ["product:{id}", products]
          keys: ["stats:{header.authorization|sha256}"]
          routes: [search]
      - name: admin
        match: ANY /admin/**
        pass: true
    """

@Suite struct RequestPlanTests {
    let set: RuleSet

    init() throws {
        set = try RulesLoader.parse(rules, file: "plan.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
    }

    private func plan(_ method: String, _ target: String, _ headers: [(name: String, value: String)] = []) -> RequestPlan {
        set.plan(for: RequestHead(method: method, target: target, headers: headers.map { Header($0.name, $0.value) }))
    }

    private func cacheTarget(_ plan: RequestPlan) -> RequestPlan.CacheTarget? {
        if case .cache(let target) = plan.decision { target } else { nil }
    }

    /// A GET on a cacheable route renders its key and tags; the first matching route wins.
    @Test func cacheableGet() throws {
        let product = plan("GET", "/products/42/")
        #expect(product.route?.name == "product")
        let target = try #require(cacheTarget(product))
        #expect(target.key == "product:42")
        #expect(target.tags == ["product:42", "products"])
        #expect(target.policy.ttl(forStatus: 200) == .seconds(300))
        #expect(product.origin?.name == "api")
        #expect(try #require(cacheTarget(plan("GET", "/products/top/"))).key == "top")
    }

    /// HEAD is answered from the GET entry: same route, same key.
    @Test func headSharesTheGetEntry() throws {
        #expect(try #require(cacheTarget(plan("HEAD", "/products/42/"))).key == "product:42")
    }

    /// Requests with credentials the key does not hold are passed through, per credential.
    @Test func credentialsBypassAnonymousRoutes() {
        let withAuth = plan("GET", "/products/42/", [("Authorization", "Bearer a")])
        guard case .bypass(.credentials(let credentials)) = withAuth.decision else {
            Issue.record("expected a bypass, got \(withAuth.decision)")
            return
        }
        #expect(credentials == [.authorization])
        let withCookie = plan("GET", "/products/42/", [("cookie", "sessionid=x")])
        guard case .bypass(.credentials(let cookies)) = withCookie.decision else {
            Issue.record("expected a bypass, got \(withCookie.decision)")
            return
        }
        #expect(cookies == [.cookie])
    }

    /// A key naming `{query:page,limit}` keys on those parameters only: any other passes the request uncached
    /// (it could change the answer), unless the route ignores it.
    @Test func namedQueryParametersAreTheKeyedOnes() throws {
        let rules = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: list, match: GET /events, cache: {ttl: 1m, key: "events:{query:page,limit}", ignore_query: [utm_*]}}
            """, file: "q.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        func decision(_ target: String) -> RequestPlan.Decision { rules.plan(for: RequestHead(method: "GET", target: target)).decision }
        guard case .cache(let listed) = decision("/events?page=2&utm_source=x&limit=5") else { Issue.record("cached"); return }
        #expect(listed.key == "events:limit=5&page=2")
        guard case .bypass(.unkeyedQuery(["search"])) = decision("/events?page=2&search=x") else {
            Issue.record("a parameter the key does not name passes the request"); return
        }
    }

    /// Cookies that do not matter (#15): analytics cookies no longer bypass a route that is not shared, nor a per-user
    /// route keyed on Authorization; a cookie that matters still does; `only_cookies` names the ones that matter;
    /// `trove explain` says which were ignored. Both options at once is an error.
    @Test func cookiesThatDoNotMatter() throws {
        let rules = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            defaults: {cache: {ignore_cookies: [_ga, _gid, "_hj*"]}}
            routes:
              - {name: list, match: GET /events, cache: {ttl: 1m, key: "events"}}
              - {name: me, match: GET /me, cache: {ttl: 1m, key: "me:{header.authorization|sha256}"}}
              - {name: cart, match: GET /cart, cache: {ttl: 1m, key: "cart:{cookie.sessionid|sha256}", only_cookies: [sessionid]}}
            """, file: "c.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        func plan(_ target: String, _ headers: [Header]) -> RequestPlan {
            rules.plan(for: RequestHead(method: "GET", target: target, headers: headers))
        }
        let analytics = [Header("Cookie", "_ga=GA1.2.3; _gid=x"), Header("Cookie", "_hjSession=1")]
        guard case .cache(let list) = plan("/events", analytics).decision else { Issue.record("analytics cookies are cached"); return }
        #expect(list.key == "events" && list.ignoredCookies == ["_ga", "_gid", "_hjSession"])
        let explained = Explanation(plan: plan("/events", analytics), rules: rules, request: RequestHead(method: "GET", target: "/events"))
        #expect(explained.reason.hasSuffix("; its cookies _ga, _gid, _hjSession do not matter to the route (ignore_cookies): sent to the origin on a miss, never in the key"))
        guard case .bypass(.credentials([.cookie])) = plan("/events", [Header("Cookie", "_ga=1; sessionid=s")]).decision else {
            Issue.record("a cookie that matters still bypasses"); return
        }
        // What cannot be read as an ignorable name is taken for one that matters.
        for unreadable in ["sessionid", "_ga=1; =x"] {
            guard case .bypass(.credentials([.cookie])) = plan("/events", [Header("Cookie", unreadable)]).decision else {
                Issue.record("'\(unreadable)' bypasses"); return
            }
        }
        let alice = plan("/me", [Header("Authorization", "Bearer alice"), Header("Cookie", "_ga=1")])
        guard case .cache(let me) = alice.decision else { Issue.record("per user, analytics cookie ignored"); return }
        #expect(me.perUser == [.authorization])
        guard case .cache(let one) = plan("/cart", [Header("Cookie", "sessionid=s1; theme=dark")]).decision,
            case .cache(let two) = plan("/cart", [Header("Cookie", "sessionid=s2; theme=light")]).decision,
            case .cache(let anonymous) = plan("/cart", [Header("Cookie", "theme=dark")]).decision
        else { Issue.record("only_cookies: the session cookie keys, the others do not matter"); return }
        #expect(one.key != two.key && one.perUser == [.cookie] && anonymous.perUser.isEmpty && anonymous.ignoredCookies == ["theme"])

        #expect(refusal("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: a, match: GET /a, cache: {ttl: 1m, ignore_cookies: [_ga], only_cookies: [sid]}}
              - {name: b, match: GET /b, cache: {ttl: 1m, ignore_cookies: ["a b"]}}
            """, file: "c.yaml", errorsOnly: true) == [
            "c.yaml:4:63: error: route 'a': cache.ignore_cookies: give ignore_cookies (the cookies that never matter) or only_cookies (the only ones that do), not both",
            "c.yaml:5:64: error: route 'b': cache.ignore_cookies[0]: 'a b' is not a cookie name; write a name (_ga) or a prefix ending in * (_hj*)",
        ])
    }

    /// A key that holds the identity gives each user an entry; a cookie the key does not hold still bypasses.
    @Test func perUserKeys() throws {
        let alice = try #require(cacheTarget(plan("GET", "/me/stats", [("Authorization", "Bearer alice")])))
        let bob = try #require(cacheTarget(plan("GET", "/me/stats", [("Authorization", "Bearer bob")])))
        #expect(alice.key != bob.key)
        #expect(alice.perUser == [.authorization])
        let anonymous = try #require(cacheTarget(plan("GET", "/me/stats")))
        #expect(anonymous.key == "stats:")
        #expect(anonymous.perUser.isEmpty, "without credentials: the anonymous entry (#15)")
        let explained = Explanation(plan: plan("GET", "/me/stats"), rules: set, request: RequestHead(method: "GET", target: "/me/stats"))
        #expect(explained.sharing == "anonymous")
        #expect(explained.reason.contains("keys on the user's identity (Authorization, hashed), but this request carries none: it is served the anonymous entry"))
        guard case .bypass(.credentials([.cookie])) = plan("GET", "/me/stats", [("Authorization", "Bearer a"), ("Cookie", "x=1")]).decision else {
            Issue.record("a cookie the key does not hold must bypass")
            return
        }
        let cart = try #require(cacheTarget(plan("GET", "/me/cart", [("Cookie", "theme=dark; sessionid=s1")])))
        let otherCart = try #require(cacheTarget(plan("GET", "/me/cart", [("Cookie", "sessionid=s2")])))
        #expect(cart.key != otherCart.key)
    }

    /// A shared route keeps one entry for everyone, whatever credentials come along.
    @Test func sharedRoutesIgnoreCredentials() throws {
        let target = try #require(cacheTarget(plan("GET", "/catalog", [("Authorization", "Bearer a"), ("Cookie", "s=1")])))
        #expect(target.key == "catalog")
        #expect(target.sharedDespite == [.authorization, .cookie])
    }

    /// A write renders its purges from its own parameters and headers.
    @Test func writesRenderTheirPurges() throws {
        let write = plan("PATCH", "/products/42/", [("Authorization", "Bearer alice")])
        guard case .write(let purges) = write.decision else {
            Issue.record("expected a write, got \(write.decision)")
            return
        }
        let stats = try #require(cacheTarget(plan("GET", "/me/stats", [("Authorization", "Bearer alice")])))
        #expect(purges == PurgeSet(tags: ["product:42", "products"], keys: [stats.key], routes: ["search"]))
    }

    /// Pass routes and unmatched requests go to the origin unstored; the target is forwarded normalized.
    @Test func passAndUnmatched() {
        let admin = plan("POST", "/admin/users")
        #expect(admin.route?.name == "admin")
        guard case .pass = admin.decision else { Issue.record("expected pass"); return }
        let unmatched = plan("GET", "/elsewhere/./x?b=2&a=1")
        #expect(unmatched.route == nil)
        guard case .pass = unmatched.decision else { Issue.record("expected pass"); return }
        #expect(unmatched.origin?.url == "http://127.0.0.1:8000/v2")
        #expect(unmatched.target?.forwardTarget == "/elsewhere/x?b=2&a=1")
        // A route matches only its own methods: POST is neither the product route's nor the write route's.
        #expect(plan("POST", "/products/42/").route == nil)
    }

    /// With `unmatched: reject`, Trove answers 404 itself; a malformed target is a 400.
    @Test func rejections() throws {
        let strict = try RulesLoader.parse(rules + "\nunmatched: reject\n", file: "plan.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        guard case .reject(404, _) = strict.plan(for: RequestHead(method: "GET", target: "/nope")).decision else {
            Issue.record("expected a 404")
            return
        }
        guard case .reject(400, let message) = plan("GET", "nope").decision else {
            Issue.record("expected a 400")
            return
        }
        #expect(message == "the request target must start with '/' (got 'nope')")
    }

    /// Keys longer than store.max_key_length are shortened to a prefix, '#', and a SHA-256 of the whole key.
    @Test func longKeysAreHashed() throws {
        let long = String(repeating: "x", count: 300)
        let a = try #require(cacheTarget(plan("GET", "/search?q=\(long)a")))
        let b = try #require(cacheTarget(plan("GET", "/search?q=\(long)b")))
        #expect(a.key.utf8.count == 100)
        #expect(a.key.hasPrefix("search:q=xxxx"))
        #expect(a.key.contains("#"))
        #expect(a.key != b.key)
        // A short key is kept as rendered.
        #expect(try #require(cacheTarget(plan("GET", "/search?q=1"))).key == "search:q=1")
    }

    /// The explanation says the same thing in words.
    @Test func explanations() {
        let head = RequestHead(method: "GET", target: "/products/42/", headers: [Header("Authorization", "Bearer a")])
        let bypass = Explanation(plan: set.plan(for: head), rules: set, request: head)
        #expect(bypass.decision == "bypass")
        #expect(bypass.reason.contains("Cache-Status detail=AUTHORIZATION"))
        let write = RequestHead(method: "DELETE", target: "/products/42/")
        let explained = Explanation(plan: set.plan(for: write), rules: set, request: write)
        #expect(explained.text.contains("purge tags    product:42, products"))
        #expect(explained.text.contains("origin        api → http://127.0.0.1:8000/v2/products/42/"))
    }
}
