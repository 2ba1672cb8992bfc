import TroveHTTP
import Foundation
import Synchronization
import Histogram
import NIOCore
import NIOPosix
import Testing
import TroveDemoOrigin
import TroveFixtures
import TroveLoadTest

/// The load generator against a real origin: it sends what the scenario says, counts what comes back, and
/// counts requests that got no answer instead of losing them.
@Suite(.serialized) struct LoadGeneratorTests {
    static func origin(delay: Duration = .milliseconds(20)) async throws -> (DemoOrigin, MultiThreadedEventLoopGroup) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        return (try await DemoOrigin.start(.init(delay: delay), group: group), group)
    }

    @Test func rateModeSendsExactlyTheRateTimesTheDuration() async throws {
        let (origin, group) = try await Self.origin()
        let scenario = try Scenario.load(try ScenarioTests.file("""
            rules: r.yaml
            load: {mode: rate, rate: 40/s, connections: 16, warmup: 500ms, duration: 1s}
            requests: [{get: '/api/v1/events/{id}', id: 'uniform(1..5)'}]
            """))
        let reports = Reports()
        let result = try await LoadGenerator.run(
            host: "127.0.0.1", port: origin.port, load: scenario.load, mix: RequestMix(scenario: scenario),
            progress: { reports.add($0) })
        // 40/s × 1.5 s reached the origin; 40 of them were due in the measured second.
        #expect(origin.stats.snapshot.total == 60)
        #expect(origin.stats.snapshot.measured == 40, "the measured requests are marked for the origin's count")
        #expect(origin.stats.snapshot.measuredByStatus == ["200": 40])
        #expect(result.answered == 40)
        #expect(result.statuses == [200: 40])
        #expect(result.failed == 0)
        #expect(result.latency.totalCount == 40)
        #expect(result.latency.min >= 20_000, "no answer is faster than the origin's delay (µs)")
        #expect(result.requestsPerSecond == 40)
        #expect(reports.count >= 1, "progress is reported every second")
        try await origin.stop()
        try await group.shutdownGracefully()
    }

    @Test func closedModeKeepsEveryConnectionBusy() async throws {
        let (origin, group) = try await Self.origin(delay: .milliseconds(10))
        let scenario = try Scenario.load(try ScenarioTests.file("""
            rules: r.yaml
            load: {mode: closed, connections: 4, warmup: 0s, duration: 1s}
            requests: [{get: '/api/v1/events/1', headers: {X-Origin-Gather: '4', X-Origin-Gather-Ms: '3000'}}]
            """))
        let result = try await LoadGenerator.run(
            host: "127.0.0.1", port: origin.port, load: scenario.load, mix: RequestMix(scenario: scenario), progress: { _ in })
        // The origin holds requests until 4 are there: the first 4 are answered only because every connection
        // sent one at once, and a closed loop never has more out than it has connections. Each answer takes
        // at least 10 ms, so no connection can have sent more than 100.
        #expect(result.answered >= 4)
        #expect(result.answered <= 400)
        #expect(origin.stats.snapshot.maxInFlight == 4)
        #expect(result.failed == 0)
        try await origin.stop()
        try await group.shutdownGracefully()
    }

    @Test func requestsWithoutAnAnswerAreCountedNotLost() async throws {
        let port = try Sockets.freePort()
        let scenario = try Scenario.load(try ScenarioTests.file("""
            rules: r.yaml
            load: {mode: rate, rate: 20/s, connections: 4, warmup: 0s, duration: 500ms, timeout: 1s}
            requests: [{get: '/a'}]
            """))
        let result = try await LoadGenerator.run(
            host: "127.0.0.1", port: port, load: scenario.load, mix: RequestMix(scenario: scenario), progress: { _ in })
        #expect(result.answered == 0)
        #expect(result.failures == ["never sent (connect: connection refused)": 10], "each of the 10 requests due, once")
        #expect(result.connectErrors["connection refused", default: 0] >= 1)
    }
}

final class Reports: Sendable {
    private let counter = Counter()
    var count: Int { counter.value }
    func add(_ progress: LoadProgress) { counter.increment() }
}



final class Counter: Sendable {
    private let state = Mutex(0)
    var value: Int { state.withLock { $0 } }
    func increment() { state.withLock { $0 += 1 } }
}
