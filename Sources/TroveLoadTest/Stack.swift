internal import TroveHTTP
internal import Foundation
internal import Synchronization
internal import TroveFixtures
internal import TroveRules

/// The processes a load test measures: the demo origin, the Redis the scenario names (one `redis-server`, a master
/// and replica watched by sentinels, or a cluster), and `trove serve` in front of them, all on free loopback ports. Whoever starts one stops it (`stop()`).
///
/// Everything runs as a process of its own, as it does in production: the load test sees Trove from the
/// outside, through HTTP, exactly like a client.
final class Stack {
    let trove: String
    let scenario: Scenario
    /// Logs of the processes go here.
    let directory: String
    let rules: RuleSet

    private(set) var originPort = 0
    private(set) var redis: RedisServer?
    private(set) var sentinels: RedisSentinels?
    private(set) var cluster: RedisClusterServers?
    private(set) var proxyPort = 0
    private(set) var adminPort = 0
    /// What is running, so that a signal handler on another thread can stop it too.
    let running = RunningProcesses()
    /// The bearer token of Trove's admin API (random per run), when the rules ask for one.
    private let adminToken = "loadtest-\(UInt64.random(in: (1 << 60)...UInt64.max))"

    init(trove: String, scenario: Scenario, directory: String) throws {
        self.trove = trove
        self.scenario = scenario
        self.directory = directory
        do {
            rules = try RulesLoader.load(path: scenario.rules)
        } catch {
            throw LoadTestError("\(scenario.file): its rules file is invalid:\n"
                + error.diagnostics.map { "  \($0)" }.joined(separator: "\n") + "\n  (check it with `trove check -c \(scenario.rules)`)")
        }
    }

