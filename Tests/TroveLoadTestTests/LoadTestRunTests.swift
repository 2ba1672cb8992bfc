import Foundation
import Synchronization
import Testing
import TroveFixtures
import TroveLoadTest

/// The whole tool as a person runs it: the demo origin and `trove serve` as processes (the `trove` built next to
/// the tests), a real redis-server, before and after.
@Suite(.serialized) struct LoadTestRunTests {
    static func scenario(_ extra: String) throws -> Scenario {
        let rules = ScenarioTests.root.appendingPathComponent("rules/demo.yaml").path
        return try Scenario.load(try ScenarioTests.file("""
            name: e2e
            rules: \(rules)
            origin: {delay: 50ms}
            \(extra)
            requests:
              - {weight: 95, get: "/api/v1/events/{id}", id: "uniform(1..5)"}
              - {weight: 5, put: "/api/v1/events/{id}", id: "uniform(1..5)", body: '{"title": "x"}'}
            """))
    }

    static func work() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("trove-lt-\(UUID().uuidString)").path
    }

    @Test func beforeAndAfterWithRedis() async throws {
        let scenario = try Self.scenario("store: redis\nload: {mode: rate, rate: 40/s, warmup: 1s, duration: 2s}")
        let notes = Notes()
        let sides = try await LoadTest.run(scenario, options: .init(workDirectory: Self.work())) { notes.add($0) }
        try #require(sides.count == 2)
        let (before, after) = (sides[0], sides[1])
        #expect(before.result.answered == 80)
        #expect(after.result.answered == 80)
        #expect(before.result.failed == 0 && after.result.failed == 0)
        #expect(before.result.statuses == [200: 80])
        #expect(after.result.statuses == [200: 80])
        // Straight at the origin, it served every measured request (it counts those the generator marks);
        // through Trove, far fewer: the hits.
        #expect(before.origin.total == 80)
        #expect(after.origin.total < 40, "hits were answered by Trove: the origin served \(after.origin.total)")
        #expect((after.result.hitRatio ?? 0) > 0.5)
        #expect(after.result.xCache["HIT", default: 0] > 0)
        #expect(before.result.xCache.isEmpty, "the origin says nothing about caches")
        #expect(after.trove?.total["requests"] ?? 0 >= 120, "Trove counted warm-up and measured requests")
        #expect(after.trove?.routes["event"]?["hits"] ?? 0 > 0)
        #expect(notes.texts.contains { $0.hasPrefix("trove serve on 127.0.0.1:") && $0.contains("Redis store") })
        #expect(notes.progressCount > 0)
    }

    /// Issue #5 at a small scale: Redis killed and restarted under load, and no request fails.
    @Test func redisKilledUnderLoadFailsNoRequest() async throws {
        let scenario = try Self.scenario("""
            store: redis
            sides: [after]
            load: {mode: rate, rate: 50/s, warmup: 1s, duration: 5s}
            chaos: {kill_redis: 1s, restart_redis: 3s}
            """)
        let notes = Notes()
        let sides = try await LoadTest.run(scenario, options: .init(sides: [.after], workDirectory: Self.work())) { notes.add($0) }
        let after = try #require(sides.first)
        #expect(after.result.answered == 250)
        #expect(after.result.failed == 0, "\(after.result.failures)")
        #expect(after.result.statuses == [200: 250])
        #expect(after.chaos.count == 2, "\(after.chaos)")
        #expect(after.chaos.first?.hasPrefix("Redis killed") == true)
        #expect(after.chaos.last?.hasPrefix("Redis restarted") == true)
        #expect(after.result.xCache["HIT", default: 0] > 0)
    }

    /// Issue #16 at a small scale: the master killed under load, the sentinels (the cluster) promote its replica,
    /// and no request fails; the timeline covers every second.
    @Test(arguments: ["redis-sentinel", "redis-cluster"]) func aMasterKilledUnderLoadFailsNoRequest(store: String) async throws {
        let scenario = try Self.scenario("""
            store: \(store)
            sides: [after]
            load: {mode: rate, rate: 40/s, warmup: 1s, duration: 8s}
            chaos: {kill_master: 1s}
            """)
        let notes = Notes()
        let sides = try await LoadTest.run(scenario, options: .init(sides: [.after], workDirectory: Self.work())) { notes.add($0) }
        let after = try #require(sides.first)
        #expect(after.result.answered == 320)
        #expect(after.result.failed == 0, "\(after.result.failures)")
        #expect(after.result.statuses == [200: 320])
        #expect(after.chaos.first?.contains("killed (SIGKILL)") == true, "\(after.chaos)")
        #expect(after.chaos.last?.contains(store == "redis-cluster" ? "the cluster promoted" : "the sentinels named") == true, "\(after.chaos)")
        #expect(after.result.timeline.count == 8)
        #expect(after.result.timeline.map(\.answered).reduce(0, +) == 320)
        #expect(after.result.timeline.allSatisfy { $0.errors == 0 })
        #expect(notes.texts.contains { $0.contains(store == "redis-cluster" ? "a cluster of 3 masters" : "behind 3 sentinels") })
    }

    @Test func aBrokenRulesFileIsReportedBeforeAnythingStarts() async throws {
        let rules = try ScenarioTests.file("version: 1\nroutes: []\nlisten: nowhere\n")
        let scenario = try Scenario.load(try ScenarioTests.file("rules: \(rules)\nrequests: [{get: /a}]\n"))
        let error = await #expect(throws: LoadTestError.self) {
            try await LoadTest.run(scenario, options: .init(workDirectory: Self.work())) { _ in }
        }
        #expect(error?.description.contains("its rules file is invalid") == true)
        #expect(error?.description.contains("trove check -c") == true)
    }
}

final class Notes: Sendable {
    private let state = Mutex<(texts: [String], progress: Int)>(([], 0))
    var texts: [String] { state.withLock { $0.texts } }
    var progressCount: Int { state.withLock { $0.progress } }

    func add(_ event: LoadTest.Event) {
        state.withLock { state in
            switch event {
            case .note(let text): state.texts.append(text)
            case .progress: state.progress += 1
            }
        }
    }
}
