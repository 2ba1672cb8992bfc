internal import TroveHTTP
internal import Synchronization
internal import TroveRules

/// The store used when no Redis is configured: entries in this process's memory, bounded by bytes, the least
/// recently used evicted first. It keeps the same counters as the Redis store, so purges behave the same, but
/// it is not shared with other Trove instances.
///
/// Admission (TinyLFU): every lookup counts its key in a `FrequencySketch`; when the store is full, a new entry
/// evicts the least recently used ones only if its key was asked for at least as often as each of them. A scan
/// of keys asked for once (a crawler, a report walking every page) is then not stored over entries asked for
/// again and again; an entry whose key keeps being asked for gets in once its count passes theirs.
///
/// Thread-safe: every event loop uses the same instance, and each call holds a lock only while it runs.
/// Completions are called before the method returns.
public final class InMemoryStore<Body: Sendable>: CacheStore, Sendable {
    private let state: Mutex<State>
    private let clock: any TroveClock

    /// - Parameters:
    ///   - capacity: bytes of entries (bodies, headers, keys) kept before the least recently used are evicted.
    ///   - maxCounters: purge counters kept at once; a capacity-sized default (each costs about 200 bytes).
    public init(capacity: Int, clock: any TroveClock = SystemClock(), maxCounters: Int? = nil) {
        self.state = Mutex(State(capacity: capacity, maxCounters: maxCounters ?? max(10_000, capacity / 256)))
        self.clock = clock
    }

    /// Bytes held and entries stored, for statistics.
    public var usage: (bytes: Int, entries: Int) {
        state.withLock { ($0.bytes, $0.index.count) }
    }

    public var health: StoreHealth {
        let (bytes, entries) = usage
        return StoreHealth(ready: true, status: "memory store: \(entries) entries, \(bytes) of \(capacity) bytes")
    }

    private var capacity: Int { state.withLock { $0.capacity } }

    public func lookup(_ address: EntryAddress, completion: (LookupOutcome<Body>) -> Void) {
        completion(lookupNow(address))
    }

    /// The memory store always knows at once.
    public func lookupAtOnce(_ address: EntryAddress) -> LookupOutcome<Body>? {
        lookupNow(address)
    }

    private func lookupNow(_ address: EntryAddress) -> LookupOutcome<Body> {
        let now = clock.nowMilliseconds()
        let outcome: LookupOutcome<Body> = state.withLock { state in
            state.sketch.increment(address.key.hashValue)
            var generations: [Int64] = []
            generations.reserveCapacity(address.counterCount)
            address.forEachCounter { generations.append(state.counter($0, now: now)) }
            guard let slot = state.index[address.key] else { return .notFound(generations: generations) }
            let entry = state.slots[slot].entry!
            guard entry.expiresAt > now else {
                state.remove(slot: slot)
                return .notFound(generations: generations)
            }
            state.touch(slot: slot)
            guard address.learnsTags else { return .found(entry.meta, entry.body, generations: generations, local: true) }
            let learned = OriginTags.countersToCheck(entry.meta, address: address).map { state.counter($0, now: now) }
            return .found(entry.meta, entry.body, generations: generations + learned, local: true)
        }
        return outcome
    }

    public func store(_ write: StoreWrite<Body>, completion: (Result<Void, StoreError>) -> Void) {
        let now = clock.nowMilliseconds()
        let key = write.address.key
        let size = Self.size(of: write.meta, key: key)
        let refusal: StoreError? = state.withLock { state in
            // Origin tags are recorded under the lock: no purge can come between the check and the insert.
            let values = OriginTags.countersToRecord(write.meta).map { state.counter($0, now: now) }
            guard let meta = OriginTags.recorded(write.meta, address: write.address, values: values) else { return .purgedWhileFetched }
            if let slot = state.index[key] { state.remove(slot: slot) }
            // An entry bigger than the whole store is not kept (it would evict everything for nothing).
            guard size <= state.capacity else { return nil }
            guard state.admits(key, size: size) else { return .notAdmitted }
            while state.bytes + size > state.capacity, let oldest = state.tail {
                state.remove(slot: oldest)
            }
            state.insert(Stored(key: key, meta: meta, body: write.body, size: size, expiresAt: now + write.expireAfter))
            return nil
        }
        completion(refusal.map { .failure($0) } ?? .success(()))
    }

    // MARK: As the in-process tier in front of Redis (`TieredStore`): entries only, the counters are Redis'.

