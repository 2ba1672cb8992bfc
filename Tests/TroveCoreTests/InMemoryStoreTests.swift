import TroveHTTP
import Testing
import TroveCore
import TroveRules
import TroveTestSupport

@Suite struct InMemoryStoreTests {
    let clock = ManualClock()

    private func meta(_ address: EntryAddress, generations: [Int64], body: Int = 3) -> EntryMeta {
        let now = clock.nowMilliseconds()
        return EntryMeta(status: 200, headers: [], storedAt: now, freshUntil: now + 60_000, staleUntil: now + 60_000,
            route: address.route, tags: address.tags, generations: generations, bodyLength: body)
    }

    private func lookup(_ store: InMemoryStore<[UInt8]>, _ address: EntryAddress) -> LookupOutcome<[UInt8]> {
        var outcome: LookupOutcome<[UInt8]>?
        store.lookup(address) { outcome = $0 }
        return outcome!
    }

    private func store(_ store: InMemoryStore<[UInt8]>, _ address: EntryAddress, generations: [Int64], body: [UInt8] = [1, 2, 3]) {
        var done = false
        store.store(StoreWrite(address: address, meta: meta(address, generations: generations, body: body.count),
            body: body, expireAfter: 65_000)) { _ in done = true }
        #expect(done)
    }

    private func purge(_ store: InMemoryStore<[UInt8]>, _ purges: PurgeSet) -> PurgeReport {
        var report: PurgeReport?
        store.purge(PurgeRequest(counters: purges.counters, counterLifetime: 600_000)) { report = try? $0.get() }
        return report!
    }

    /// A stored entry is found with the counters it depends on; unknown keys are not found.
    @Test func storesAndFinds() {
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let address = EntryAddress(key: "event:42", route: "event", tags: ["events", "event:42"])
        guard case .notFound(let generations) = lookup(store, address) else { Issue.record("expected notFound"); return }
        #expect(generations == [0, 0, 0, 0, 0])
        self.store(store, address, generations: generations)
        guard case .found(let found, let body, let current, _) = lookup(store, address) else { Issue.record("expected found"); return }
        #expect(body == [1, 2, 3])
        #expect(found.generations == current)
    }

    /// Purging a tag, a route, a key or everything increases exactly the counters concerned.
    @Test func purgesIncreaseCounters() {
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let a = EntryAddress(key: "event:1", route: "event", tags: ["event:1"])
        let b = EntryAddress(key: "events", route: "events", tags: ["events"])
        self.store(store, a, generations: [0, 0, 0, 0])
        let report = purge(store, PurgeSet(tags: ["event:1"]))
        #expect(report == PurgeReport(tags: ["event:1"]))
        guard case .found(_, _, let afterTag, _) = lookup(store, a) else { Issue.record("expected found"); return }
        // A hard purge adds `Generation.hardStep` (the low bits are soft purges').
        let h = Generation.hardStep
        #expect(afterTag == [0, 0, 0, h])
        guard case .notFound(let untouched) = lookup(store, b) else { Issue.record("expected notFound"); return }
        #expect(untouched == [0, 0, 0, 0])
        _ = purge(store, PurgeSet(routes: ["events"], everything: true))
        guard case .notFound(let afterAll) = lookup(store, b) else { Issue.record("expected notFound"); return }
        #expect(afterAll == [h, h, 0, 0])
        let keyReport = purge(store, PurgeSet(keys: ["event:1", "event:2"]))
        #expect(keyReport.keys == [.init(key: "event:1", found: true), .init(key: "event:2", found: false)])
        guard case .notFound(let afterKey) = lookup(store, a) else { Issue.record("a purged key's entry is dropped"); return }
        #expect(afterKey == [h, 0, h, h])
    }

