public import NIOCore
public import TroveCore

/// Redis with an in-process tier in front of it (`store.local`): entries found in Redis, or written to it, are also
/// kept in this process (one `LocalEntries` table shared by every event loop, bounded in bytes, with its admission
/// policy: the table the memory store is made of, that store being this tier with nothing behind it); a lookup that
/// finds one there checks the counters it depends on and serves the body from memory. In `strict` mode the counters are read from Redis on every hit (a few bytes, one round trip); in `tracked` mode
/// from `TrackedCounters`, which Redis keeps current (no round trip), or from Redis while it cannot.
///
/// A copy kept here that is purged (its counters moved) or no longer fresh is not answered from here: Redis is asked
/// for the entry, as without a tier, since another instance may have stored a newer answer there.
///
/// Why it stays coherent: an entry is served only when every counter it recorded still has its value, and those
/// values are read from Redis on every hit, exactly as a lookup of the entry in Redis reads them. A purge answered
/// to its caller has moved its counters in Redis; every lookup after that, on any instance, reads the moved value
/// and refuses the local copy. The local copy can be older than Redis' (another instance stored a newer answer):
/// it is still an answer the rules allowed to be served, fresh by its own dates and purged by nothing since.
///
/// Entries the origin tagged (`tags_from`) are kept only as read from Redis (their recorded tag counters are
/// written there), and bodies stored in chunks (over `RedisStore.chunkSize`) not at all.
public final class TieredStore: CacheStore {
    public typealias Body = ByteBuffer

    let remote: RedisStore
    public let local: LocalEntries<ByteBuffer>
    /// In `tracked` mode, the counters Redis tells this process about (`CounterTracking`); nil in `strict`.
    let tracked: TrackedCounters?
    private let clock: any TroveClock

    public init(remote: RedisStore, local: LocalEntries<ByteBuffer>, tracked: TrackedCounters? = nil, clock: any TroveClock = SystemClock()) {
        self.remote = remote
        self.local = local
        self.tracked = tracked
        self.clock = clock
    }

    public var health: StoreHealth {
        var health = remote.health
        let (bytes, entries) = local.usage
        health.status += "; in-process tier: \(entries) entries, \(bytes) bytes"
        if let tracked {
            health.status += tracked.isTracking ? ", counters tracked (\(tracked.count) kept)" : ", counters not tracked now (read on every hit)"
        }
        return health
    }

    public func lookup(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        guard let (meta, body) = local.peek(address.key), meta.freshUntil > clock.nowMilliseconds() else {
            // Not here, or no longer fresh: Redis may hold a fresher answer another instance stored.
            return lookupRemote(address, completion: completion)
        }
        let counters = remote.countersToCheck(for: address, meta: meta)
        // Tracked (and tracking now): the counters as Redis last told us, if it has told us of every change since.
        // The ticket is taken first, so that a read this hit has to make is kept only if nothing changed from here.
        var names: [String] = []
        let ticket = remote.replaysPending ? nil : tracked?.ticket()
        if let tracked, ticket != nil {
            names = counters.map(remote.counterKey)
            if let values = tracked.values(names) { return decide(address, meta, body, values, completion: completion) }
        }
        remote.read(counters) { result in
            switch result {
            case .success(let values):
                if let ticket { self.tracked?.remember(names, values, ticket: ticket) }
                self.decide(address, meta, body, values, completion: completion)
            case .failure(let error):
                completion(.unavailable(error))
            }
        }
    }

    /// In `tracked` mode, while tracking: a kept, fresh copy whose counters this process knows and which no purge
    /// moved. Anything else (strict mode, no copy, a counter not known here, purged) is `lookup`'s business; a copy
    /// found here but not answered is then counted twice by the admission policy, which only happens on the first
    /// hit after one of its counters moved.
    public func lookupAtOnce(_ address: EntryAddress) -> LookupOutcome<ByteBuffer>? {
        guard let tracked, !remote.replaysPending, tracked.isTracking, let (meta, body) = local.peek(address.key), meta.freshUntil > clock.nowMilliseconds(),
            let values = tracked.values(remote.countersToCheck(for: address, meta: meta).map(remote.counterKey)),
            meta.change(for: address, generations: values) == .none
        else { return nil }
        return .found(meta, body, generations: values, local: true)
    }

    /// Serves the kept copy if every counter it recorded still has its value; else asks Redis, as without a tier.
    private func decide(
        _ address: EntryAddress, _ meta: EntryMeta, _ body: ByteBuffer, _ values: [Int64], completion: @escaping (LookupOutcome<ByteBuffer>) -> Void
    ) {
        guard meta.change(for: address, generations: values) == .none else {
            // Purged since it was kept here; Redis may hold a newer answer another instance stored since.
            local.drop([address.key])
            return lookupRemote(address, completion: completion)
        }
        completion(.found(meta, body, generations: values, local: true))
    }

    private func lookupRemote(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        remote.lookup(address) { outcome in
            // Only a copy that may be served now is worth keeping: a purged one would send every hit back here.
            if case .found(let meta, let body, let generations, _) = outcome, meta.change(for: address, generations: generations) == .none {
                self.keep(address.key, meta, body)
            }
            completion(outcome)
        }
    }

    public func store(_ write: StoreWrite<ByteBuffer>, completion: @escaping (Result<Void, StoreError>) -> Void) {
        remote.store(write) { result in
            if case .success = result, !write.address.learnsTags { self.keep(write.address.key, write.meta, write.body) }
            completion(result)
        }
    }

    /// Keeps a whole, unchunked entry until its stale window ends.
    private func keep(_ key: String, _ meta: EntryMeta, _ body: ByteBuffer) {
        guard meta.chunks == nil, body.readableBytes == meta.bodyLength, body.readableBytes <= RedisStore.chunkSize else { return }
        let left = meta.staleUntil - clock.nowMilliseconds()
        guard left > 0 else { return }
        local.keep(key, meta: meta, body: body, expireAfter: left)
    }

    public func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: @escaping (Result<ByteBuffer?, StoreError>) -> Void) {
        remote.readChunk(key, chunks, index: index, completion: completion)
    }

    public func purge(_ request: PurgeRequest, completion: @escaping (Result<PurgeReport, StoreError>) -> Void) {
        // The counters decide; dropping the named keys only frees their memory at once.
        local.drop(request.keys)
        guard let tracked else { return remote.purge(request, completion: completion) }
        remote.purge(request) { result in
            // Before the purge is answered: this process must not wait for its own invalidation to arrive.
            tracked.forget(self.remote.counterNames(movedBy: request))
            completion(result)
        }
    }

    public func inspect(key: String, completion: @escaping (Result<EntryInspection?, StoreError>) -> Void) {
        remote.inspect(key: key, completion: completion)
    }

    public func shutdown() {
        remote.shutdown()
    }
}
