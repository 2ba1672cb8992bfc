import TroveHTTP
import TroveRules
import Foundation
import Testing
@testable import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveServer
import TroveTestSupport

/// Shadow mode end to end, in front of the demo origin: clients get the origin's answers, and the report names what
/// the rules get wrong.
@Suite(.serialized) struct ShadowModeTests {
    /// The scenario's event routes in shadow; `changePurges` is what a PUT to an event purges.
    static func routes(changePurges: String, summaryShadow: String = "true") -> String {
        """
          - name: events-list
            match: GET /api/v1/events
            cache:
              key: "events:list:page={query.page|default:1}"
              ttl: 5m
              tags: [events, "events:list"]
              shadow: true
          - name: event
            match: GET /api/v1/events/{id}
            cache:
              key: "events:full:{id}"
              ttl: 10m
              tags: [events, "event:{id}"]
              shadow: true
          - name: summary
            match: GET /api/v1/summary
            cache: {key: summary, ttl: 10m, shadow: \(summaryShadow)}
          - name: event-change
            match: PUT,PATCH,DELETE /api/v1/events/{id}
            purge: {tags: [\(changePurges)]}
          - name: everything-else
            match: ANY /**
            pass: true
        """
    }

    /// The scripted traffic: reads of the list and of three events, each event renamed once in between.
    private func traffic(_ scenario: Scenario, _ trove: TroveApplication, round: Int) async throws {
        for id in 1...3 {
            for path in ["/api/v1/events", "/api/v1/events/\(id)"] {
                _ = try await scenario.request(trove, path)
                scenario.clock.advance(by: .seconds(1))
            }
            let put = try await scenario.request(trove, "PUT", "/api/v1/events/\(id)", headers: [Header("Content-Type", "application/json")],
                body: "{\"title\": \"Renamed \(round)-\(id)\"}")
            #expect(put.status == 200)
            scenario.clock.advance(by: .seconds(1))
            for path in ["/api/v1/events", "/api/v1/events/\(id)"] {
                _ = try await scenario.request(trove, path)
                scenario.clock.advance(by: .seconds(1))
            }
        }
    }

    private func report(_ scenario: Scenario, _ trove: TroveApplication) async throws -> ShadowSummary {
        let answer = try await scenario.admin(trove, "/shadow")
        #expect(answer.status == 200)
        return try JSONDecoder().decode(ShadowSummary.self, from: Data(answer.body.utf8))
    }

