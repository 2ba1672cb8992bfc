import TroveHTTP
import Foundation
import Testing
import TroveLoadTest

/// Scenario files: the shipped ones load, and mistakes are named with their line.
struct ScenarioTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Writes `yaml` to a scenario file in a fresh directory next to a copy of the demo rules.
    static func file(_ yaml: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("trove-lt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("scenario.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func everyShippedScenarioLoads() throws {
        let directory = Self.root.appendingPathComponent("loadtest/scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 6)
        for file in files {
            let scenario = try Scenario.load(directory.appendingPathComponent(file).path)
            #expect(FileManager.default.fileExists(atPath: scenario.rules), "\(file) names a rules file that exists")
            #expect(!scenario.requests.isEmpty)
        }
    }

    @Test func readsEveryField() throws {
        let path = try Self.file("""
            name: example
            rules: ../rules.yaml
            origin: {delay: 2s..3s, rate: 2/s, burst: 40}
            store: redis
            users: 7
            sides: [after]
            load: {mode: closed, rate: 50/s, connections: 8, duration: 3s, warmup: 1s, timeout: 4s}
            chaos: {kill_redis: 1s, restart_redis: 2s}
            requests:
              - {weight: 9, get: "/api/v1/events/{id}", id: "zipf(1..60, 1.2)", headers: {Accept: application/json}}
              - {weight: 1, put: "/api/v1/events/{id}", id: "uniform(1..3)", user: true, body: '{"a": 1}'}
            """)
        let scenario = try Scenario.load(path)
        #expect(scenario.name == "example")
        #expect(scenario.rules == URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("rules.yaml").path)
        #expect(scenario.origin.delay == .seconds(2))
        #expect(scenario.origin.jitter == .seconds(1))
        #expect(scenario.origin.rate == 2)
        #expect(scenario.origin.burst == 40)
        #expect(scenario.store == .redis)
        #expect(scenario.users == 7)
        #expect(scenario.sides == ["after"])
        #expect(scenario.load.mode == .closed)
        #expect(scenario.load.rate == 50)
        #expect(scenario.load.connections == 8)
        #expect(scenario.load.duration == .seconds(3))
        #expect(scenario.load.warmup == .seconds(1))
        #expect(scenario.load.timeout == .seconds(4))
        guard case .redisOutage(let kill, let restart)? = scenario.chaos else {
            Issue.record("chaos: \(String(describing: scenario.chaos))")
            return
        }
        #expect(kill == .seconds(1))
        #expect(restart == .seconds(2))
        #expect(scenario.requests.count == 2)
        #expect(scenario.requests[0].values["id"] == .zipf(1...60, exponent: 1.2))
        #expect(scenario.requests[0].headers.first?.0 == "Accept")
        #expect(scenario.requests[1].method == "PUT")
        #expect(scenario.requests[1].user)
        #expect(scenario.requests[1].body == #"{"a": 1}"#)
    }

    @Test(arguments: [
        ("rules: r.yaml\nrequests: [{get: /a}]\nlods: {}\n", ":3:1: unknown key 'lods'"),
        ("rules: r.yaml\nload: {rate: fast}\nrequests: [{get: /a}]\n", "load.rate: 'fast' is not a rate"),
        ("rules: r.yaml\nload: {duration: 10 seconds}\nrequests: [{get: /a}]\n", "load.duration: '10 seconds' is not a duration"),
        ("rules: r.yaml\nload: {mode: rate, burst: 3}\nrequests: [{get: /a}]\n", "unknown key 'load.burst'"),
        ("rules: r.yaml\nrequests: [{get: '/a/{id}'}]\n", "'{id}' in /a/{id} has no values"),
        ("rules: r.yaml\nrequests: [{weight: 3}]\n", "say the method and path"),
        ("rules: r.yaml\nrequests: [{get: '/a/{id}', id: 'zipf(9..1)'}]\n", "'id': 'zipf(9..1)' is not a value"),
        ("rules: r.yaml\nchaos: {kill_redis: 1s, restart_redis: 2s}\nrequests: [{get: /a}]\n", "kills the one Redis, so it needs store: redis"),
        ("rules: r.yaml\nstore: redis\nchaos: {kill_master: 1s}\nrequests: [{get: /a}]\n", "needs a master to replace: store: redis-sentinel or redis-cluster"),
        ("rules: r.yaml\nstore: redis-cluster\nchaos: {kill_master: 1s, restart_redis: 2s}\nrequests: [{get: /a}]\n", "{kill_master: 5s} alone"),
        ("rules: r.yaml\nstore: redis-clustre\nrequests: [{get: /a}]\n", "store: redis, redis-sentinel, redis-cluster, memory"),
        ("rules: r.yaml\nstore: redis\nchaos: {kill_redis: 3s, restart_redis: 2s}\nrequests: [{get: /a}]\n", "chaos: {kill_redis: 5s"),
        ("rules: r.yaml\nsides: [later]\nrequests: [{get: /a}]\n", "sides: [before, after]"),
        ("requests: [{get: /a}]\n", "'rules:' names the rules file"),
        ("rules: r.yaml\n", "'requests:' lists the requests"),
    ])
    func mistakesAreNamedWithTheirLine(yaml: String, message: String) throws {
        let path = try Self.file(yaml)
        let error = #expect(throws: Scenario.ParseError.self) { try Scenario.load(path) }
        #expect(error?.description.hasPrefix(path) == true)
        #expect(error?.description.contains(message) == true, "\(error?.description ?? "no error")")
    }

    @Test func aMissingFileSaysSo() {
        let error = #expect(throws: Scenario.ParseError.self) { try Scenario.load("/nonexistent/scenario.yaml") }
        #expect(error?.description.contains("cannot be read") == true)
    }
}