    /// The entry stored under `key`, if any and not expired, counted as asked for (admission) and as used (LRU).
    /// Its counters are not read: the tier's owner reads Redis' and decides.
    public func peek(_ key: String) -> (meta: EntryMeta, body: Body)? {
        let now = clock.nowMilliseconds()
        return state.withLock { state in
            state.sketch.increment(key.hashValue)
            guard let slot = state.index[key] else { return nil }
            let entry = state.slots[slot].entry!
            guard entry.expiresAt > now else {
                state.remove(slot: slot)
                return nil
            }
            state.touch(slot: slot)
            return (entry.meta, entry.body)
        }
    }

    /// Keeps `meta` and `body` under `key` as they are (read from, or written to, Redis), if admitted; false when
    /// not (too big, or its key asked for less often than what it would evict).
    @discardableResult
    public func keep(_ key: String, meta: EntryMeta, body: Body, expireAfter: Int64) -> Bool {
        let now = clock.nowMilliseconds()
        let size = Self.size(of: meta, key: key)
        return state.withLock { state in
            if let slot = state.index[key] { state.remove(slot: slot) }
            guard size <= state.capacity, state.admits(key, size: size) else { return false }
            while state.bytes + size > state.capacity, let oldest = state.tail {
                state.remove(slot: oldest)
            }
            state.insert(Stored(key: key, meta: meta, body: body, size: size, expiresAt: now + expireAfter))
            return true
        }
    }

    /// Drops the entries of `keys` (a key purge: their memory is freed at once).
    public func drop(_ keys: [String]) {
        state.withLock { state in
            for key in keys { if let slot = state.index[key] { state.remove(slot: slot) } }
        }
    }

