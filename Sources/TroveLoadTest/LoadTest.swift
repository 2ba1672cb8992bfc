internal import TroveHTTP
internal import Foundation
internal import Synchronization
internal import TroveFixtures

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
                report(.note("trove serve on 127.0.0.1:\(stack.proxyPort) (\(scenario.store == .redis ? "Redis store, redis-server on 127.0.0.1:\(stack.redis?.port ?? 0)" : "memory store")), rules \(Report.relative(scenario.rules))"))
                let chaos = scenario.chaos.flatMap { plan in stack.redis.map { ChaosDriver(plan: plan, redis: $0, report: report) } }
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

/// Kills Redis and starts it again at the scenario's seconds, off the load generator's loop.
final class ChaosDriver: Sendable {
    let plan: Scenario.Chaos
    let redis: RedisServer
    let report: @Sendable (LoadTest.Event) -> Void
    private let state = Mutex<(killed: Bool, restarted: Bool, notes: [String])>((false, false, []))

    init(plan: Scenario.Chaos, redis: RedisServer, report: @escaping @Sendable (LoadTest.Event) -> Void) {
        self.plan = plan
        self.redis = redis
        self.report = report
    }

    var notes: [String] { state.withLock { $0.notes } }

    func at(second: Double) {
        let kill = Double(plan.killRedis.nanoseconds) / 1e9
        let restart = Double(plan.restartRedis.nanoseconds) / 1e9
        let action: String? = state.withLock { state in
            if !state.killed, second >= kill {
                state.killed = true
                return "kill"
            }
            if state.killed, !state.restarted, second >= restart {
                state.restarted = true
                return "restart"
            }
            return nil
        }
        guard let action else { return }
        DispatchQueue.global().async { [self] in
            let note: String
            if action == "kill" {
                redis.kill()
                note = String(format: "Redis killed (SIGKILL) at %.1f s of the measured run", second)
            } else {
                let started = ContinuousClock.now
                do {
                    try redis.start()
                    note = String(format: "Redis restarted (empty) at %.1f s, answering PING after %@", second,
                        "\((ContinuousClock.now - started).formatted(.units(allowed: [.milliseconds])))")
                } catch {
                    note = "Redis could not be restarted: \(error)"
                }
            }
            state.withLock { $0.notes.append(note) }
            report(.note(note))
        }
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
