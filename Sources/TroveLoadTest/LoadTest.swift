internal import TroveHTTP
internal import Foundation
internal import Synchronization
internal import TroveFixtures
internal import TroveRules

/// Runs one scenario before (straight at the origin) and after (through Trove), with the same seeded request
/// mix and load, and gathers what each side measured.
public enum LoadTest {
    public enum SideKind: String, Sendable, CaseIterable {
        case before, after
    }

    public struct Options: Sendable {
        /// The `trove` executable; nil for the one next to this tool.
        public var trove: String?
        public var seed: UInt64 = 42
        public var sides: [SideKind] = [.before, .after]
        /// Where the processes' logs go.
        public var workDirectory: String

        public init(trove: String? = nil, seed: UInt64 = 42, sides: [SideKind] = [.before, .after], workDirectory: String) {
            self.trove = trove
            self.seed = seed
            self.sides = sides
            self.workDirectory = workDirectory
        }
    }

    /// What a run tells the person watching it.
    public enum Event: Sendable {
        case note(String)
        case progress(side: String, LoadProgress)
    }

    /// Stops the processes of the run in progress; for a signal handler.
    public static let cleanup = Cleanup()

    public static func run(
        _ scenario: Scenario, options: Options, report: @escaping @Sendable (Event) -> Void
    ) async throws -> [Side] {
        let trove = try Stack.troveExecutable(explicit: options.trove)
        try FileManager.default.createDirectory(atPath: options.workDirectory, withIntermediateDirectories: true)
        let stack = try Stack(trove: trove, scenario: scenario, directory: options.workDirectory)
        let running = stack.running
        cleanup.set { running.stopAll() }
        defer {
            stack.stop()
            cleanup.set(nil)
        }
        try stack.startOrigin()
        report(.note("demo origin on 127.0.0.1:\(stack.originPort), answering in \(Stack.delayText(scenario.origin))"
            + (scenario.origin.rate.map { String(format: ", %g requests/s at most (bucket of %d)", $0, scenario.origin.burst) } ?? "")))
        var sides: [Side] = []
        for kind in options.sides {
            switch kind {
            case .before:
                sides.append(try await measure(
                    name: "before (origin)", port: stack.originPort, scenario: scenario, stack: stack, seed: options.seed,
                    chaos: nil, report: report))
            case .after:
                try stack.startRedisIfNeeded()
                try stack.startTrove()
                report(.note("trove serve on 127.0.0.1:\(stack.proxyPort) (\(stack.storeDescription)), rules \(Report.relative(scenario.rules))"))
                let chaos = scenario.chaos.map { ChaosDriver(plan: $0, stack: stack, report: report) }
                var side = try await measure(
                    name: "after (Trove)", port: stack.proxyPort, scenario: scenario, stack: stack, seed: options.seed,
                    chaos: chaos, report: report)
                do {
                    side.trove = try stack.troveStats()
                } catch {
                    report(.note("could not read Trove's /stats: \(error)"))
                }
                side.chaos = chaos?.notes ?? []
                stack.stopTrove()
                sides.append(side)
            }
        }
        return sides
    }

    private static func measure(
        name: String, port: Int, scenario: Scenario, stack: Stack, seed: UInt64, chaos: ChaosDriver?,
        report: @escaping @Sendable (Event) -> Void
    ) async throws -> Side {
        try stack.resetOrigin()
        let originPort = stack.originPort
        report(.note("\(name): \(Report.seconds(scenario.load.warmup)) warm-up, then \(Report.seconds(scenario.load.duration)) measured"))
        let result = try await LoadGenerator.run(
            host: "127.0.0.1", port: port, load: scenario.load, mix: RequestMix(scenario: scenario, seed: seed),
            chaos: chaos.map { driver -> @Sendable (Double) -> Void in { second in driver.at(second: second) } },
            progress: { report(.progress(side: name, $0)) })
        // Requests the origin is still answering (a refresh in the background) count too: wait briefly for them.
        try? wait(until: "the origin has nothing in flight", timeout: .seconds(5)) {
            ((try? Sockets.http(port: originPort, path: "/__stats").body) ?? "").contains("\"inFlight\":0")
        }
        return Side(name: name, result: result, origin: try stack.originCounts())
    }
}

