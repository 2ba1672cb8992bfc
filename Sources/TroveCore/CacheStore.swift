
/// Where entries live, and what purges them: Redis (shared by every Trove instance) or the in-process memory
/// store. Fetch locks (`FetchLocks`) and webhook delivery claims (`DeliveryClaims`) are seams of their own; a
/// backend implements the three, and `StoreBackends` (in the app) builds them.
///
/// Contract for every method:
/// - `completion` is called exactly once, on the thread that made the call (for the Redis store, the event
///   loop that owns its connection; the memory store calls it before returning). So the hit path never hops
///   threads.
/// - "Not found" and "the store cannot answer" are different outcomes: a store that is down or slow reports
///   `.unavailable`, and the request goes to the origin without the cache.
/// - Counters (see `EntryAddress`) that were never increased read as 0.
public protocol CacheStore<Body> {
    /// How the store hands out bodies: `ByteBuffer` on the server, `[UInt8]` in tests.
    associatedtype Body: Sendable

    /// Reads an entry and the current values of the counters it depends on, together (one round trip).
    func lookup(_ address: EntryAddress, completion: @escaping (LookupOutcome<Body>) -> Void)

    /// What `lookup` would find, when the store knows it now, without waiting for anything (an entry in this
    /// process's memory, with counters known here): the hit fast path asks this, and takes the outcome back to
    /// the full path (`lookup` is then not called) when it does not answer from it. nil when only `lookup` can
    /// say; a store with nothing in memory (Redis alone) always says nil.
    func lookupAtOnce(_ address: EntryAddress) -> LookupOutcome<Body>?

    /// Stores an entry under `write.address.key`, replacing any other, to be dropped after
    /// `write.expireAfter` milliseconds.
    func store(_ write: StoreWrite<Body>, completion: @escaping (Result<Void, StoreError>) -> Void)

    /// Reads chunk `index` of the entry stored under `key` whose body is kept in `chunks` (see `EntryChunks`): nil
    /// when it is gone (evicted); the store then drops the entry's head, so the next request fetches it again.
    func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: @escaping (Result<Body?, StoreError>) -> Void)

    /// Increases the counters a purge names, in order (and drops the named keys' entries to free memory). A
    /// store that cannot reach its backend keeps what it could not apply and applies it when it can; until
    /// then it answers lookups `.unavailable`.
    func purge(_ request: PurgeRequest, completion: @escaping (Result<PurgeReport, StoreError>) -> Void)

    /// The entry stored under `key` with the current values of its counters, for the admin API.
    func inspect(key: String, completion: @escaping (Result<EntryInspection?, StoreError>) -> Void)

    /// Whether lookups can be answered now, and a sentence about it (for `/readyz`).
    var health: StoreHealth { get }

    /// Closes what the store holds open (its connection) and stops reconnecting; later calls fail as
    /// `.unavailable`. Call on the thread that uses the store.
    func shutdown()
}

extension CacheStore {
    public func lookupAtOnce(_ address: EntryAddress) -> LookupOutcome<Body>? { nil }
}

/// A store's state, as `/readyz` reports it.
public struct StoreHealth: Sendable, Equatable {
    public var ready: Bool
    public var status: String

    public init(ready: Bool, status: String) {
        self.ready = ready
        self.status = status
    }
}

/// What a lookup found.
public enum LookupOutcome<Body: Sendable>: Sendable {
    /// An entry is stored; `generations` are the current values of its counters, in `EntryAddress.counters`
    /// order. Whether it may be served is the decision core's business. `local`: read from this process's memory
    /// (the memory store, or the in-process tier in front of Redis), counted per route as a tier hit.
    case found(EntryMeta, Body, generations: [Int64], local: Bool = false)
    /// Nothing is stored; `generations` are what a fetch starting now must record.
    case notFound(generations: [Int64])
    /// The store could not answer (down, slow, overloaded).
    case unavailable(StoreError)
}

/// An entry to store.
public struct StoreWrite<Body: Sendable>: Sendable {
    public let address: EntryAddress
    public let meta: EntryMeta
    public let body: Body
    /// When the store should drop it, in milliseconds from now: past its stale window, with some slack.
    public let expireAfter: Int64

    public init(address: EntryAddress, meta: EntryMeta, body: Body, expireAfter: Int64) {
        self.address = address
        self.meta = meta
        self.body = body
        self.expireAfter = expireAfter
    }
}

/// What a store is asked to do for a purge: move these counters on (in this order), hard or soft (see
/// `Generation`), and keep each but `everything` for `counterLifetime` milliseconds. Made by `Purger` only.
public struct PurgeRequest: Sendable, Equatable {
    public let counters: [PurgeCounter]
    /// Milliseconds. An entry that recorded a counter before the purge can live at most its fetch time plus
    /// its TTL and stale window; the counter must be kept longer than that, or the entry would match again
    /// when the counter expires and reads 0.
    public let counterLifetime: Int64
    /// For a soft purge, the mark its soft counters move to (`Generation.mark`, fixed when the purge was made,
    /// so a purge replayed later still counts its stale window from then); nil for a hard purge.
    public let softMark: Int64?
    /// Whether a soft purge's keys are soft too. A write's are not: RFC 9111 §4.4 wants the written resource's
    /// entries invalid, not stale.
    public let softKeys: Bool