    /// `trove` next to this executable (both are built together), or `explicit`.
    static func troveExecutable(explicit: String?) throws -> String {
        if let explicit {
            guard FileManager.default.isExecutableFile(atPath: explicit) else { throw LoadTestError("--trove \(explicit) is not an executable") }
            return explicit
        }
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let candidate = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("trove").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw LoadTestError("\(candidate) is missing: build it with `swift build -c release` (or pass --trove PATH)")
        }
        return candidate
    }

    // MARK: Processes

    func startOrigin() throws {
        // Port 0: the origin takes a port the kernel gives it and says which, so no other server can be handed
        // the same one between a `freePort` probe and the origin's bind.
        var arguments = ["demo-origin", "--listen", "127.0.0.1:0", "--delay", Self.delayText(scenario.origin)]
        if let rate = scenario.origin.rate { arguments += ["--rate", String(rate), "--burst", String(scenario.origin.burst)] }
        let log = directory + "/origin.log"
        let origin = try ChildProcess(executable: trove, arguments: arguments, outputFile: log)
        running.add("origin") { origin.stop(signal: SIGTERM) }
        originPort = try waitForAnnouncedPort(origin, name: "the demo origin", log: log, prefix: "demo origin on http://127.0.0.1:")
        try waitUntilServing(origin, name: "the demo origin", port: originPort, path: "/__stats", log: log)
    }

    func startRedisIfNeeded() throws {
        switch scenario.store {
        case .redis where redis == nil:
            let redis = try RedisServer()
            self.redis = redis
            running.add("redis") { redis.stop() }
        case .redisSentinel where sentinels == nil:
            let sentinels = try RedisSentinels(sentinels: 3, downAfter: .seconds(1))
            self.sentinels = sentinels
            running.add("redis") { for server in sentinels.servers { server.stop() } }
        case .redisCluster where cluster == nil:
            let cluster = try RedisClusterServers(masters: 3, replicas: 1)
            self.cluster = cluster
            running.add("redis") { for server in cluster.servers { server.stop() } }
        default:
            break
        }
    }

    /// What the report says about the store.
    var storeDescription: String {
        if let redis { return "Redis store, redis-server on 127.0.0.1:\(redis.port)" }
        if let sentinels { return "Redis store, master 'mymaster' and a replica behind 3 sentinels (\(sentinels.url()))" }
        if let cluster { return "Redis store, a cluster of 3 masters with a replica each (\(cluster.url()))" }
        return "memory store"
    }

    /// Starts `trove serve` with an empty cache in front of the origin.
    func startTrove() throws {
        proxyPort = try Sockets.freePort()
        adminPort = try Sockets.freePort()
        var arguments = [
            "serve", "--config", scenario.rules, "--listen", "127.0.0.1:\(proxyPort)", "--admin-listen", "127.0.0.1:\(adminPort)",
            "--log-level", "warning", "--drain", "2s",
        ]
        for origin in rules.origins {
            arguments += ["--origin", "\(origin.name)=http://127.0.0.1:\(originPort)\(origin.basePath)"]
        }
        if let redis {
            // A database of its own per run, so a run never starts with the previous run's entries.
            _ = try? redis.command(["FLUSHALL"])
            arguments += ["--redis", redis.url()]
        } else if let sentinels {
            _ = try? sentinels.master().command(["FLUSHALL"])
            arguments += ["--redis", sentinels.url()]
        } else if let cluster {
            for master in (try? cluster.masters()) ?? [] { _ = try? master.command(["FLUSHALL"]) }
            arguments += ["--redis", cluster.url()]
        } else {
            arguments.append("--memory")
        }
        let proxy = try ChildProcess(
            executable: trove, arguments: arguments, outputFile: directory + "/trove.log", environment: troveEnvironment())
        running.add("trove") { proxy.stop(signal: SIGTERM) }
        try waitUntilServing(proxy, name: "trove serve", port: adminPort, path: "/healthz", log: directory + "/trove.log")
    }

    func stopTrove() {
        running.stop("trove")
    }

    /// Stops everything, Trove first, so it never sees its origin or Redis vanish under it.
    func stop() {
        running.stopAll()
        redis = nil
        sentinels = nil
        cluster = nil
    }

    // MARK: What the parts say

    /// What the origin served for the measured requests (those the generator marks) since `resetOrigin()`.
    func originCounts() throws -> OriginCounts {
        let reply = try Sockets.http(port: originPort, path: "/__stats")
        guard let json = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any] else {
            throw LoadTestError("the demo origin's /__stats is not JSON: \(reply.body.prefix(200))")
        }
        let statuses = (json["measuredByStatus"] as? [String: Int]) ?? [:]
        return OriginCounts(total: json["measured"] as? Int ?? 0, statuses: statuses, maxInFlight: json["maxInFlight"] as? Int ?? 0)
    }

    func resetOrigin() throws {
        _ = try Sockets.http(port: originPort, method: "POST", path: "/__reset")
    }

    /// Trove's `/stats`: requests, hits, misses… overall and per route.
    func troveStats() throws -> TroveCounts {
        let reply = try Sockets.http(port: adminPort, path: "/stats", headers: [("Authorization", "Bearer \(adminToken)")])
        guard reply.status == 200, let json = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any] else {
            throw LoadTestError("Trove's /stats answered \(reply.status): \(reply.body.prefix(200))")
        }
        func counts(_ fields: [String: Any]?) -> [String: Int] {
            (fields ?? [:]).compactMapValues { $0 as? Int }
        }
        let routes = (json["routes"] as? [String: [String: Any]] ?? [:]).mapValues(counts)
        return TroveCounts(total: counts(json["total"] as? [String: Any]), routes: routes)
    }

    /// Trove's log, for telling what went wrong.
    func troveLogTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: directory + "/trove.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    // MARK: Helpers

    /// Waits until `process` answers `path`; fails at once, with its log, when it exits instead.
    /// The port a process started on port 0 names in the line of its log that begins with `prefix`.
    private func waitForAnnouncedPort(_ process: ChildProcess, name: String, log: String, prefix: String) throws -> Int {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
               let port = Int(line.dropFirst(prefix.count).prefix(while: \.isNumber)), port > 0 {
                return port
            }
            if let status = process.exitStatus {
                throw LoadTestError("\(name) exited (status \(status)) instead of serving:\n\(output)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw LoadTestError("\(name) did not say which port it took within 20 s; see \(log)")
    }

    private func waitUntilServing(_ process: ChildProcess, name: String, port: Int, path: String, log: String) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline {
            if let status = process.exitStatus {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw LoadTestError("\(name) exited (status \(status)) instead of serving:\n\(output)")
            }
            if (try? Sockets.http(port: port, path: path, timeout: 2).status) == 200 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw LoadTestError("\(name) did not answer \(path) on 127.0.0.1:\(port) within 20 s; see \(log)")
    }

    static func delayText(_ settings: Scenario.OriginSettings) -> String {
        let low = "\(settings.delay.nanoseconds / 1_000_000)ms"
        guard settings.jitter > .zero else { return low }
        return "\(low)..\((settings.delay + settings.jitter).nanoseconds / 1_000_000)ms"
    }

    /// Variables for `trove serve`: stand-ins for those the rules read that are not set (an API token for an
    /// origin the load test replaces with the demo origin; it never reaches a real one), and the admin token.
    private func troveEnvironment() -> [String: String] {
        var variables: [String: String] = [:]
        for variable in rules.missingEnvironment { variables[variable] = "loadtest-stand-in" }
        // The store's URL is replaced by --redis or --memory, but must still read as one.
        if let variable = rules.store.redis?.url.environmentVariable, variables[variable] != nil {
            variables[variable] = "redis://127.0.0.1:6379/0"
        }
        if let variable = rules.admin.token?.environmentVariable { variables[variable] = adminToken }
        return variables
    }
}

/// The processes a stack started, by name, so that they can be stopped from any thread, latest first.
final class RunningProcesses: Sendable {
    private let entries = Mutex<[(name: String, stop: @Sendable () -> Void)]>([])

    func add(_ name: String, stop: @escaping @Sendable () -> Void) {
        entries.withLock { $0.append((name, stop)) }
    }

    func stop(_ name: String) {
        let stops = entries.withLock { entries in
            defer { entries.removeAll { $0.name == name } }
            return entries.filter { $0.name == name }.map(\.stop)
        }
        stops.forEach { $0() }
    }

    func stopAll() {
        entries.withLock { entries in
            defer { entries.removeAll() }
            return entries.reversed().map(\.stop)
        }.forEach { $0() }
    }
}

/// What the origin served in one run, from its own counters.
public struct OriginCounts: Sendable {
    public var total: Int
    public var statuses: [String: Int]
    public var maxInFlight: Int

    public init(total: Int, statuses: [String: Int], maxInFlight: Int) {
        self.total = total
        self.statuses = statuses
        self.maxInFlight = maxInFlight
    }
}

/// Trove's own counters after a run.
public struct TroveCounts: Sendable {
    public var total: [String: Int]
    public var routes: [String: [String: Int]]
}

/// A load test cannot go on; the message says why and what to do.
public struct LoadTestError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