    /// The memory store keeps every body whole (shared by every client that reads it, never copied): it has no
    /// chunks.
    public func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: (Result<Body?, StoreError>) -> Void) {
        completion(.success(nil))
    }

    public func purge(_ request: PurgeRequest, completion: (Result<PurgeReport, StoreError>) -> Void) {
        let now = clock.nowMilliseconds()
        let found = state.withLock { state in
            var found: [Bool] = []
            for counter in request.counters {
                // `everything` never expires: it is one counter, and every entry depends on it.
                let soft = request.softMark(for: counter)
                if case .tag(let tag) = counter { state.stampTagPurge(tag, now: now, lifetime: request.counterLifetime) }
                state.increase(counter, now: now, lifetime: counter == .everything ? nil : request.counterLifetime, softMark: soft)
                guard case .key(let key) = counter else { continue }
                let slot = state.index[key]
                // A soft-purged entry stays: it is served stale while it is refreshed.
                if let slot, soft == nil { state.remove(slot: slot) }
                found.append(slot != nil)
            }
            return found
        }
        completion(.success(PurgeReport(request, found: found)))
    }

    public func inspect(key: String, completion: (Result<EntryInspection?, StoreError>) -> Void) {
        let now = clock.nowMilliseconds()
        let inspection: EntryInspection? = state.withLock { state in
            guard let slot = state.index[key], let entry = state.slots[slot].entry, entry.expiresAt > now else { return nil }
            let address = EntryAddress.ofStored(key, meta: entry.meta)
            let current = (address.counters + OriginTags.countersToCheck(entry.meta, address: address)).map { state.counter($0, now: now) }
            return EntryInspection(meta: entry.meta, valid: entry.meta.change(for: address, generations: current) == .none)
        }
        completion(.success(inspection))
    }

    /// Nothing is held open.
    public func shutdown() {}

    /// What an entry costs: its body, its headers and key, and a fixed overhead for the bookkeeping.
    static func size(of meta: EntryMeta, key: String) -> Int {
        meta.bodyLength + key.utf8.count + 128
            + meta.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }
            + meta.tags.reduce(0) { $0 + $1.utf8.count + 16 }
    }

    private struct Stored {
        let key: String
        let meta: EntryMeta
        let body: Body
        let size: Int
        let expiresAt: Int64
    }

    /// Entries in slots of an array, linked from most (head) to least (tail) recently used, so that touching and
    /// evicting are O(1) without allocating a node per entry.
    private struct State {
        struct Slot {
            var entry: Stored?
            var newer: Int?
            var older: Int?
        }

        let capacity: Int
        var bytes = 0
        var slots: [Slot] = []
        var free: [Int] = []
        var index: [String: Int] = [:]
        var head: Int?
        var tail: Int?
        var counters: [PurgeCounter: (value: Int64, expiresAt: Int64?)] = [:]
        /// The counters that expire, soonest first: expired ones are dropped without a scan.
        var counterExpiries = ExpiryHeap<PurgeCounter>()
        let maxCounters: Int
        /// How often each key was looked up lately: the admission policy's memory.
        var sketch: FrequencySketch

        init(capacity: Int, maxCounters: Int) {
            self.capacity = capacity
            self.maxCounters = maxCounters
            // About one counter per kilobyte of capacity (answers of APIs run from hundreds of bytes to tens of
            // kilobytes): 2 bytes of sketch per KiB, between 1,024 and 1,048,576 counters per row.
            sketch = FrequencySketch(width: min(1 << 20, max(1024, capacity / 1024)))
        }

        /// Whether an entry of `size` bytes for `key` may go in: it fits, or its key was asked for at least as often
        /// as every entry it would evict (least recently used first). Walks only the entries that would go.
        func admits(_ key: String, size: Int) -> Bool {
            var needed = bytes + size - capacity
            guard needed > 0 else { return true }
            let candidate = sketch.frequency(key.hashValue)
            var slot = tail
            while needed > 0, let victim = slot, let entry = slots[victim].entry {
                if sketch.frequency(entry.key.hashValue) > candidate { return false }
                needed -= entry.size
                slot = slots[victim].newer
            }
            return true
        }

        /// How many tags were purged, ever (`PurgeCounter.tagSequence`): kept apart from the counters, so that
        /// clearing them when they are too many never takes it back.
        var tagSequence: Int64 = 0

        func counter(_ counter: PurgeCounter, now: Int64) -> Int64 {
            if case .tagSequence = counter { return tagSequence }
            guard let stored = counters[counter] else { return 0 }
            if let expiresAt = stored.expiresAt, expiresAt <= now { return 0 }
            return stored.value
        }

        /// Increases a counter. Counters expire after `lifetime` (every entry that recorded the old value is gone
        /// by then); expired ones are dropped as they come due, so templated tags (`event:{id}`) and writes to
        /// ever new URLs cannot grow the table forever, and nothing is scanned.
        mutating func increase(_ counter: PurgeCounter, now: Int64, lifetime: Int64?, softMark: Int64? = nil) {
            for expired in counterExpiries.popExpired(now: now) { counters[expired] = nil }
            let current = self.counter(counter, now: now)
            let next = softMark.map { Generation.afterSoftPurge(current, mark: $0) } ?? Generation.afterHardPurge(current)
            let expiresAt = lifetime.map { now.addingClamped($0) }
            makeRoom(for: counter, now: now)
            counters[counter] = (next, expiresAt)
            if let expiresAt { counterExpiries.set(counter, expiresAt: expiresAt) } else { counterExpiries.remove(counter) }
        }

        /// When the table is full of counters that have not expired (writes to a flood of new URLs) and `counter`
        /// is not among them: dropping one would make entries that recorded its old value valid again, so
        /// `everything` is increased instead, which invalidates every entry at once, after which no other
        /// counter matters.
        private mutating func makeRoom(for counter: PurgeCounter, now: Int64) {
            guard counters[counter] == nil, counters.count >= maxCounters else { return }
            let everything = self.counter(.everything, now: now)
            counters.removeAll(keepingCapacity: true)
            counterExpiries = ExpiryHeap()
            counters[.everything] = (Generation.afterHardPurge(everything), nil)
        }

        /// Moves the tag-purge sequence on and stamps `tag` with it, before the tag's counter moves (`OriginTags`).
        mutating func stampTagPurge(_ tag: String, now: Int64, lifetime: Int64) {
            for expired in counterExpiries.popExpired(now: now) { counters[expired] = nil }
            tagSequence += 1
            let counter = PurgeCounter.tagPurged(tag)
            makeRoom(for: counter, now: now)
            let expiresAt = now.addingClamped(lifetime)
            counters[counter] = (tagSequence, expiresAt)
            counterExpiries.set(counter, expiresAt: expiresAt)
        }

        mutating func insert(_ entry: Stored) {
            let slot: Int
            if let reused = free.popLast() {
                slot = reused
                slots[slot] = Slot(entry: entry, newer: nil, older: head)
            } else {
                slot = slots.count
                slots.append(Slot(entry: entry, newer: nil, older: head))
            }
            if let head { slots[head].newer = slot }
            head = slot
            if tail == nil { tail = slot }
            index[entry.key] = slot
            bytes += entry.size
        }

        mutating func remove(slot: Int) {
            unlink(slot)
            if let entry = slots[slot].entry {
                bytes -= entry.size
                index[entry.key] = nil
            }
            slots[slot] = Slot(entry: nil, newer: nil, older: nil)
            free.append(slot)
        }

        mutating func touch(slot: Int) {
            guard head != slot else { return }
            unlink(slot)
            slots[slot].older = head
            if let head { slots[head].newer = slot }
            head = slot
            if tail == nil { tail = slot }
        }

        private mutating func unlink(_ slot: Int) {
            let newer = slots[slot].newer
            let older = slots[slot].older
            if let newer { slots[newer].older = older } else { head = older }
            if let older { slots[older].newer = newer } else { tail = newer }
            slots[slot].newer = nil
            slots[slot].older = nil
        }
    }
}