    /// The least recently used entries go first when the store is full; an entry bigger than the store is
    /// not kept at all.
    @Test func evictsLeastRecentlyUsed() {
        let entrySize = 128 + 1000 + 2  // overhead + body + key
        let store = InMemoryStore<[UInt8]>(capacity: entrySize * 3, clock: clock)
        let keys = ["k1", "k2", "k3", "k4"].map { EntryAddress(key: $0, route: "r", tags: []) }
        for key in keys.prefix(3) { self.store(store, key, generations: [0, 0, 0], body: Array(repeating: 7, count: 1000)) }
        #expect(store.usage.entries == 3)
        _ = lookup(store, keys[0])  // k1 is now the most recently used
        self.store(store, keys[3], generations: [0, 0, 0], body: Array(repeating: 7, count: 1000))
        guard case .found = lookup(store, keys[0]) else { Issue.record("k1 was used recently and must stay"); return }
        guard case .notFound = lookup(store, keys[1]) else { Issue.record("k2 was least recently used"); return }
        #expect(store.usage.bytes <= entrySize * 3)
        self.store(store, EntryAddress(key: "huge", route: "r", tags: []), generations: [0, 0, 0],
            body: Array(repeating: 1, count: entrySize * 4))
        guard case .notFound = lookup(store, EntryAddress(key: "huge", route: "r", tags: [])) else {
            Issue.record("an entry bigger than the store is not kept"); return
        }
        #expect(store.usage.entries == 3)
    }

    /// The admission policy keeps a hot set under a scan of cold keys: entries looked up again and again stay while
    /// 2,000 keys are each looked up once and offered; least-recently-used alone would have evicted them all.
    @Test func aScanOfColdKeysDoesNotEvictTheHotSet() {
        let entrySize = 128 + 1000 + 6  // overhead + body + key
        let store = InMemoryStore<[UInt8]>(capacity: entrySize * 10, clock: clock)
        let hot = (0..<8).map { EntryAddress(key: "hot:\($0)", route: "r", tags: []) }
        for _ in 0..<5 { for address in hot { _ = lookup(store, address) } }
        for address in hot { self.store(store, address, generations: [0, 0, 0], body: Array(repeating: 7, count: 1000)) }
        var refused = 0
        for index in 0..<2000 {
            let cold = EntryAddress(key: "c:\(index)", route: "r", tags: [])
            _ = lookup(store, cold)  // a miss, as in a request
            store.store(StoreWrite(address: cold, meta: meta(cold, generations: [0, 0, 0], body: 1000), body: Array(repeating: 1, count: 1000),
                expireAfter: 65_000)) { result in if case .failure(let error) = result, error.isNotAdmitted { refused += 1 } }
            if index % 100 == 0 { for address in hot { _ = lookup(store, address) } }  // the hot set stays in use
        }
        for address in hot {
            guard case .found = lookup(store, address) else { Issue.record("\(address.key) was evicted by the scan"); return }
        }
        #expect(refused > 1900, "the cold keys were refused: \(refused)")
        #expect(store.usage.bytes <= entrySize * 10, "memory stays within the capacity")
        // A cold key that becomes hot gets in once it is asked for more often than what it would evict.
        let rising = EntryAddress(key: "rising", route: "r", tags: [])
        for _ in 0..<15 { _ = lookup(store, rising) }
        self.store(store, rising, generations: [0, 0, 0], body: Array(repeating: 3, count: 1000))
        guard case .found = lookup(store, rising) else { Issue.record("a key asked for often is admitted"); return }
    }

    /// Entries disappear when their store lifetime ends; counters expire after their lifetime too.
    @Test func expiry() {
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let address = EntryAddress(key: "k", route: "r", tags: ["t"])
        self.store(store, address, generations: [0, 0, 0, 0])
        clock.advance(by: .seconds(66))
        guard case .notFound = lookup(store, address) else { Issue.record("expired"); return }
        _ = purge(store, PurgeSet(tags: ["t"]))
        guard case .notFound(let raised) = lookup(store, address) else { Issue.record("expected notFound"); return }
        #expect(raised == [0, 0, 0, Generation.hardStep])
        clock.advance(by: .seconds(601))
        guard case .notFound(let expired) = lookup(store, address) else { Issue.record("expected notFound"); return }
        #expect(expired == [0, 0, 0, 0])
    }

    /// Inspection tells whether a purge has invalidated the entry.
    @Test func inspection() {
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let address = EntryAddress(key: "k", route: "r", tags: ["t"])
        self.store(store, address, generations: [0, 0, 0, 0])
        var inspection: EntryInspection?
        store.inspect(key: "k") { inspection = try? $0.get() }
        #expect(inspection?.valid == true)
        #expect(inspection?.meta.tags == ["t"])
        _ = purge(store, PurgeSet(routes: ["r"]))
        store.inspect(key: "k") { inspection = try? $0.get() }
        #expect(inspection?.valid == false)
        store.inspect(key: "nope") { inspection = try? $0.get() }
        #expect(inspection == nil)
    }
}
