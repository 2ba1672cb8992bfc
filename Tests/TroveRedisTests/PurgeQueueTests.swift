import Testing
import TroveCore
@testable import TroveRedis

/// The purges kept to apply again after a failover are bounded, and all of them come back on a new master.
@Suite struct PurgeQueueTests {
    @Test func recentPurgesAreBoundedAndRequeued() {
        let queue = PurgeQueue(limit: 3)
        let requests = (0..<5).map { PurgeRequest(counters: [.tag("t\($0)")], counterLifetime: 60_000) }
        for request in requests { queue.noteApplied(request) }
        #expect(queue.isEmpty, "applied purges are not waiting")
        queue.requeueRecent()
        #expect(queue.count == 3, "only the last `limit` are kept")
        #expect(queue.first == requests[2], "the oldest kept comes first")
    }
}