    public init(counters: [PurgeCounter], counterLifetime: Int64, softMark: Int64? = nil, softKeys: Bool = true) {
        self.counters = counters
        self.counterLifetime = counterLifetime
        self.softMark = softMark
        self.softKeys = softKeys
    }

    /// True when the purge's keys are soft: their entries stay (served stale while they are refreshed).
    public var softensKeys: Bool { softMark != nil && softKeys }

    /// The mark `counter` moves to when this purge is soft for it; nil when it is purged hard.
    public func softMark(for counter: PurgeCounter) -> Int64? {
        if case .key = counter, !softKeys { return nil }
        return softMark
    }

    /// The keys whose entries the purge names: a store drops those it purges hard at once to free memory (a
    /// soft-purged entry is still served, stale).
    public var keys: [String] {
        counters.compactMap { if case .key(let key) = $0 { key } else { nil } }
    }

    /// The request from the `offset`-th counter on: what is left when the first `offset` were applied.
    public func dropping(first offset: Int) -> PurgeRequest {
        PurgeRequest(counters: Array(counters.dropFirst(offset)), counterLifetime: counterLifetime, softMark: softMark, softKeys: softKeys)
    }
}

/// What a purge did, as the admin API reports it.
public struct PurgeReport: Sendable, Equatable, Codable {
    /// Every entry was invalidated.
    public var all: Bool
    /// Routes whose entries were all invalidated.
    public var routes: [String]
    /// Tags whose entries were all invalidated.
    public var tags: [String]
    /// Keys invalidated, and whether an entry was stored under each.
    public var keys: [KeyResult]

    public struct KeyResult: Sendable, Equatable, Codable {
        public var key: String
        public var found: Bool

        public init(key: String, found: Bool) {
            self.key = key
            self.found = found
        }
    }

    public init(all: Bool = false, routes: [String] = [], tags: [String] = [], keys: [KeyResult] = []) {
        self.all = all
        self.routes = routes
        self.tags = tags
        self.keys = keys
    }

    /// The report of a request whose counters were all increased; `found` says, per key in `request.keys`
    /// order, whether an entry was stored under it.
    public init(_ request: PurgeRequest, found: [Bool]) {
        self.init()
        var keyIndex = 0
        for counter in request.counters {
            switch counter {
            case .everything: all = true
            case .route(let route): routes.append(route)
            case .tag(let tag): tags.append(tag)
            case .key(let key):
                keys.append(KeyResult(key: key, found: keyIndex < found.count && found[keyIndex]))
                keyIndex += 1
            case .tagSequence, .tagPurged:
                break  // never purged (`Purger` makes no such request)
            }
        }
    }
}

/// An entry as the admin API shows it.
public struct EntryInspection: Sendable, Equatable {
    public let meta: EntryMeta
    /// False when a purge has invalidated it since it was stored.
    public let valid: Bool

    public init(meta: EntryMeta, valid: Bool) {
        self.meta = meta
        self.valid = valid
    }
}

/// Why a store could not answer.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case unavailable, timeout, overloaded, protocolError, purgedWhileFetched, notAdmitted
    }

    private let code: Code
    public let description: String

    private init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// Not connected (Redis down, refused, reconnecting).
    public static func unavailable(_ reason: String) -> StoreError { StoreError(.unavailable, reason) }
    /// A command took longer than `store.command_timeout`.
    public static func timeout(_ reason: String) -> StoreError { StoreError(.timeout, reason) }
    /// Too many commands are waiting for answers.
    public static func overloaded(_ reason: String) -> StoreError { StoreError(.overloaded, reason) }
    /// The store answered something Trove cannot read.
    public static func protocolError(_ reason: String) -> StoreError { StoreError(.protocolError, reason) }
    /// Not an outage: the entry was not stored because a purge of a tag its origin named ran during its fetch
    /// (`OriginTags`).
    public static let purgedWhileFetched = StoreError(.purgedWhileFetched, "a purge of a tag the origin named ran while it was fetched")

    /// Not an outage: the in-process store is full of entries asked for more often than this one (see
    /// `InMemoryStore`'s admission), so it was not stored.
    public static let notAdmitted = StoreError(.notAdmitted, "the memory store is full of entries asked for more often")

    /// True for `purgedWhileFetched`.
    public var isPurgedWhileFetched: Bool { code == .purgedWhileFetched }

    /// True for `notAdmitted`.
    public var isNotAdmitted: Bool { code == .notAdmitted }

    /// A store refused on purpose (`purgedWhileFetched`, `notAdmitted`): not an error of the store.
    public var isRefusal: Bool { code == .purgedWhileFetched || code == .notAdmitted }

    /// A bounded description for metric labels and logs: never carries the details.
    public var shortDescription: String { code.rawValue }
}
