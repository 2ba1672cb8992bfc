import NIOCore
import Testing
@testable import TroveRedis

/// Topology reads are paced: one at a time, one start per 100 ms, and a burst of requests costs one more read.
@Suite struct RefreshPacingTests {
    @Test func aBurstMakesOneMoreRead() {
        var pacing = RefreshPacing(spacing: .milliseconds(100))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(pacing.request(now: start) == .startNow)
        // Every loop's connection fails while the read runs: nothing starts, one read is owed.
        for _ in 0..<8 { #expect(pacing.request(now: start + .milliseconds(10)) == .nothing) }
        // It ended 20 ms after it began: the owed read waits for the spacing.
        #expect(pacing.finished(now: start + .milliseconds(20)) == .startAt(start + .milliseconds(100)))
        #expect(pacing.request(now: start + .milliseconds(30)) == .nothing, "already scheduled")
        #expect(pacing.due(now: start + .milliseconds(100)) == .startNow)
        #expect(pacing.finished(now: start + .milliseconds(150)) == .nothing, "nothing was asked meanwhile")
        #expect(pacing.request(now: start + .milliseconds(300)) == .startNow)
    }
}
