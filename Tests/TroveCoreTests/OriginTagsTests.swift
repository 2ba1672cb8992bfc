import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules
import TroveFixtures
import TroveTestSupport

/// Tags from the origin (`tags_from`): what a miss records and strips, and the race-free way a store records them
/// (`OriginTags`), transcript by transcript on the memory store.
@Suite struct OriginTagsTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000", timeout: 10s}}
        routes:
          - name: products
            match: GET /products
            cache: {key: "products", ttl: 60s, stale: 30s, tags: ["lists"], tags_from: Surrogate-Key, send_tags: Cache-Tag}
          - name: kept
            match: GET /kept
            cache: {key: "kept", ttl: 60s, tags_from: {header: xkey, keep: true}}
        """, file: "tags.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])

    let clock = ManualClock()

    private func machine(_ target: String) -> ReadThroughStateMachine {
        ReadThroughStateMachine(plan: Self.rules.plan(for: RequestHead(method: "GET", target: target)), requestHeaders: [], clock: clock)
    }

    @Test func theHeaderIsReadAsTags() {
        let header = OriginTagHeader(name: "Surrogate-Key", keep: false)
        #expect(header.tags(in: [Header("surrogate-key", "p-1  c-2,p-1"), Header("Surrogate-Key", "c-3\tc-4")]) == ["p-1", "c-2", "c-3", "c-4"])
        #expect(header.tags(in: [Header("Other", "x")]) == [])
        let many = (0...OriginTagHeader.maxCount).map { "t\($0)" }.joined(separator: " ")
        #expect(header.tags(in: [Header("Surrogate-Key", many)]) == nil, "more than an entry records")
        #expect(header.tags(in: [Header("Surrogate-Key", String(repeating: "x", count: OriginTagHeader.maxLength + 1))]) == nil)
        #expect(header.strip([Header("SURROGATE-KEY", "a"), Header("ETag", "\"1\"")]) == [Header("ETag", "\"1\"")])
        #expect(OriginTagHeader(name: "xkey", keep: true).strip([Header("xkey", "a")]) == [Header("xkey", "a")])
        // Sent on to a CDN: Fastly's Surrogate-Key with spaces, Cache-Tag with commas, replacing the origin's own.
        #expect(CDNTagHeader(name: "Surrogate-Key").apply(["a", "b"], to: []) == [Header("Surrogate-Key", "a b")])
        #expect(CDNTagHeader(name: "Cache-Tag").apply(["a", "b"], to: [Header("cache-tag", "old")]) == [Header("Cache-Tag", "a,b")])
        #expect(CDNTagHeader(name: "Cache-Tag").apply([], to: [Header("X", "1")]) == [Header("X", "1")])
    }

    /// A miss records the origin's tags with the entry and takes the header off what is stored (unless kept); the
    /// lookup before it reads the tag-purge sequence.
    @Test func aMissRecordsTheOriginsTags() throws {
        var sm = machine("/products")
        guard case .lookup(let address) = sm.start() else { Issue.record("expected a lookup"); return }
        #expect(address.learnsTags)
        #expect(address.counters == [.everything, .route("products"), .key("products"), .tag("lists"), .tagSequence])
        _ = sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 7]))
        guard case .store(let pending, _) = sm.originResponded(status: 200, headers: [Header("Surrogate-Key", "p-1 c-2"), Header("ETag", "\"1\"")], bodyLength: 2)
        else { Issue.record("stored"); return }
        #expect(pending.meta.originTags == ["p-1", "c-2"])
        #expect(pending.meta.headers == [Header("ETag", "\"1\"")])
        #expect(pending.meta.generations == [0, 0, 0, 0, 7])

        var kept = machine("/kept")
        _ = kept.start()
        _ = kept.lookupCompleted(.notFound(generations: [0, 0, 0, 0]))
        guard case .store(let keptStore, _) = kept.originResponded(status: 200, headers: [Header("xkey", "a")], bodyLength: 2) else {
            Issue.record("stored"); return
        }
        #expect(keptStore.meta.headers == [Header("xkey", "a")])
        #expect(keptStore.meta.originTags == ["a"])
    }

    /// An answer naming more tags than an entry records is passed on, not stored, and says why.
    @Test func tooManyTagsAreNotStored() {
        var sm = machine("/products")
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        let many = (0...OriginTagHeader.maxCount).map { "t\($0)" }.joined(separator: " ")
        guard case .respond(let plan) = sm.originResponded(status: 200, headers: [Header("Surrogate-Key", many)], bodyLength: 2) else {
            Issue.record("answered unstored"); return
        }
        #expect(plan.cacheStatus?.detail == .notStored(.originTags))
        #expect(plan.cacheStatus?.member.contains("detail=ORIGIN-TAGS") == true)
    }

    /// A store that refused the entry because a tag purge overtook its fetch says so in `Cache-Status`.
    @Test func aStoreOvertakenByAPurgeSaysSo() {
        var sm = machine("/products")
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        _ = sm.originResponded(status: 200, headers: [Header("Surrogate-Key", "p-1")], bodyLength: 2)
        guard case .respond(let plan) = sm.storeCompleted(.failure(.purgedWhileFetched)) else { Issue.record("answered"); return }
        #expect(plan.cacheStatus?.stored == false)
        #expect(plan.cacheStatus?.detail == .notStored(.purgedWhileFetched))
    }

    /// A store the memory store did not admit (it is full of entries asked for more often) says so too.
    @Test func aStoreNotAdmittedSaysSo() {
        var sm = machine("/products")
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        _ = sm.originResponded(status: 200, headers: [], bodyLength: 2)
        guard case .respond(let plan) = sm.storeCompleted(.failure(.notAdmitted)) else { Issue.record("answered"); return }
        #expect(plan.cacheStatus?.stored == false)
        #expect(plan.cacheStatus?.member.contains("detail=NOT-ADMITTED") == true)
        #expect(StoreError.notAdmitted.isRefusal && !StoreError.unavailable("x").isRefusal)
    }

    // MARK: The store's side, on the memory store

    let address = EntryAddress(key: "products", route: "products", tags: ["lists"], learnsTags: true)

    private func meta(_ originTags: [String], generations: [Int64]) -> EntryMeta {
        let now = clock.nowMilliseconds()
        return EntryMeta(status: 200, headers: [], storedAt: now, freshUntil: now + 60_000, staleUntil: now + 90_000, route: "products",
            tags: ["lists"], originTags: originTags, generations: generations, bodyLength: 2)
    }

    private func lookup(_ store: InMemoryStore<[UInt8]>) -> (EntryMeta?, [Int64]) {
        var outcome: LookupOutcome<[UInt8]>?
        store.lookup(address) { outcome = $0 }
        switch outcome {
        case .found(let meta, _, let generations, _): return (meta, generations)
        case .notFound(let generations): return (nil, generations)
        default: return (nil, [])
        }
    }

    /// nil when stored, else the store's error.
    private func store(_ store: InMemoryStore<[UInt8]>, _ meta: EntryMeta) -> StoreError? {
        var error: StoreError? = .unavailable("no answer")
        store.store(StoreWrite(address: address, meta: meta, body: [1, 2], expireAfter: 90_000)) { result in
            if case .failure(let failure) = result { error = failure } else { error = nil }
        }
        return error
    }

    private func purge(_ store: InMemoryStore<[UInt8]>, _ counters: [PurgeCounter], soft: Bool = false) {
        let mark = soft ? Generation.mark(now: clock.nowMilliseconds(), extra: 0) : nil
        store.purge(PurgeRequest(counters: counters, counterLifetime: 600_000, softMark: mark)) { _ in }
    }

    /// A purge of a tag the origin named invalidates the entry; a purge of another tag does not.
    @Test func originTagsPurgeWhatTheyName() {
        let memory = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let (_, before) = lookup(memory)
        #expect(before == [0, 0, 0, 0, 0])
        #expect(store(memory, meta(["p-1", "c-2"], generations: before)) == nil)
        var (found, current) = lookup(memory)
        #expect(current.count == 7, "the address's counters, the sequence, then each origin tag's")
        #expect(found?.change(for: address, generations: current) == Generation.Change.none)
        purge(memory, [.tag("other")])
        (found, current) = lookup(memory)
        #expect(current[4] == 1, "every tag purge moves the sequence on")
        #expect(found?.change(for: address, generations: current) == Generation.Change.none, "the sequence is not compared")
        purge(memory, [.tag("c-2")], soft: true)
        (found, current) = lookup(memory)
        #expect(found?.change(for: address, generations: current) == .softPurged(since: clock.nowMilliseconds()))
        purge(memory, [.tag("p-1")])
        (found, current) = lookup(memory)
        #expect(found?.change(for: address, generations: current) == .purged)
        var inspection: EntryInspection?
        memory.inspect(key: "products") { inspection = try? $0.get() }
        #expect(inspection?.valid == false)
    }

    /// Race safety: an answer whose fetch began before a purge of one of the tags it names is not stored; one
    /// whose tags were not purged since is, and so is a refresh that began after the purge.
    @Test func aFetchOvertakenByAPurgeOfItsTagsIsNotStored() {
        let memory = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let (_, began) = lookup(memory)
        purge(memory, [.tag("p-1")])
        #expect(store(memory, meta(["p-1", "c-2"], generations: began)) == .purgedWhileFetched)
        #expect(lookup(memory).0 == nil)
        #expect(store(memory, meta(["c-2"], generations: began)) == nil, "another tag's purge does not matter")
        // A refresh begins from a lookup that found the entry (its generations hold the old origin tags' too).
        let (_, refreshFrom) = lookup(memory)
        #expect(refreshFrom.count == 6)
        #expect(store(memory, meta(["p-1"], generations: refreshFrom)) == nil, "began after the purge")
        let (found, current) = lookup(memory)
        #expect(found?.originTags == ["p-1"])
        #expect(found?.generations.count == 6)
        #expect(found?.change(for: address, generations: current) == Generation.Change.none)
    }

    /// An entry stored by a route that learns tags is not served to one that does not (the rules changed), nor the
    /// other way round.
    @Test func learningIsPartOfTheAddress() {
        let plain = EntryAddress(key: "products", route: "products", tags: ["lists"])
        let learned = meta([], generations: [0, 0, 0, 0, 0])
        #expect(learned.change(for: plain, generations: [0, 0, 0, 0]) == .purged)
        var unlearned = learned
        unlearned.originTags = nil
        unlearned.generations = [0, 0, 0, 0]
        #expect(unlearned.change(for: address, generations: [0, 0, 0, 0, 0]) == .purged)
        #expect(address.variant([Header("accept", "x")]).learnsTags)
        #expect(EntryAddress.ofStored("products#v1", meta: learned).learnsTags)
    }

    @Test func theCodecKeepsOriginTags() {
        for tags in [nil, [], ["p-1", "c-2"]] as [[String]?] {
            var entry = meta(tags ?? [], generations: [1, 2, 3, 4, 5, 6, 7])
            entry.originTags = tags
            let decoded = EntryCodec.decodeHead(EntryCodec.encodeHead(entry) + [1, 2])
            #expect(decoded?.meta == entry)
        }
    }
}
