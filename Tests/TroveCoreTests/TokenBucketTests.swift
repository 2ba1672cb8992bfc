import Testing
import TroveCore

@Suite struct TokenBucketTests {
    let second: Int64 = 1_000_000_000

    /// A full bucket allows its burst, then one token per 1/rate seconds.
    @Test func burstThenRate() {
        var bucket = TokenBucket(rate: 2, capacity: 3, now: 0)
        let burst = (0..<5).map { _ in bucket.take(now: 0) }
        #expect(burst == [true, true, true, false, false])
        let wait = bucket.wait(now: 0)
        #expect(wait == second / 2)
        let early = bucket.take(now: second / 2 - 1)
        let onTime = bucket.take(now: second / 2)
        let again = bucket.take(now: second / 2)
        #expect(!early)
        #expect(onTime)
        #expect(!again)
        // A long quiet time refills to the capacity, not beyond.
        let refilled = (0..<4).map { _ in bucket.take(now: 100 * second) }
        #expect(refilled == [true, true, true, false])
    }

    /// Over any interval T, a bucket lets through at most capacity + rate × T requests.
    @Test func neverExceedsCapacityPlusRate() {
        var bucket = TokenBucket(rate: 2, capacity: 4, now: 0)
        var granted = 0
        for millisecond in stride(from: Int64(0), to: 10_000, by: 7) where bucket.take(now: millisecond * 1_000_000) {
            granted += 1
        }
        #expect(granted <= 4 + 2 * 10)
        #expect(granted >= 2 * 10)
    }

    /// After the origin says "retry after 3 s", nothing is granted for 3 s; then tokens come at the rate again
    /// (the first one 1/rate after the pause ends).
    @Test func pause() {
        var bucket = TokenBucket(rate: 2, capacity: 4, now: 0)
        bucket.pause(until: 3 * second, now: 0)
        let wait = bucket.wait(now: 0)
        let early = bucket.take(now: 3 * second - second / 10)
        let after = bucket.take(now: 3 * second + second * 6 / 10)
        #expect(wait >= 3 * second)
        #expect(!early)
        #expect(after)
    }
}

@Suite struct CoalescingTableTests {
    /// The first request for a key leads; the others wait; finishing hands back the waiters.
    @Test func leadAndWait() {
        var table = CoalescingTable<Int>(hitForMiss: 30_000)
        let joins = [
            table.join("k", waiter: 1, now: 0), table.join("k", waiter: 2, now: 0), table.join("k", waiter: 3, now: 0),
            table.join("other", waiter: 4, now: 0),
        ]
        #expect(joins == [.lead, .wait, .wait, .lead])
        let waiters = table.finish("k", shareable: true, now: 10)
        #expect(waiters == [2, 3])
        let next = table.join("k", waiter: 5, now: 11)
        #expect(next == .lead)
    }

    /// After an answer that could not be shared, requests for the key fetch alone until hit-for-miss ends.
    @Test func hitForMiss() {
        var table = CoalescingTable<Int>(hitForMiss: 30_000)
        let first = table.join("k", waiter: 1, now: 0)
        let waiters = table.finish("k", shareable: false, now: 100)
        let during = [table.join("k", waiter: 2, now: 100), table.join("k", waiter: 3, now: 30_099)]
        let after = table.join("k", waiter: 4, now: 30_100)
        #expect(first == .lead)
        #expect(waiters.isEmpty)
        #expect(during == [.alone, .alone])
        #expect(after == .lead)
    }

    /// A refresh starts only when no fetch of the key is running; requests meanwhile wait for it.
    @Test func refreshOnce() {
        var table = CoalescingTable<Int>(hitForMiss: 1000)
        let first = table.startRefresh("k")
        let second = table.startRefresh("k")
        let join = table.join("k", waiter: 1, now: 0)
        let waiters = table.finish("k", shareable: true, now: 1)
        let third = table.startRefresh("k")
        #expect(first)
        #expect(!second)
        #expect(join == .wait)
        #expect(waiters == [1])
        #expect(third)
    }
}
