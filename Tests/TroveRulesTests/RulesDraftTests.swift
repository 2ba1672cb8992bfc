import Testing
@testable import TroveRules

/// `trove suggest`'s reading of access logs and its drafts.
@Suite struct RulesDraftTests {
    @Test func readsNginxAndTroveLines() throws {
        let nginx = try #require(RulesDraft.parse(line: #"10.0.0.1 - - [05/Dec/2026:10:00:00 +0000] "HEAD /api/v1/events?page=2&page=3&limit=5 HTTP/1.1" 200 2345 "-" "curl/8""#))
        #expect(nginx == RulesDraft.Request(method: "GET", path: "/api/v1/events", queryNames: ["page", "limit"], status: 200, bytes: 2345,
            target: "/api/v1/events?page=2&page=3&limit=5"))
        let trove = try #require(RulesDraft.parse(line: #"{"ts":"2026-12-05T10:00:06Z","method":"PUT","path":"/a/\"q\"","status":204,"cache":"pass","bytes":0}"#))
        #expect(trove.method == "PUT" && trove.path == "/a/\"q\"" && trove.status == 204 && trove.bytes == 0)
        for line in ["", "garbage", #"{"method":"PURGE","path":"tag:events","status":200}"#, #"1.2.3.4 - - [x] "GET http://x/ HTTP/1.1" 200 1"#,
                     #"1.2.3.4 - - [x] "BREW /pot HTTP/1.1" 200 1"#, #"1.2.3.4 - - [x] "GET /a HTTP/1.1" 999 1"#,
                     String(repeating: "a", count: 20_000)] {
            #expect(RulesDraft.parse(line: Substring(line)) == nil, "\(line.prefix(60))")
        }
    }

    @Test func pathsBecomeTemplates() throws {
        #expect(RulesDraft.template(of: "/api/v1/events/42")?.template == "/api/v1/events/{event_id}")
        #expect(RulesDraft.template(of: "/api/categories/3f2504e0-4f89-11d3-9a0c-0305e82c3301/")?.template == "/api/categories/{category_id}/")
        #expect(RulesDraft.template(of: "/users/7/orders/0123456789abcdef0123")?.template == "/users/{user_id}/orders/{order_id}")
        #expect(RulesDraft.template(of: "/7/8")?.template == "/{id}/{id2}")
        #expect(RulesDraft.template(of: "/_x/1")?.template == "/_x/{id}")
        #expect(RulesDraft.template(of: "/api/v1/events/top")?.template == "/api/v1/events/top", "words stay literal")
        #expect(RulesDraft.template(of: "/a/{b}") == nil)
        #expect(RulesDraft.template(of: "/a/%7Bb%7D") == nil)
    }

    private func request(_ method: String, _ target: String, status: Int = 200, bytes: Int = 10) -> RulesDraft.Request {
        RulesDraft.parse(line: Substring(#"1.2.3.4 - - [x] "\#(method) \#(target) HTTP/1.1" \#(status) \#(bytes) "-" "-""#))!
    }

    /// The draft: cacheable reads keyed on their query, writes purging what they change, failing or rare reads
    /// passed, each guess explained, the lot in shadow, and it loads without a warning.
    @Test func aDraftLoadsAndExplainsItself() throws {
        var log: [RulesDraft.Request] = []
        for page in 1...3 { for _ in 0..<2 { log.append(request("GET", "/api/v1/events?page=\(page)")) } }
        for id in [1, 2, 2] { log.append(request("GET", "/api/v1/events/\(id)")) }
        log += [request("PATCH", "/api/v1/events/2"), request("PUT", "/api/v1/events/1"), request("POST", "/api/v1/events", status: 201),
                request("POST", "/api/v1/events/1/tickets", status: 201)]
        log += [request("GET", "/api/v1/flaky", status: 500), request("GET", "/api/v1/flaky"), request("GET", "/api/v1/once")]
        let draft = RulesDraft.draft(log, origin: "http://api.internal:8000", source: "access.log", skipped: 2)
        let rules = try RulesLoader.parse(draft, file: "draft.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(rules.warnings.isEmpty, "\(rules.warnings)")
        #expect(draft.hasPrefix("# DRAFT rules written by `trove suggest` from access.log: 16 requests (2 lines skipped: not a request)."))
        #expect(rules.routes.map(\.match) == ["GET /api/v1/events", "POST /api/v1/events", "GET /api/v1/events/{event_id}",
            "PATCH,PUT /api/v1/events/{event_id}", "POST /api/v1/events/{event_id}/tickets", "GET /api/v1/flaky", "GET /api/v1/once", "ANY /**"])
        #expect(rules.shadowRoutes.map(\.name) == ["events-list", "event"])
        #expect(rules.route(named: "events-list")?.cachePolicy?.key.description == "events-list:page={query.page}")
        #expect(rules.route(named: "event")?.cachePolicy?.tags.map(\.description) == ["events", "events:{event_id}"])
        #expect(rules.route(named: "event-change")?.purgeRule?.tags.map(\.description) == ["events:{event_id}", "events:list"])
        #expect(rules.route(named: "events-create")?.purgeRule?.tags.map(\.description) == ["events:list"])
        #expect(rules.route(named: "tickets-create")?.purgeRule?.tags.map(\.description) == ["events:{event_id}", "events:list"])
        #expect(draft.contains("# 1 of 2 answers were not successful: passed rather than cached"))
        #expect(draft.contains("# Seen once: too little to judge, so passed."))
        #expect(draft.contains("# Repeated reads of one URL got a body of the same size in 3 of 3 URLs: stable, so cached."))
    }

    /// Bounds: the busiest `maxTemplates` groups only, and too many query names key on the whole query.
    @Test func aDraftIsBounded() throws {
        var log: [RulesDraft.Request] = []
        for index in 0..<(RulesDraft.maxTemplates + 50) { for _ in 0..<2 { log.append(request("GET", "/r\(index)")) } }
        let names = (0...RulesDraft.maxQueryNames).map { "q\($0)=1" }.joined(separator: "&")
        for _ in 0..<3 { log.append(request("GET", "/search?\(names)")) }
        let draft = RulesDraft.draft(log, origin: "http://x:1", source: "big.log")
        #expect(draft.hasPrefix("# DRAFT rules written by `trove suggest` from big.log: \(log.count) requests (the 300 busiest of 351 templates drafted)."))
        let rules = try RulesLoader.parse(draft, file: "d.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(rules.routes.count == RulesDraft.maxTemplates + 1, "the busiest templates, and the catch-all")
        #expect(rules.routes.first { $0.match == "GET /search" }?.cachePolicy?.key.description == "search-list:{query}")
    }

    /// A log is gathered one request at a time in bounded memory: groups past `maxGroups` and URLs past `maxURLs`
    /// per group are not kept (the requests are counted), whatever the log's length.
    @Test func trafficIsGatheredInBoundedMemory() {
        var traffic = RulesDraft.Traffic()
        for index in 0..<(RulesDraft.Traffic.maxGroups + 5) { traffic.add(request("GET", "/t\(index)")) }
        #expect(traffic.groups.count == RulesDraft.Traffic.maxGroups)
        #expect(traffic.unplaced == 5 && traffic.requests == RulesDraft.Traffic.maxGroups + 5)
        var urls = RulesDraft.Traffic()
        for index in 0..<(RulesDraft.Traffic.maxURLs + 100) {
            urls.add(request("GET", "/search?q=\(index)"))
            urls.add(request("GET", "/search?q=\(index)", bytes: index % 2 == 0 ? 10 : 11))
        }
        let group = urls.groups.values.first
        #expect(group?.sizes.count == RulesDraft.Traffic.maxURLs)
        #expect(group?.count == 2 * (RulesDraft.Traffic.maxURLs + 100))
        #expect(group?.sizes.values.filter(\.varied).count == RulesDraft.Traffic.maxURLs / 2, "a URL read with another size is marked varied")
    }
}
