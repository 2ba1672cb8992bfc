internal import Synchronization
internal import TroveHTTP

/// The in-process tier's entries: answers kept in this process's memory, one table shared by every event loop,
/// bounded in bytes, the least recently used evicted first, behind an admission policy. It holds entries only;
/// whether one may be served is its owner's decision, from the purge counters: `InMemoryStore` keeps them in this
/// process (the tier with nothing behind it), `TieredStore` reads them from Redis or from `TrackedCounters`.
///
/// Admission (TinyLFU): every `peek` counts its key in a `FrequencySketch`; when the table is full, a new entry
/// evicts the least recently used ones only if its key was asked for at least as often as each of them. A scan of
/// keys asked for once (a crawler, a report walking every page) is then not kept over entries asked for again and
/// again; an entry whose key keeps being asked for gets in once its count passes theirs.
///
/// Thread-safe: each call holds the table's lock only while it runs, and walks only the entries it evicts.
public final class LocalEntries<Body: Sendable>: Sendable {
    /// What `keep` did with an entry.
    public enum Keeping: Sendable, Equatable {
        case kept
        /// Bigger than the whole table: it would evict everything for nothing.
        case tooBig
        /// Its key was asked for less often than an entry it would evict.
        case notAdmitted
    }

    private let table: Mutex<Table>
    private let clock: any TroveClock
    /// Bytes of entries (bodies, headers, keys) kept before the least recently used are evicted.
    public let capacity: Int

    public init(capacity: Int, clock: any TroveClock = SystemClock()) {
        self.table = Mutex(Table(capacity: capacity))
        self.clock = clock
        self.capacity = capacity
    }

    /// Bytes held and entries kept, for statistics.
    public var usage: (bytes: Int, entries: Int) {
        table.withLock { ($0.bytes, $0.index.count) }
    }

    /// The entry kept under `key`, if any and not expired, counted as asked for (admission) and as used (LRU). A key
    /// not found is counted too: a miss is how a key starts to be asked for.
    public func peek(_ key: String) -> (meta: EntryMeta, body: Body)? {
        let now = clock.nowMilliseconds()
        return table.withLock { table in
            table.sketch.increment(key.hashValue)
            guard let slot = table.live(key, now: now) else { return nil }
            table.touch(slot: slot)
            let entry = table.slots[slot].entry!
            return (entry.meta, entry.body)
        }
    }

    /// The entry kept under `key`, for inspection: neither counted nor moved.
    public func inspect(_ key: String) -> EntryMeta? {
        let now = clock.nowMilliseconds()
        return table.withLock { table in table.live(key, now: now).flatMap { table.slots[$0].entry?.meta } }
    }

    /// Keeps `meta` and `body` under `key` for `expireAfter` milliseconds, if admitted. An entry already under `key`
    /// goes first, whatever happens to the new one: it is older than the answer that replaces it.
    @discardableResult
    public func keep(_ key: String, meta: EntryMeta, body: Body, expireAfter: Int64) -> Keeping {
        let now = clock.nowMilliseconds()
        let size = Self.size(of: meta, key: key)
        return table.withLock { table in
            if let slot = table.index[key] { table.remove(slot: slot) }
            guard size <= table.capacity else { return .tooBig }
            guard table.admits(key, size: size) else { return .notAdmitted }
            while table.bytes + size > table.capacity, let oldest = table.tail {
                table.remove(slot: oldest)
            }
            table.insert(Kept(key: key, meta: meta, body: body, size: size, expiresAt: now.addingClamped(expireAfter)))
            return .kept
        }
    }

    /// Drops the entry under each of `keys` (their memory is freed at once); for each, whether there was one.
    @discardableResult
    public func drop(_ keys: [String]) -> [Bool] {
        table.withLock { table in
            keys.map { key in
                guard let slot = table.index[key] else { return false }
                table.remove(slot: slot)
                return true
            }
        }
    }

    /// Whether an entry is kept under `key` (expired or not).
    public func holds(_ key: String) -> Bool {
        table.withLock { $0.index[key] != nil }
    }

    /// What an entry costs: its body, its headers and key, and a fixed overhead for the bookkeeping.
    static func size(of meta: EntryMeta, key: String) -> Int {
        meta.bodyLength + key.utf8.count + 128
            + meta.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }
            + meta.tags.reduce(0) { $0 + $1.utf8.count + 16 }
    }

    private struct Kept {
        let key: String
        let meta: EntryMeta
        let body: Body
        let size: Int
        let expiresAt: Int64
    }

    /// Entries in slots of an array, linked from most (head) to least (tail) recently used, so that touching and
    /// evicting are O(1) without allocating a node per entry.
    private struct Table {
        struct Slot {
            var entry: Kept?
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
        /// How often each key was asked for lately: the admission policy's memory.
        var sketch: FrequencySketch

        init(capacity: Int) {
            self.capacity = capacity
            // About one counter per kilobyte of capacity (answers of APIs run from hundreds of bytes to tens of
            // kilobytes): 2 bytes of sketch per KiB, between 1,024 and 1,048,576 counters per row.
            sketch = FrequencySketch(width: min(1 << 20, max(1024, capacity / 1024)))
        }

        /// The slot of `key`'s entry if it has not expired; an expired one is removed on the way.
        mutating func live(_ key: String, now: Int64) -> Int? {
            guard let slot = index[key] else { return nil }
            guard slots[slot].entry!.expiresAt > now else {
                remove(slot: slot)
                return nil
            }
            return slot
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

        mutating func insert(_ entry: Kept) {
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
