import TroveHTTP
import Testing
import TroveCore
import TroveRules
import TroveTestSupport

/// Tables that forget by time do it in expiry order, never by scanning, and stay bounded (#12, finding 11).
@Suite struct ExpiryTests {
    /// The heap against a plain dictionary, over random operations: the same keys expire at the same times.
    @Test func heapMatchesAModel() {
        var heap = ExpiryHeap<Int>()
        var model: [Int: Int64] = [:]
        var random = SystemRandomNumberGenerator()
        for step in 0..<20_000 {
            let key = Int.random(in: 0..<500, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6:
                let at = Int64.random(in: 0..<10_000, using: &random)
                heap.set(key, expiresAt: at)
                model[key] = at
            case 6..<8:
                heap.remove(key)
                model[key] = nil
            default:
                let now = Int64(step / 2)
                let expired = heap.popExpired(now: now)
                let expected = model.filter { $0.value <= now }
                #expect(Set(expired) == Set(expected.keys))
                #expect(expired.map { expected[$0]! } == expired.map { expected[$0]! }.sorted(), "soonest first")
                for key in expected.keys { model[key] = nil }
            }
            #expect(heap.count == model.count)
        }
        for (key, at) in model { #expect(heap.expiry(of: key) == at) }
    }

    /// A purge among 100,000 live counters touches only what expired; expired counters go without a sweep.
    @Test func memoryStoreCountersExpireInOrder() {
        let clock = ManualClock()
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 30, clock: clock)
        func purge(_ tags: [String], lifetime: Int64) {
            store.purge(PurgeRequest(counters: PurgeSet(tags: tags).counters, counterLifetime: lifetime)) { _ in }
        }
        purge((0..<100_000).map { "t\($0)" }, lifetime: 1000)
        purge(["late"], lifetime: 10_000)
        clock.advance(by: .milliseconds(1001))
        purge(["other"], lifetime: 10_000)
        var generations: [Int64] = []
        store.lookup(EntryAddress(key: "k", route: "r", tags: ["t5", "late", "other"])) {
            if case .notFound(let found) = $0 { generations = found }
        }
        #expect(generations == [0, 0, 0, 0, Generation.hardStep, Generation.hardStep], "t5 expired, late and other are live")
    }

    /// Past `maxCounters` live counters, the store increases `everything` instead of dropping one: every entry is
    /// invalidated (none can become valid again), and the table starts over.
    @Test func memoryStoreCountersAreBounded() {
        let clock = ManualClock()
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock, maxCounters: 100)
        let address = EntryAddress(key: "k", route: "r", tags: ["a"])
        var before: [Int64] = []
        store.lookup(address) { if case .notFound(let found) = $0 { before = found } }
        store.store(StoreWrite(address: address, meta: EntryMeta(status: 200, headers: [], storedAt: 0, freshUntil: .max,
            staleUntil: .max, route: "r", tags: ["a"], generations: before, bodyLength: 1), body: [1], expireAfter: 600_000)) { _ in }
        for index in 0..<150 {
            store.purge(PurgeRequest(counters: PurgeSet(keys: ["written:\(index)"]).counters, counterLifetime: 600_000)) { _ in }
        }
        var after: [Int64] = []
        store.lookup(address) {
            if case .found(let meta, _, let found, _) = $0 { after = found; #expect(meta.change(for: address, generations: found) == .purged) }
        }
        #expect(after.first == Generation.hardStep, "everything was increased")
    }

    /// Tag purges stamp their tags too (`OriginTags`): the stamps count against the same bound, and the tag-purge
    /// sequence lives apart from the table, so starting the table over never takes it back.
    @Test func tagStampsShareTheBoundAndTheSequenceSurvives() {
        let clock = ManualClock()
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock, maxCounters: 100)
        let address = EntryAddress(key: "k", route: "r", tags: [], learnsTags: true)
        for index in 0..<150 {
            store.purge(PurgeRequest(counters: [.tag("t\(index)")], counterLifetime: 600_000)) { _ in }
        }
        var generations: [Int64] = []
        store.lookup(address) { if case .notFound(let found) = $0 { generations = found } }
        // 150 purges write 300 counters (a tag and its stamp each): the table of 100 filled and started over, three times.
        #expect(generations.first == 3 * Generation.hardStep)
        #expect(generations.last == 150, "every tag purge moved the sequence on, across the table starting over")
    }

    /// Hit-for-miss keys expire in order and are bounded.
    @Test func unshareableKeysAreBounded() {
        var table = CoalescingTable<Int>(hitForMiss: 1000, maxUnshareable: 3)
        for key in ["a", "b", "c", "d"] {
            #expect(table.join(key, waiter: 0, now: 0) == .lead)
            _ = table.finish(key, shareable: false, now: 0)
        }
        #expect(table.unshareableCount == 3)
        #expect(table.join("d", waiter: 0, now: 10) == .alone)
        #expect(table.join("a", waiter: 0, now: 10) == .lead, "the oldest made room")
        _ = table.finish("a", shareable: true, now: 2000)
        #expect(table.unshareableCount == 0, "expired keys went when the table was next used")
    }
}