/// Breaks the store at the scenario's seconds, off the load generator's loop: kills Redis and starts it again,
/// or kills the master and notes when the sentinels (the cluster) have promoted its replica.
final class ChaosDriver: Sendable {
    let plan: Scenario.Chaos
    private let redis: RedisServer?
    private let sentinels: RedisSentinels?
    private let cluster: RedisClusterServers?
    /// The namespace's shared counters' key, whose master a cluster's chaos kills.
    private let sharedKey: String
    let report: @Sendable (LoadTest.Event) -> Void
    private let state = Mutex<(steps: Int, notes: [String])>((0, []))

    init(plan: Scenario.Chaos, stack: Stack, report: @escaping @Sendable (LoadTest.Event) -> Void) {
        self.plan = plan
        redis = stack.redis
        sentinels = stack.sentinels
        cluster = stack.cluster
        let namespace = stack.rules.store.namespace
        sharedKey = "\(namespace):g:{\(namespace)}:all"
        self.report = report
    }

    var notes: [String] { state.withLock { $0.notes } }

    private var schedule: [Duration] {
        switch plan {
        case .redisOutage(let kill, let restart): [kill, restart]
        case .masterKilled(let at): [at]
        }
    }

    /// Called once a second with the seconds into the measured run; acts on the steps that are due.
    func at(second: Double) {
        let step: Int? = state.withLock { state in
            guard state.steps < schedule.count, second >= Double(schedule[state.steps].nanoseconds) / 1e9 else { return nil }
            state.steps += 1
            return state.steps - 1
        }
        guard let step else { return }
        DispatchQueue.global().async { [self] in
            switch (plan, step) {
            case (.redisOutage, 0):
                redis?.kill()
                note(String(format: "Redis killed (SIGKILL) at %.1f s of the measured run", second))
            case (.redisOutage, _):
                let started = ContinuousClock.now
                do {
                    try redis?.start()
                    note(String(format: "Redis restarted (empty) at %.1f s, answering PING after %@", second, Self.since(started)))
                } catch {
                    note("Redis could not be restarted: \(error)")
                }
            case (.masterKilled, _):
                killMaster(second: second)
            }
        }
    }

    private func killMaster(second: Double) {
        let started = ContinuousClock.now
        do {
            if let sentinels {
                let master = try sentinels.master()
                master.kill()
                note(String(format: "master 127.0.0.1:%d killed (SIGKILL) at %.1f s of the measured run", master.port, second))
                try wait(until: "the sentinels name another master", timeout: .seconds(60)) {
                    ((try? sentinels.masterPort()) ?? master.port) != master.port
                }
                note("the sentinels named 127.0.0.1:\(try sentinels.masterPort()) the master \(Self.since(started)) later")
            } else if let cluster {
                let master = try cluster.server(forKey: sharedKey)
                let replicas = try cluster.replicas(of: master)
                master.kill()
                note(String(format: "master 127.0.0.1:%d (the shared counters' slot) killed (SIGKILL) at %.1f s of the measured run",
                    master.port, second))
                try wait(until: "the cluster promotes a replica", timeout: .seconds(60)) {
                    let masters = (try? cluster.masters()) ?? []
                    return masters.contains { server in replicas.contains { $0 === server } }
                }
                let promoted = try cluster.masters().first { server in replicas.contains { $0 === server } }
                note("the cluster promoted 127.0.0.1:\(promoted?.port ?? 0) \(Self.since(started)) later")
            }
        } catch {
            note("the master could not be killed and replaced: \(error)")
        }
    }

    private func note(_ text: String) {
        state.withLock { $0.notes.append(text) }
        report(.note(text))
    }

    private static func since(_ start: ContinuousClock.Instant) -> String {
        "\((ContinuousClock.now - start).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))"
    }
}

/// The one thing to stop when the tool is interrupted.
public final class Cleanup: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    func set(_ action: (@Sendable () -> Void)?) {
        self.action.withLock { $0 = action }
    }

    /// Runs the registered action once.
    public func run() {
        action.withLock { $0.take() }?()
    }
}
