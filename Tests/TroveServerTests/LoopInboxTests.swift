import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import TroveServer

/// `LoopInbox` hands events over in order, one task per batch.
@Suite struct LoopInboxTests {
    @Test func eventsPostedBeforeTheLoopRunsArriveAsOneBatchInOrder() {
        let loop = EmbeddedEventLoop()
        let batches = Mutex<[[Int]]>([])
        let inbox = LoopInbox<Int>(on: loop) { batch in batches.withLock { $0.append(batch) } }
        for event in 1...3 { inbox.post(event) }
        #expect(batches.withLock { $0 }.isEmpty)
        loop.run()
        #expect(batches.withLock { $0 } == [[1, 2, 3]])
        inbox.post(4)
        inbox.post(5)
        loop.run()
        #expect(batches.withLock { $0 } == [[1, 2, 3], [4, 5]])
        loop.run()
        #expect(batches.withLock { $0 }.count == 2)
    }

    /// A task scheduled after a post (the transfer's completion) runs after the batch holding that post.
    @Test func aTaskScheduledAfterAPostRunsAfterItsBatch() {
        let loop = EmbeddedEventLoop()
        let seen = Mutex<[String]>([])
        let inbox = LoopInbox<String>(on: loop) { batch in seen.withLock { $0 += batch } }
        inbox.post("piece 1")
        inbox.post("piece 2")
        loop.execute { seen.withLock { $0.append("end") } }
        loop.run()
        #expect(seen.withLock { $0 } == ["piece 1", "piece 2", "end"])
    }
}
