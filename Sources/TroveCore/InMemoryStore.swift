internal import TroveHTTP

/// The store used when no Redis is configured: the in-process tier with nothing behind it. Its entries are a
/// `LocalEntries` table (the same one `TieredStore` keeps in front of Redis, with the same bound in bytes and the same
/// admission policy), and its purge counters are kept in this process (`LocalCounters`) instead of in Redis, so
/// purges behave the same; but it is not shared with other Trove instances.
///
/// With nothing behind it, the tier is the whole truth: an entry it holds is answered with its counters' current
/// values whatever they are, and the machine decides (a soft-purged entry is served stale while it is refreshed);
/// `TieredStore` instead asks Redis when its copy is no longer good, since another instance may have stored a newer one.
///
/// Thread-safe: every event loop uses the same instance. Completions are called before the method returns.
public final class InMemoryStore<Body: Sendable>: CacheStore, Sendable {
    /// The entries: one table per process, shared by every loop.
    public let entries: LocalEntries<Body>
    let counters: LocalCounters

    /// - Parameters:
    ///   - capacity: bytes of entries (bodies, headers, keys) kept before the least recently used are evicted.
    ///   - maxCounters: purge counters kept at once; a capacity-sized default (each costs about 200 bytes).
    public init(capacity: Int, clock: any TroveClock = SystemClock(), maxCounters: Int? = nil) {
        self.entries = LocalEntries(capacity: capacity, clock: clock)
        self.counters = LocalCounters(maxCounters: maxCounters ?? max(10_000, capacity / 256), clock: clock)
    }

    /// Bytes held and entries stored, for statistics.
    public var usage: (bytes: Int, entries: Int) { entries.usage }

    public var health: StoreHealth {
        let (bytes, count) = usage
        return StoreHealth(ready: true, status: "memory store: \(count) entries, \(bytes) of \(entries.capacity) bytes")
    }

    public func lookup(_ address: EntryAddress, completion: (LookupOutcome<Body>) -> Void) {
        completion(lookupNow(address))
    }

    /// The memory store always knows at once.
    public func lookupAtOnce(_ address: EntryAddress) -> LookupOutcome<Body>? {
        lookupNow(address)
    }

    /// The entry first, then its counters: values read after it are at least as recent as what it recorded, so a
    /// purge made in between is seen as one.
    private func lookupNow(_ address: EntryAddress) -> LookupOutcome<Body> {
        guard let (meta, body) = entries.peek(address.key) else { return .notFound(generations: counters.values(of: address)) }
        let learned = address.learnsTags ? OriginTags.countersToCheck(meta, address: address) : []
        return .found(meta, body, generations: counters.values(of: address, and: learned), local: true)
    }

    public func store(_ write: StoreWrite<Body>, completion: (Result<Void, StoreError>) -> Void) {
        // Origin tags: their stamps and counters are read at once; a purge after this read moves them on, and the
        // next lookup sees that.
        let values = counters.values(OriginTags.countersToRecord(write.meta))
        guard let meta = OriginTags.recorded(write.meta, address: write.address, values: values) else {
            return completion(.failure(.purgedWhileFetched))
        }
        switch entries.keep(write.address.key, meta: meta, body: write.body, expireAfter: write.expireAfter) {
        case .kept, .tooBig: completion(.success(()))
        case .notAdmitted: completion(.failure(.notAdmitted))
        }
    }

    /// The memory store keeps every body whole (shared by every client that reads it, never copied): it has no
    /// chunks.
    public func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: (Result<Body?, StoreError>) -> Void) {
        completion(.success(nil))
    }

    public func purge(_ request: PurgeRequest, completion: (Result<PurgeReport, StoreError>) -> Void) {
        counters.apply(request)
        // The counters decide; dropping a purged key's entry frees its memory at once. A soft-purged entry stays:
        // it is served stale while it is refreshed.
        let found = request.counters.compactMap { counter -> Bool? in
            guard case .key(let key) = counter else { return nil }
            return request.softMark(for: counter) == nil ? entries.drop([key])[0] : entries.holds(key)
        }
        completion(.success(PurgeReport(request, found: found)))
    }

    public func inspect(key: String, completion: (Result<EntryInspection?, StoreError>) -> Void) {
        guard let meta = entries.inspect(key) else { return completion(.success(nil)) }
        let address = EntryAddress.ofStored(key, meta: meta)
        let current = counters.values(of: address, and: OriginTags.countersToCheck(meta, address: address))
        completion(.success(EntryInspection(meta: meta, valid: meta.change(for: address, generations: current) == .none)))
    }

    /// Nothing is held open.
    public func shutdown() {}
}
