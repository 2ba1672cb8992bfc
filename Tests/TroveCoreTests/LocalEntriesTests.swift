import Testing
import TroveCore
import TroveTestSupport

/// The in-process tier's table on its own: what `keep` says, and that an entry replaced by one it refuses is gone.
@Suite struct LocalEntriesTests {
    let clock = ManualClock()

    private func meta(body: Int) -> EntryMeta {
        let now = clock.nowMilliseconds()
        return EntryMeta(status: 200, headers: [], storedAt: now, freshUntil: now + 60_000, staleUntil: now + 60_000,
            route: "r", tags: [], generations: [0, 0, 0], bodyLength: body)
    }

    @Test func keepSaysWhatItDid() {
        let size = 128 + 1000 + 1  // overhead + body + key
        let entries = LocalEntries<[UInt8]>(capacity: size * 2, clock: clock)
        #expect(entries.keep("a", meta: meta(body: 1000), body: [], expireAfter: 1000) == .kept)
        #expect(entries.keep("b", meta: meta(body: 1000), body: [], expireAfter: 1000) == .kept)
        #expect(entries.keep("c", meta: meta(body: 10_000), body: [], expireAfter: 1000) == .tooBig)
        // "a" asked for often: a "c" asked for never may not evict it.
        for _ in 0..<3 { _ = entries.peek("a"); _ = entries.peek("b") }
        #expect(entries.keep("c", meta: meta(body: 1000), body: [], expireAfter: 1000) == .notAdmitted)
        #expect(entries.usage.entries == 2)
        // A refused replacement still drops the entry it replaces: that one is older than the answer refused.
        #expect(entries.keep("a", meta: meta(body: 100_000), body: [], expireAfter: 1000) == .tooBig)
        #expect(entries.peek("a") == nil)
        #expect(entries.drop(["a", "b"]) == [false, true])
        #expect(entries.usage.bytes == 0)
    }

    @Test func expiredEntriesAreNotSeenAndLeave() {
        let entries = LocalEntries<[UInt8]>(capacity: 1 << 20, clock: clock)
        entries.keep("a", meta: meta(body: 3), body: [1, 2, 3], expireAfter: 1000)
        #expect(entries.peek("a")?.body == [1, 2, 3])
        clock.advance(by: .seconds(1))
        #expect(entries.inspect("a") == nil)
        #expect(entries.peek("a") == nil)
        #expect(entries.usage.entries == 0, "an expired entry is removed when it is met")
    }
}
