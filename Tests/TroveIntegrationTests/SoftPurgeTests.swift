import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Soft purges through a running Trove, with a real origin, on both stores: a broad purge in front of a 2 requests/s
/// origin costs no 503 and one refresh per entry; a fetch that began before the purge never stores a fresh entry.
@Suite(.serialized) struct SoftPurgeTests {
    /// Ten entries tagged `events`, a soft purge of the tag, then 100 clients at once: every one is answered (stale),
    /// the origin is asked at most once per entry and never past its limit, and the entries come back fresh.
    @Test(arguments: [false, true])
    func aBroadSoftPurgeInFrontOfASlowOriginCostsNoErrors(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis, origin: .init(rateLimit: (perSecond: 2, burst: 12)))
        let trove = try await scenario.trove(scenario.rules(origin: "rate: 2/s, burst: 10, queue: 4, queue_timeout: 1s"))
        let paths = (1...10).map { "/api/v1/events/\($0)" }
        for path in paths { #expect(try await scenario.request(trove, path).status == 200) }
        for path in paths { #expect(try await scenario.request(trove, path).xCache == "HIT") }
        let warmed = scenario.origin.stats.snapshot.total

        let purge = try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["events"], "soft": true, "stale": "1m"}"#)
        #expect(purge.status == 200)
        #expect((try purge.json()["purged"] as? [String: Any])?["soft"] as? Bool == true)
        let metrics = try await scenario.admin(trove, "/metrics").body
        #expect(metrics.contains(#"trove_purges_total{source="admin",mode="soft"} 1"#))

        let answers = try await withThrowingTaskGroup(of: Scenario.Answer.self) { group in
            for index in 0..<100 { group.addTask { try await scenario.request(trove, paths[index % 10]) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.map(\.status).filter { $0 != 200 })")
        #expect(answers.allSatisfy { $0.xCache == "STALE" || $0.xCache == "HIT" })
        #expect(answers.contains { $0.cacheStatus?.contains("detail=SOFT-PURGED") == true })
        #expect(scenario.origin.stats.snapshot.byStatus["429"] == nil, "the origin never had to refuse")
        #expect(scenario.origin.stats.snapshot.total - warmed <= 10, "at most one refresh per entry")
        // Each entry is refreshed (at the origin's pace) and then a hit again.
        try await eventually("every entry refreshed", timeout: .seconds(30)) {
            var hits = 0
            for path in paths where try await scenario.request(trove, path).xCache == "HIT" { hits += 1 }
            return hits == paths.count
        }
        #expect(scenario.origin.stats.snapshot.byStatus["429"] == nil)
        await scenario.stop(trove)
    }

    /// A fetch that was at the origin when the soft purge was answered records the counters from before it: what
    /// it stores is stale at once, served while another refresh runs, never a fresh hit.
    @Test(arguments: [false, true])
    func aFetchThatBeganBeforeTheSoftPurgeIsNeverStoredFresh(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        // The origin timeout outlasts the hold: on a loaded machine the second member can take seconds to arrive.
        let trove = try await scenario.trove(scenario.rules(timeout: "30s"))
        let held = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "soft"), Header("X-Origin-Gather-Ms", "10000")]
        async let first = scenario.request(trove, "/api/v1/events/3", headers: held)
        try await eventually("the fetch reached the origin") { scenario.origin.stats.count(path: "/api/v1/events/3") == 1 }
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:3"], "soft": true, "stale": "1m"}"#).status == 200)
        // The second member of the group: the held fetch is answered.
        _ = try await scenario.request(url: scenario.origin.url + "/api/v1/events/3", headers: held)
        let raced = try await first
        #expect(raced.status == 200 && raced.xCache == "MISS")
        let next = try await scenario.request(trove, "/api/v1/events/3")
        #expect(next.xCache == "STALE", "stored from a fetch older than the purge: \(next.cacheStatus ?? "")")
        #expect(next.cacheStatus?.contains("detail=SOFT-PURGED") == true)
        try await eventually("refreshed after the purge") { try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT" }
        await scenario.stop(trove)
    }

    /// A write route with `soft:` makes the lists it names stale (answered at once, then refreshed) while the
    /// written event itself is purged hard: its writer never reads the old version back.
    @Test(arguments: [false, true])
    func aSoftWriteRuleKeepsListsAndDropsTheWrittenEntry(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let routes = Scenario.routes.replacingOccurrences(of: #"purge: {tags: ["event:{id}", "events:list"]}"#,
            with: #"purge: {tags: ["event:{id}", "events:list"], soft: 1m}"#)
        #expect(routes != Scenario.routes)
        let trove = try await scenario.trove(scenario.rules(routes: routes))
        for path in ["/api/v1/events/5", "/api/v1/events?page=1"] {
            _ = try await scenario.request(trove, path)
            #expect(try await scenario.request(trove, path).xCache == "HIT")
        }
        let write = try await scenario.request(trove, "PUT", "/api/v1/events/5", headers: [Header("Content-Type", "application/json")],
            body: #"{"title": "renamed"}"#)
        #expect((200..<300).contains(write.status))
        let written = try await scenario.request(trove, "/api/v1/events/5")
        #expect(written.xCache == "MISS", "the written resource is purged hard")
        let list = try await scenario.request(trove, "/api/v1/events?page=1")
        #expect(list.xCache == "STALE" && list.cacheStatus?.contains("detail=SOFT-PURGED") == true, "\(list.cacheStatus ?? "")")
        try await eventually("the list refreshed") { try await scenario.request(trove, "/api/v1/events?page=1").xCache == "HIT" }
        // `GET /purges` shows the write's purge: soft, what it named, the counters it moved, its route.
        let listing = try await scenario.admin(trove, "/purges")
        #expect(listing.status == 200)
        let purges = try #require(try listing.json()["purges"] as? [[String: Any]])
        let latest = try #require(purges.first)
        #expect(latest["source"] as? String == "write_rule" && latest["mode"] as? String == "soft" && latest["result"] as? String == "applied")
        #expect(latest["tags"] as? [String] == ["event:5", "events:list"])
        #expect(latest["countersMoved"] as? Int == 3, "two tags and the written target's key")
        #expect((latest["context"] as? [String: String])?["route.name"] == "event-change")
        await scenario.stop(trove)
    }

    /// The admin API's answers to soft purges it cannot make say what to write instead.
    @Test func theAdminAPIExplainsItsSoftFields() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove()
        let cases: [(String, String)] = [
            (#"{"tags": ["events"], "stale": "1m"}"#, "stale is the window of a soft purge: add \\\"soft\\\": true"),
            (#"{"tags": ["events"], "soft": true, "stale": "soon"}"#, "stale is a duration such as \\\"30s\\\" or \\\"5m\\\", not 'soon'"),
            (#"{"tags": ["events"], "soft": "yes"}"#, "soft is true or false"),
            (#"{"tags": ["events"], "soft": true, "stale": 30}"#, "stale is a duration such as \\\"30s\\\" or \\\"5m\\\""),
        ]
        for (body, message) in cases {
            let answer = try await scenario.admin(trove, "POST", "/purge", json: body)
            #expect(answer.status == 400)
            #expect(answer.body.contains(message), "\(body): \(answer.body)")
        }
        await scenario.stop(trove)
    }
}
