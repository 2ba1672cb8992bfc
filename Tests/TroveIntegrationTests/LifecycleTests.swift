import TroveHTTP
import TroveRules
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport
import Synchronization

/// Reload, drain, and Redis failing under load.
@Suite(.serialized) struct LifecycleTests {
    private func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trove-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A valid change applies at once (a new TTL for new entries); a file with errors is refused with
    /// file:line and the rules in force keep serving; a request in flight finishes under the rules it began with.
    @Test func reload() async throws {
        let scenario = try await Scenario(redis: false)
        let path = try temporaryFile(scenario.yaml(timeout: "30s"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let trove = try await scenario.trove(scenario.rules(timeout: "30s"), rulesPath: path)
        let before = try await scenario.admin(trove, "/readyz").json()
        let firstVersion = (before["rules"] as? [String: Any])?["version"] as? String
        _ = try await scenario.request(trove, "/api/v1/events/1")
        #expect(try await scenario.admin(trove, "/entry?key=events:full:1").json()["ttl"] as? Int == 600)

        // A slow request starts under the old rules...
        // (Held at the origin until the test releases it after the reload: always in flight meanwhile.)
        let hold = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "reload"), Header("X-Origin-Gather-Ms", "20000")]
        let slow = Task { try await scenario.request(trove, "/api/v1/events/2", headers: hold) }
        try await eventually("the slow request reached the origin") { scenario.origin.stats.count(path: "/api/v1/events/2") == 1 }
        // ...and the route becomes pass-through, with a shorter TTL for events on another route.
        let changed = scenario.yaml(timeout: "30s").replacingOccurrences(of: """
              key: "events:full:{id}"
                  ttl: 10m
            """, with: """
              key: "events:full:{id}"
                  ttl: 1m
            """)
        #expect(changed != scenario.yaml(timeout: "30s"))
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await scenario.admin(trove, "POST", "/reload")
        #expect(applied.status == 200)
        #expect(try applied.json()["applied"] as? Bool == true)
        let newVersion = try applied.json()["version"] as? String
        #expect(newVersion != nil && newVersion != firstVersion)
        #expect((try await scenario.admin(trove, "/readyz").json()["rules"] as? [String: Any])?["version"] as? String == newVersion)
        #expect(try await scenario.request(url: scenario.origin.url + "/api/v1/events/3", headers: hold).status == 200)
        let finished = try await slow.value
        #expect(finished.xCache == "MISS")
        // The slow request stored under the rules it began with (10 minutes)...
        #expect(try await scenario.admin(trove, "/entry?key=events:full:2").json()["ttl"] as? Int == 600)
        // ...new entries get the new TTL, old ones keep theirs.
        _ = try await scenario.request(trove, "/api/v1/events/3")
        #expect(try await scenario.admin(trove, "/entry?key=events:full:3").json()["ttl"] as? Int == 60)
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT")

        // A broken file is refused, and the rules in force stay.
        try changed.replacingOccurrences(of: "ttl: 1m", with: "ttl: 1 minute").write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try await scenario.admin(trove, "POST", "/reload")
        #expect(refused.status == 400)
        let errors = try refused.json()["errors"] as? [String] ?? []
        #expect(errors.contains { $0.hasPrefix("\(path):") && $0.contains("error: route 'event': cache.ttl: '1 minute' is not a duration") })
        #expect((try await scenario.admin(trove, "/readyz").json()["rules"] as? [String: Any])?["version"] as? String == newVersion)
        #expect(try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT")
        await scenario.stop(trove)
    }

    /// Stopping lets requests in flight finish, and takes no new ones.
    @Test func drainsOnStop() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove(scenario.rules(timeout: "30s"))
        let port = trove.publicPort
        // Held at the origin until the listener is closed: always in flight while Trove stops.
        let hold = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "drain"), Header("X-Origin-Gather-Ms", "20000")]
        let slow = Task { try await scenario.request(trove, "/api/v1/events/5", headers: hold) }
        try await eventually("the slow request reached the origin") { scenario.origin.stats.count(path: "/api/v1/events/5") == 1 }
        let stopping = Task { await trove.stop(grace: .seconds(5)) }
        try await eventually("the listener is closed") { (try? Sockets.exchange(port: port, request: [], timeout: 1) { _ in true }) == nil }
        #expect(try await scenario.request(url: scenario.origin.url + "/api/v1/events/6", headers: hold).status == 200)
        let answer = try await slow.value
        #expect(answer.status == 200)
        #expect(try answer.json()["id"] as? Int == 5)
        #expect(answer.header("Connection") == "close")
        await stopping.value
        await scenario.stop()
    }

    /// Redis killed while clients keep asking: every request still gets a correct answer; Redis back: hits
    /// again, without restarting Trove.
    @Test func redisKilledUnderLoad() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove()
        // The phases follow the answers, not the clock: Redis is killed once 50 answers came with it up, started
        // again once 50 more came without it, and the workers stop once 50 came after that.
        final class Progress: Sendable {
            let answered = Atomic<Int>(0)
            let finished = Atomic<Bool>(false)
        }
        let progress = Progress()
        let results = try await withThrowingTaskGroup(of: [(Int, Int, Int?)].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var seen: [(Int, Int, Int?)] = []
                    var round = 0
                    while !progress.finished.load(ordering: .relaxed) {
                        let id = (worker * 7 + round) % 10 + 1
                        let answer = try await scenario.request(trove, "/api/v1/events/\(id)")
                        seen.append((id, answer.status, try? answer.json()["id"] as? Int))
                        progress.answered.add(1, ordering: .relaxed)
                        round += 1
                    }
                    return seen
                }
            }
            group.addTask {
                defer { progress.finished.store(true, ordering: .relaxed) }
                for phase in 1...3 {
                    try await eventually("\(50 * phase) answers", timeout: .seconds(60)) { progress.answered.load(ordering: .relaxed) >= 50 * phase }
                    if phase == 1 { scenario.redis?.kill() }
                    if phase == 2 { try scenario.redis?.start() }
                }
                return []
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(results.count >= 150)
        #expect(results.allSatisfy { $0.1 == 200 }, "\(results.filter { $0.1 != 200 }.count) requests failed")
        #expect(results.allSatisfy { $0.0 == $0.2 }, "every answer is the event asked for")
        try await eventually("hits resume", timeout: .seconds(15)) {
            _ = try await scenario.request(trove, "/api/v1/events/1")
            return try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT"
        }
        await scenario.stop(trove)
    }
}
