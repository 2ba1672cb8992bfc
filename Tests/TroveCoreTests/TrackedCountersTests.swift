import Testing
import TroveCore

/// The counters a tracked tier remembers: kept only while tracking is on, never from a read an invalidation may
/// have overtaken, forgotten at once when tracking stops, and bounded.
@Suite struct TrackedCountersTests {
    @Test func nothingIsKeptOrUsedUntilTrackingIsConfirmed() {
        let counters = TrackedCounters(capacity: 100)
        #expect(counters.ticket() == nil, "no read is worth remembering before the server tracks")
        #expect(counters.values(["ns:g:a"]) == nil)
        counters.trackingStarted()
        let ticket = counters.ticket()!
        counters.remember(["ns:g:a", "ns:g:b"], [3, 0], ticket: ticket)
        #expect(counters.values(["ns:g:b", "ns:g:a"]) == [0, 3])
        #expect(counters.values(["ns:g:a", "ns:g:c"]) == nil, "one unknown counter sends the hit to Redis")
    }

    /// An invalidation may come before the reply carrying the old value (they use different connections): any
    /// invalidation between asking and remembering voids the read.
    @Test func aReadOvertakenByAnInvalidationIsNotKept() {
        let counters = TrackedCounters(capacity: 100)
        counters.trackingStarted()
        let ticket = counters.ticket()!
        counters.invalidate(["ns:g:other"])
        counters.remember(["ns:g:a"], [3], ticket: ticket)
        #expect(counters.values(["ns:g:a"]) == nil)
        // A purge of this process voids reads in flight the same way.
        let next = counters.ticket()!
        counters.forget(["ns:g:a"])
        counters.remember(["ns:g:a"], [3], ticket: next)
        #expect(counters.values(["ns:g:a"]) == nil)
        // As does a restart of tracking: a ticket from the old connection means nothing on the new one.
        let old = counters.ticket()!
        counters.trackingStopped()
        counters.trackingStarted()
        counters.remember(["ns:g:a"], [3], ticket: old)
        #expect(counters.values(["ns:g:a"]) == nil)
    }

    @Test func invalidationsForgetTheirCountersAndANilOneForgetsAll() {
        let counters = TrackedCounters(capacity: 100)
        counters.trackingStarted()
        counters.remember(["ns:g:a", "ns:g:b", "ns:g:c"], [1, 2, 3], ticket: counters.ticket()!)
        counters.invalidate(["ns:g:b"])
        #expect(counters.values(["ns:g:a", "ns:g:c"]) == [1, 3])
        #expect(counters.values(["ns:g:b"]) == nil)
        counters.invalidate(nil)  // FLUSHALL
        #expect(counters.count == 0)
        #expect(counters.isTracking, "a flush is not a lost connection")
    }

    @Test func losingTheConnectionForgetsEverythingAndKeepsNothingMore() {
        let counters = TrackedCounters(capacity: 100)
        counters.trackingStarted()
        let ticket = counters.ticket()!
        counters.remember(["ns:g:a"], [1], ticket: ticket)
        counters.trackingStopped()
        #expect(!counters.isTracking)
        #expect(counters.count == 0)
        #expect(counters.values(["ns:g:a"]) == nil)
        counters.remember(["ns:g:a"], [1], ticket: ticket)
        #expect(counters.count == 0, "a read made while tracking was on is not kept after it stopped")
    }

    /// At most `capacity` counters; those hits keep asking for stay, those of entries long gone leave.
    @Test func theTableIsBoundedAndKeepsWhatIsUsed() {
        let counters = TrackedCounters(capacity: 100)
        counters.trackingStarted()
        counters.remember(["ns:g:all"], [7], ticket: counters.ticket()!)
        for index in 0..<1000 {
            counters.remember(["ns:g:k:\(index)"], [Int64(index)], ticket: counters.ticket()!)
            #expect(counters.values(["ns:g:all"]) == [7], "the shared counter every hit reads stays")
            #expect(counters.count <= 100)
        }
        #expect(counters.values(["ns:g:k:999"]) == [999])
        #expect(counters.values(["ns:g:k:0"]) == nil)
    }
}
