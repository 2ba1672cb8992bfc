import TroveHTTP
import TroveRules
import Foundation
import Testing
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// `trove serve` as its own process, driven with signals: SIGHUP reloads, SIGTERM drains.
@Suite(.serialized) struct ProcessTests {
    /// The `trove` executable next to the test bundle (`swift build`, which `make test` runs first, builds it).
    static func executable() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        let path = directory + "/trove"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSupportError("\(path) is missing: build it first with `swift build` (`make test` does)")
        }
        return path
    }

    @Test func sighupReloadsAndSigtermDrains() async throws {
        let scenario = try await Scenario(redis: false)
        let proxyPort = try Sockets.freePort()
        let adminPort = try Sockets.freePort()
        let yaml = scenario.yaml()
            .replacingOccurrences(of: "listen: 127.0.0.1:0\n", with: "listen: 127.0.0.1:\(proxyPort)\n")
            .replacingOccurrences(of: "{listen: 127.0.0.1:0,", with: "{listen: 127.0.0.1:\(adminPort),")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("trove-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rules = directory + "/rules.yaml"
        let log = directory + "/trove.log"
        try yaml.write(toFile: rules, atomically: true, encoding: .utf8)

        let trove = try ChildProcess(
            executable: try Self.executable(), arguments: ["serve", "--config", rules, "--drain", "5s"], outputFile: log,
            environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        let admin = "http://127.0.0.1:\(adminPort)"
        let token = [Header("Authorization", "Bearer \(Scenario.token)")]
        // A bound, not a speed: starting the debug binary while the whole suite runs took over 10 s once in CI.
        try await eventually("trove serve answers /healthz", timeout: .seconds(60)) {
            (try? await scenario.request(url: admin + "/healthz").status) == 200
        }
        #expect(try await scenario.request(url: "http://127.0.0.1:\(proxyPort)/api/v1/events/1").xCache == "MISS")
        #expect(try await scenario.request(url: "http://127.0.0.1:\(proxyPort)/api/v1/events/1").xCache == "HIT")
        let version = { () async throws -> String? in
            (try await scenario.request(url: admin + "/readyz", headers: token).json()["rules"] as? [String: Any])?["version"] as? String
        }
        let first = try await version()

        // SIGHUP: the changed file is put in force.
        try yaml.replacingOccurrences(of: "ttl: 10m", with: "ttl: 2m").write(toFile: rules, atomically: true, encoding: .utf8)
        trove.signal(SIGHUP)
        try await eventually("SIGHUP reloaded the rules") { try await version() != first }

        // SIGTERM while a slow request is in flight: it is answered, then Trove exits 0.
        // The origin holds the request until the test sends a second one of its group, after the SIGTERM (or for
        // 1.5 s, within the origin's 2 s timeout): so the signal finds it in flight.
        let hold = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "drain"), Header("X-Origin-Gather-Ms", "1500")]
        let slow = Task {
            try await scenario.request(url: "http://127.0.0.1:\(proxyPort)/api/v1/events/2", headers: hold)
        }
        try await eventually("the slow request reached the origin") { scenario.origin.stats.count(path: "/api/v1/events/2") == 1 }
        trove.signal(SIGTERM)
        #expect(try await scenario.request(url: scenario.origin.url + "/api/v1/events/3", headers: hold).status == 200)
        let answer = try await slow.value
        #expect(answer.status == 200)
        #expect(try answer.json()["id"] as? Int == 2)
        let status = await Task.detached { trove.waitForExit() }.value
        #expect(status == 0)
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("SIGHUP: rules"))
        #expect(output.contains("draining"))
        await scenario.stop()
    }
}