    /// A rules file missing one purge (a PUT to an event does not purge the list): the report names the route, the
    /// write route and the tag; with that tag added, the same traffic reports nothing stale.
    @Test(arguments: [false, true])
    func aMissingPurgeIsNamedAndItsFixHolds(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes(changePurges: "\"event:{id}\"")))
        try await traffic(scenario, trove, round: 1)
        let summary = try await report(scenario, trove)
        let list = try #require(summary.routes.first { $0.name == "events-list" })
        // After each rename the list would have been stale; each stale entry is counted once (the origin's answer is
        // then stored in its place), and the reads between renames compare equal.
        #expect(list.counts.stale == 3, "\(list.counts)")
        #expect(list.counts.hits == 2, "\(list.counts)")
        #expect(list.counts.misses == 1)
        let diagnosis = try #require(list.diagnosis)
        #expect(diagnosis.kind == .missingPurge)
        #expect(diagnosis.writeRoute == "event-change")
        #expect(diagnosis.tag == "events:list")
        #expect(diagnosis.suggestion == "add tag `events:list` to route `event-change`'s purge.tags")
        let event = try #require(summary.routes.first { $0.name == "event" })
        #expect(event.counts.stale == 0, "each event's own entry was purged by its PUT: \(event.counts)")
        #expect(event.diagnosis == nil)
        // Every stored answer was stored the way serve mode stores it: the detail was a miss after its purge.
        #expect(event.counts.misses == 6)
        #expect(summary.recentWrites.count == 3)
        let metrics = try await scenario.admin(trove, "/metrics").body
        #expect(metrics.contains(#"trove_shadow_answers_total{route="events-list",outcome="stale"} 3"#), "\(metrics.split(separator: "\n").filter { $0.contains("shadow") })")
        #expect(metrics.contains(#"trove_shadow_answers_total{route="event",outcome="miss"} 6"#))
        // Each example: the entry's age when found stale, and the write seen since it was stored, with what it purged.
        let example = try #require(list.counts.examples.first)
        #expect(example.ageMilliseconds == example.seenAt - example.storedAt && example.ageMilliseconds! > 0)
        #expect(example.writesSince?.map(\.route) == ["event-change"])
        #expect(example.writesSince?.first?.purged.tags == ["event:1"])
        #expect(summary.recentWrites.first?.purged.tags == ["event:1"])
        await scenario.stop(trove)

        // The rules as the report suggests them, on the same traffic from the same start.
        let fixedScenario = try await Scenario(redis: redis)
        let fixed = try await fixedScenario.trove(fixedScenario.rules(routes: Self.routes(changePurges: "\"event:{id}\", \"events:list\"")))
        try await traffic(fixedScenario, fixed, round: 1)
        let after = try await report(fixedScenario, fixed)
        #expect(after.routes.allSatisfy { $0.counts.stale == 0 }, "\(after.routes.map(\.counts))")
        // Each rename now purges the list: a miss after each, a hit between them.
        #expect(after.routes.first { $0.name == "events-list" }.map { [$0.counts.hits, $0.counts.misses] } == [2, 4])
        await fixedScenario.stop(fixed)
    }

    /// What a client gets in shadow is what the origin answers: the same status, body and headers, none of
    /// Trove's, whether Trove would have answered from its store or not.
    @Test func clientsGetTheOriginsAnswers() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes(changePurges: "\"event:{id}\"")))
        for path in ["/api/v1/events/5", "/api/v1/events/5", "/api/v1/events?page=2", "/api/v1/events?page=2", "/api/v1/events/999"] {
            let through = try await scenario.request(trove, path)
            let direct = try await scenario.request(url: scenario.origin.url + path)
            #expect(through.status == direct.status)
            #expect(through.body == direct.body, "\(path)")
            for name in ["Cache-Status", "X-Cache", "Age"] { #expect(through.header(name) == nil, "\(path): \(name)") }
            let comparable = { (answer: Scenario.Answer) in
                answer.headers.filter { !["date", "connection", "keep-alive"].contains($0.name.lowercased()) }.map { "\($0.name.lowercased()): \($0.value)" }.sorted()
            }
            #expect(comparable(through) == comparable(direct), "\(path)")
            scenario.clock.advance(by: .seconds(1))
        }
        // The origin saw every read: none was answered from the store.
        #expect(scenario.originCount("/api/v1/events/5") == 4)
        let summary = try await report(scenario, trove)
        let event = try #require(summary.routes.first { $0.name == "event" })
        // /api/v1/events/999 is a would-be miss too: a 404 is not stored (the route stores 200s).
        #expect(event.counts.hits == 1 && event.counts.misses == 2, "\(event.counts)")
        #expect(summary.routes.first { $0.name == "events-list" }?.counts.hits == 1)
        await scenario.stop(trove)
    }

    /// A field that changes on every request looks stale every time: it is reported as volatile, not as a rules
    /// problem, and once ignored the route's answers compare equal.
    @Test func aVolatileFieldIsReportedThenIgnored() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes(changePurges: "\"event:{id}\"")))
        for _ in 0..<4 {
            _ = try await scenario.request(trove, "/api/v1/summary")
            scenario.clock.advance(by: .seconds(1))
        }
        let summary = try #require(try await report(scenario, trove).routes.first { $0.name == "summary" })
        #expect(summary.counts.stale == 3)
        #expect(summary.diagnosis?.kind == .volatile)
        #expect(summary.diagnosis?.suggestion == "add $.generated_at to route `summary`'s cache.shadow.ignore")
        await scenario.stop(trove)

        let ignoring = try await Scenario(redis: false)
        let fixed = try await ignoring.trove(ignoring.rules(routes: Self.routes(changePurges: "\"event:{id}\"", summaryShadow: "{ignore: [$.generated_at]}")))
        for _ in 0..<4 {
            _ = try await ignoring.request(fixed, "/api/v1/summary")
            ignoring.clock.advance(by: .seconds(1))
        }
        let after = try #require(try await report(ignoring, fixed).routes.first { $0.name == "summary" })
        #expect(after.counts.stale == 0 && after.counts.hits == 3, "\(after.counts)")
        #expect(after.diagnosis == nil)
        await ignoring.stop(fixed)
    }

    /// Data changed straight at the origin, not through Trove: no write explains the stale answer, and the report
    /// says the data changes behind Trove's back, with the quickest change seen.
    @Test func aChangeBehindTrovesBackIsToldApart() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes(changePurges: "\"event:{id}\", \"events:list\"")))
        _ = try await scenario.request(trove, "/api/v1/events/8")
        scenario.clock.advance(by: .seconds(40))
        let put = try await scenario.request(url: scenario.origin.url + "/api/v1/events/8", "PUT", headers: [Header("Content-Type", "application/json")],
            body: "{\"title\": \"Changed behind Trove's back\"}")
        #expect(put.status == 200)
        _ = try await scenario.request(trove, "/api/v1/events/8")
        let event = try #require(try await report(scenario, trove).routes.first { $0.name == "event" })
        #expect(event.counts.stale == 1)
        #expect(event.counts.examples.first?.differences == ["$.title"] || event.counts.examples.first?.differences.contains("$.title") == true,
            "\(event.counts.examples)")
        #expect(event.diagnosis?.kind == .changesBehindTrove)
        #expect(event.diagnosis?.quickestChange == 40_000)
        let text = ShadowCommand.render(try await report(scenario, trove))
        #expect(text.contains("event: 1 stale of 1 would-be hits (changes-behind-trove)"), "\(text)")
        #expect(try await scenario.admin(trove, "DELETE", "/shadow").status == 200)
        #expect(try await report(scenario, trove).routes.allSatisfy { $0.counts.stale == 0 })
        await scenario.stop(trove)
    }

    /// `trove suggest`'s draft from a pass-through run's access log: it loads without a warning and, run in shadow on
    /// the same traffic against a fresh origin, would have answered some reads from the store and served nothing
    /// stale (or, if it would, named why).
    @Test func aDraftFromRecordedTrafficRunsInShadow() async throws {
        let recording = try await Scenario(redis: false)
        let (passing, sink, path) = try await recording.troveWithAccessLog(try recording.rules(routes: "  - {name: all, match: ANY /**, pass: true}"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await traffic(recording, passing, round: 1)
        _ = try await recording.request(passing, "/api/v1/summary")
        var requests: [RulesDraft.Request] = []
        try await eventually("every request is in the log") {
            sink.flush()
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            requests = text.split(separator: "\n").compactMap { RulesDraft.parse(line: $0) }
            return requests.count == 16
        }
        await recording.stop(passing)

        let replay = try await Scenario(redis: false)
        let draft = RulesDraft.draft(requests, origin: replay.origin.url, source: "test.log")
        #expect(draft.hasPrefix("# DRAFT rules"))
        let rules = try RulesLoader.parse(draft, file: "draft.yaml", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        #expect(rules.warnings.isEmpty, "\(rules.warnings)")
        #expect(Set(rules.routes.map(\.match)).isSuperset(of: ["GET /api/v1/events", "GET /api/v1/events/{event_id}", "PUT /api/v1/events/{event_id}"]))
        // The list and the event are cached, in shadow; the summary, read once, is too little to judge: passed.
        #expect(rules.shadowRoutes.map(\.name).sorted() == ["event", "events-list"])
        #expect(rules.routes.first { $0.match == "GET /api/v1/summary" }?.action.isPass == true)
        let trove = try await replay.trove(rules.overriding(listen: ListenAddress(parsing: "127.0.0.1:0"), admin: ListenAddress(parsing: "127.0.0.1:0")))
        try await traffic(replay, trove, round: 1)
        let summary = try await report(replay, trove)
        #expect(summary.routes.contains { $0.hitRatio > 0 }, "\(summary.routes.map { ($0.name, $0.counts) })")
        for route in summary.routes where route.counts.stale > 0 { #expect(route.diagnosis != nil, "\(route.name) is stale without a cause") }
        #expect(summary.routes.allSatisfy { $0.counts.stale == 0 }, "the draft purges what each write changes: \(summary.routes.map { ($0.name, $0.counts.stale) })")
        await replay.stop(trove)
    }

    /// `trove serve --shadow`: every cacheable route runs in shadow, and no answer on any route carries Trove's
    /// headers (reads, writes, passed requests): users see no change at all.
    @Test func shadowEverythingQuietsEveryAnswer() async throws {
        let scenario = try await Scenario(redis: false)
        let rules = try scenario.rules().overriding(shadow: true)
        #expect(rules.shadowRoutes.map(\.name) == ["events-list", "event", "asin-stats", "plain", "override"])
        let trove = try await scenario.trove(rules)
        var answers = [try await scenario.request(trove, "/api/v1/events/4"), try await scenario.request(trove, "/api/v1/events/4")]
        answers.append(try await scenario.request(trove, "PUT", "/api/v1/events/4", headers: [Header("Content-Type", "application/json")],
            body: "{\"title\": \"Quiet\"}"))
        answers.append(try await scenario.request(trove, "/echo/anything"))
        for answer in answers {
            #expect(answer.status < 500)
            for name in ["Cache-Status", "X-Cache", "Age"] { #expect(answer.header(name) == nil, "\(name): \(answer.headers)") }
        }
        #expect(scenario.originCount("/api/v1/events/4") == 3, "both reads, and the write, reached the origin")
        let event = try #require(try await report(scenario, trove).routes.first { $0.name == "event" })
        #expect(event.counts.hits == 1 && event.counts.misses == 1)
        await scenario.stop(trove)
    }
}
