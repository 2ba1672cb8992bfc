import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules
import TroveTestSupport

/// Shadow mode's pure parts: the comparison, the machine's transcript in shadow, the report and its diagnosis.
@Suite struct ShadowTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000", timeout: 10s}}
        routes:
          - name: events-list
            match: GET /events
            cache: {key: "events", ttl: 60s, tags: [events, "events:list"], shadow: true}
          - name: event
            match: GET /events/{id}
            cache: {key: "event:{id}", ttl: 60s, stale: 30s, tags: [events, "event:{id}"], shadow: {ignore: [$.generated_at, X-Request-Id]}}
          - name: event-change
            match: PUT,DELETE /events/{id}
            purge: {tags: ["event:{id}"]}
          - name: other
            match: ANY /**
            pass: true
        """, file: "shadow.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])

    let clock = ManualClock()
    let json = [Header("Content-Type", "application/json")]

    private func answer(_ body: String, status: Int = 200, headers: [Header] = [Header("Content-Type", "application/json")]) -> ShadowComparison.Answer {
        ShadowComparison.Answer(status: status, headers: headers, body: Array(body.utf8))
    }

    // MARK: Rules

    @Test func rulesSayWhichRoutesRunInShadow() throws {
        #expect(Self.rules.shadowRoutes.map(\.name) == ["events-list", "event"])
        let settings = try #require(Self.rules.route(named: "event")?.cachePolicy?.shadow)
        #expect(settings.ignoredPaths.map(\.description) == ["$.generated_at"])
        #expect(settings.ignoredHeaders == ["x-request-id"])
        let head = RequestHead(method: "GET", target: "/events/3", headers: [])
        let explained = Explanation(plan: Self.rules.plan(for: head), rules: Self.rules, request: head).text
        #expect(explained.contains("shadow     the origin answers every request; Trove stores, purges and compares what it would have served, "
            + "ignoring $.generated_at, x-request-id (GET /shadow)"), "\(explained)")
        let problems = rejection("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - name: a
                match: GET /a
                cache: {key: a, ttl: 1m, shadow: {ignore: ["$.items[", "not a header"]}}
            """)
        #expect(problems.contains { $0.contains("cache.shadow.ignore[0]") && $0.contains("is not a JSON path") })
        #expect(problems.contains { $0.contains("cache.shadow.ignore[1]") && $0.contains("neither a JSON path") })
        // `trove serve --shadow`: every cacheable route.
        let all = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: a, match: GET /a, cache: {key: a, ttl: 1m}}
              - {name: b, match: GET /b, cache: {key: b, ttl: 1m, shadow: false}}
              - {name: c, match: ANY /**, pass: true}
            """, file: "all.yaml", environment: [:])
        #expect(all.shadowRoutes.isEmpty)
        #expect(all.overriding(shadow: true).shadowRoutes.map(\.name) == ["a", "b"])
        guard case .cache(let target) = all.overriding(shadow: true).plan(for: RequestHead(method: "GET", target: "/a", headers: [])).decision else {
            Issue.record("a cacheable route")
            return
        }
        #expect(target.shadow == ShadowSettings())
    }

    private func rejection(_ text: String) -> [String] {
        do {
            _ = try RulesLoader.parse(text, file: "r.yaml", environment: [:])
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    // MARK: JSON paths and the comparison

    @Test func jsonPaths() throws {
        let path = try JSONPath.parse("$.results[*]['updated-at']").get()
        #expect(path.steps == [.member("results"), .any, .member("updated-at")])
        #expect(path.matches([.member("results"), .index(3), .member("updated-at")]))
        #expect(!path.matches([.member("results"), .index(3)]))
        #expect(try JSONPath.parse("$.meta").get().covers([.member("meta"), .member("generated_at")]))
        #expect(try JSONPath.parse("$[0]").get().steps == [.index(0)])
        for bad in ["generated_at", "$.", "$[x]", "$.a[", "$a"] {
            guard case .failure = JSONPath.parse(bad) else { Issue.record("\(bad) must be refused"); continue }
        }
        #expect(JSONPath.written([.member("results"), .index(3), .member("unit price")]) == "$.results[3]['unit price']")
    }

    @Test func theComparisonNamesWhatDiffers() {
        let none = ShadowSettings()
        #expect(ShadowComparison.compare(stored: answer("{\"a\":1}"), origin: answer("{\"a\":1}"), settings: none) == .same)
        // JSON compared value by value: formatting is not a difference.
        #expect(ShadowComparison.compare(stored: answer("{\"a\": 1, \"b\": [1,2]}"), origin: answer("{\"b\":[1,2],\"a\":1}"), settings: none) == .same)
        #expect(ShadowComparison.compare(stored: answer("{\"a\":1,\"b\":[1,2]}"), origin: answer("{\"a\":2,\"b\":[1,3,4]}"), settings: none)
            == .differs(["$.a", "$.b[1]", "$.b[2]"]))
        #expect(ShadowComparison.compare(stored: answer("plain"), origin: answer("other"), settings: none) == .differs(["body"]))
        #expect(ShadowComparison.compare(stored: answer("{}", status: 200), origin: answer("{}", status: 404), settings: none) == .differs(["status"]))
        // Headers: compared, except those that always change and those the route ignores.
        let a = answer("{}", headers: json + [Header("Date", "x"), Header("X-Request-Id", "1")])
        let b = answer("{}", headers: json + [Header("Date", "y"), Header("X-Request-Id", "2")])
        #expect(ShadowComparison.compare(stored: a, origin: b, settings: none) == .differs(["header x-request-id"]))
        #expect(ShadowComparison.compare(stored: a, origin: b, settings: ShadowSettings(ignoredHeaders: ["x-request-id"])) == .same)
        // Ignored JSON paths, and everything below them.
        let generated = try! JSONPath.parse("$.meta").get()
        #expect(ShadowComparison.compare(stored: answer("{\"n\":1,\"meta\":{\"at\":1}}"), origin: answer("{\"n\":1,\"meta\":{\"at\":2}}"),
            settings: ShadowSettings(ignoredPaths: [generated])) == .same)
        // Equal ETags are equal answers.
        let tagged = [Header("ETag", "\"v1\"")]
        #expect(ShadowComparison.compare(stored: answer("1", headers: tagged), origin: answer("2", headers: tagged), settings: none) == .same)
        // Without parsing (a large body), a differing body is `body`.
        #expect(ShadowComparison.compare(stored: answer("{\"a\":1}"), origin: answer("{\"a\":2}"), settings: none, namesParts: false) == .differs(["body"]))
        // An origin's body nested past any sense is not JSON to the comparison (the decoder's depth limit), not a crash.
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(ShadowComparison.compare(stored: answer(deep), origin: answer(deep + " "), settings: none) == .differs(["body"]))
        // At most `maxDifferences`.
        let many = (0..<20).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let other = (0..<20).map { "\"k\($0)\":\($0 + 1)" }.joined(separator: ",")
        guard case .differs(let found) = ShadowComparison.compare(stored: answer("{\(many)}"), origin: answer("{\(other)}"), settings: none) else {
            Issue.record("they differ")
            return
        }
        #expect(found.count == ShadowComparison.maxDifferences)
    }

    // MARK: The machine in shadow

    private func machine(_ target: String) -> ReadThroughStateMachine {
        ReadThroughStateMachine(plan: Self.rules.plan(for: RequestHead(method: "GET", target: target, headers: [])), requestHeaders: [], clock: clock)
    }

    private func entry(_ address: EntryAddress, freshFor: Int64 = 60_000, staleFor: Int64 = 0) -> EntryMeta {
        let now = clock.nowMilliseconds()
        return EntryMeta(status: 200, headers: json, storedAt: now, freshUntil: now + freshFor, staleUntil: now + freshFor + staleFor,
            route: address.route, tags: address.tags, generations: [0, 0, 0, 0, 0], bodyLength: 2)
    }

    /// A fresh entry would have been served: the origin is asked anyway, alone, its answer kept to compare but not
    /// stored, and the client's answer is the origin's.
    @Test func aWouldBeHitIsFetchedComparedAndNotStored() throws {
        var sm = machine("/events/1")
        guard case .lookup(let address) = sm.start() else { Issue.record("a lookup first"); return }
        let meta = entry(address)
        #expect(sm.lookupCompleted(.found(meta, generations: meta.generations))
            == .fetch(.init(method: "GET", sendsBody: false, forStorage: true, coalesce: false)))
        #expect(sm.shadowServed == meta)
        guard case .respondWhileStoring(_, let plan) = sm.originStarted(status: 200, headers: json, declaredLength: 2) else {
            Issue.record("the answer is kept, to compare")
            return
        }
        #expect(plan.source == .origin)
        guard case .finished = sm.bodyReceived(length: 2, kept: true) else { Issue.record("compared, not stored"); return }
        // Found stale: the origin's answer takes the entry's place, so that the change is counted once.
        var stale = machine("/events/1")
        _ = stale.start()
        _ = stale.lookupCompleted(.found(meta, generations: meta.generations))
        _ = stale.originStarted(status: 200, headers: json, declaredLength: 2)
        stale.shadowFoundStale()
        guard case .store = stale.bodyReceived(length: 2, kept: true) else { Issue.record("a stale entry is replaced"); return }
    }

    /// Nothing would have been served: a miss, stored as in service, but never coalesced or revalidated.
    @Test func aWouldBeMissIsStoredAlone() throws {
        var sm = machine("/events/2")
        _ = sm.start()
        #expect(sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
            == .fetch(.init(method: "GET", sendsBody: false, forStorage: true, coalesce: false)))
        #expect(sm.shadowServed == nil)
        guard case .store = sm.originResponded(status: 200, headers: json, bodyLength: 2) else { Issue.record("a miss is stored"); return }
        // Past its stale window, an entry with validators is fetched whole, not revalidated.
        var expired = machine("/events/3")
        guard case .lookup(let address) = expired.start() else { return }
        var meta = entry(address, freshFor: -1000)
        meta.headers.append(Header("ETag", "\"v1\""))
        #expect(expired.lookupCompleted(.found(meta, generations: meta.generations))
            == .fetch(.init(method: "GET", sendsBody: false, forStorage: true, coalesce: false)))
        #expect(expired.shadowServed == nil)
    }

    /// An entry that would have been served stale (and refreshed): compared, and the origin's answer stored, as the
    /// refresh would have stored it.
    @Test func aWouldBeStaleServeIsComparedAndStored() throws {
        var sm = machine("/events/4")
        guard case .lookup(let address) = sm.start() else { return }
        let meta = entry(address, freshFor: -1, staleFor: 30_000)
        _ = sm.lookupCompleted(.found(meta, generations: meta.generations))
        #expect(sm.shadowServed == meta)
        guard case .store = sm.originResponded(status: 200, headers: json, bodyLength: 2) else { Issue.record("the refresh stores"); return }
    }

    // MARK: The report and its diagnosis

    @Test func aWriteThatDidNotPurgeIsNamed() throws {
        let report = ShadowReport(clock: clock)
        report.recordMiss(route: "events-list")
        for id in 1...3 {
            let stored = clock.nowMilliseconds()
            clock.advance(by: .seconds(1))
            report.recordWrite(route: "event-change", method: "PUT", target: "/events/\(id)", purged: PurgeSet(tags: ["event:\(id)"]))
            report.recordWrite(route: "(unmatched)", method: "POST", target: "/audit", purged: PurgeSet())
            clock.advance(by: .seconds(1))
            report.recordHit(route: "events-list", key: "events", target: "/events", storedAt: stored, tags: ["events", "events:list"],
                differences: ["$.events[\(id)].title"])
        }
        report.recordHit(route: "events-list", key: "events", target: "/events", storedAt: clock.nowMilliseconds(), tags: [], differences: [])
        let summary = report.summary(rules: Self.rules)
        let list = try #require(summary.routes.first { $0.name == "events-list" })
        #expect(list.counts.hits == 1 && list.counts.stale == 3 && list.counts.misses == 1)
        #expect(list.hitRatio == 0.8)
        let diagnosis = try #require(list.diagnosis)
        #expect(diagnosis.kind == .missingPurge)
        // Both writes were in every window; the one nearest the route's resource is named, and the tag only this
        // route carries (`events` would purge every event too) is suggested.
        #expect(diagnosis.writeRoute == "event-change")
        #expect(diagnosis.tag == "events:list")
        #expect(diagnosis.suggestion == "add tag `events:list` to route `event-change`'s purge.tags")
        #expect(diagnosis.evidence.first == "3 of 3 stale examples had a `event-change` write after the entry was stored")
        #expect(summary.routes.first { $0.name == "event" }?.diagnosis == nil)
    }

    @Test func noWriteMeansTheDataChangesBehindTrove() throws {
        let report = ShadowReport(clock: clock)
        let stored = clock.nowMilliseconds()
        clock.advance(by: .seconds(90))
        report.recordHit(route: "event", key: "event:1", target: "/events/1", storedAt: stored, tags: [], differences: ["$.title"])
        report.recordHit(route: "event", key: "event:1", target: "/events/1", storedAt: stored, tags: [], differences: [])
        let diagnosis = try #require(report.summary(rules: Self.rules).routes.first { $0.name == "event" }?.diagnosis)
        #expect(diagnosis.kind == .changesBehindTrove)
        #expect(diagnosis.quickestChange == 90_000)
        #expect(diagnosis.suggestion.contains("cache.ttl below 1m30s"))
    }

    @Test func aPartThatAlwaysDiffersIsVolatile() throws {
        let report = ShadowReport(clock: clock)
        for _ in 0..<3 {
            report.recordHit(route: "event", key: "event:1", target: "/events/1", storedAt: clock.nowMilliseconds(), tags: [],
                differences: ["$.served_at", "header x-trace"])
        }
        let diagnosis = try #require(report.summary(rules: Self.rules).routes.first { $0.name == "event" }?.diagnosis)
        #expect(diagnosis.kind == .volatile)
        #expect(diagnosis.suggestion == "add $.served_at, x-trace to route `event`'s cache.shadow.ignore")
        report.reset()
        #expect(report.summary(rules: Self.rules).routes.allSatisfy { $0.counts == ShadowReport.RouteCounts() })
    }

    /// The bounds: examples per route, differing parts per route, writes kept.
    @Test func theReportIsBounded() {
        let report = ShadowReport(clock: clock)
        for index in 0..<(ShadowReport.maxWrites + 10) {
            report.recordWrite(route: "event-change", method: "PUT", target: "/events/\(index)", purged: PurgeSet())
        }
        for index in 0..<100 {
            report.recordHit(route: "event", key: "k", target: "/events/1", storedAt: 0, tags: [], differences: ["$.f\(index)"])
        }
        let summary = report.summary(rules: Self.rules)
        #expect(summary.writesSeen == ShadowReport.maxWrites)
        #expect(summary.recentWrites.last?.target == "/events/\(ShadowReport.maxWrites + 9)", "the newest write is kept")
        let event = summary.routes.first { $0.name == "event" }
        #expect(event?.counts.examples.count == ShadowReport.maxExamples)
        #expect(event?.counts.parts.count == ShadowReport.maxParts)
        #expect(event?.counts.stale == 100)
        // Routes (those of earlier rules stay until a reset) and reasons for not comparing are bounded too.
        for index in 0..<(ShadowReport.maxRoutes + 10) { report.recordMiss(route: "r\(index)") }
        #expect(report.routesCounted == ShadowReport.maxRoutes)
        for index in 0..<40 { report.recordNotCompared(route: "event", why: "reason \(index)") }
        let reasons = report.summary(rules: Self.rules).routes.first { $0.name == "event" }?.counts.notCompared
        #expect(reasons?.count == ShadowReport.maxReasons + 1 && reasons?["other"] == 40 - ShadowReport.maxReasons)
    }
}
