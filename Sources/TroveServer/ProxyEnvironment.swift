public import Logging
public import NIOCore
internal import Synchronization
public import TroveCore
public import TroveRules

/// Everything a connection handler needs, shared by every connection: the rules in force, the origin client,
/// the stores, the clock, the statistics, the logger.
public struct ProxyEnvironment: Sendable {
    public let rules: RulesState
    public let origins: any OriginClient<ByteBuffer>
    public let stores: StoreDirectory
    public let clock: any TroveClock
    public let stats: ProxyStats
    /// Shares one origin fetch among concurrent misses for a key.
    public let coalescer: Coalescer
    /// Each origin's limits.
    public let gates: OriginGates
    public let logger: Logger
    /// Re-reads the rules file (`POST /reload`, SIGHUP); nil when the rules were not read from a file.
    public let reload: (@Sendable () -> ReloadOutcome)?
    /// Request bodies being received, all connections together (`limits.request_body_budget`).
    public let requestBodies = ByteBudget()
    /// Origin answers being received, all requests together (`limits.response_body_budget`).
    public let responseBodies = ByteBudget()
    /// Each loop's remembered plans.
    public let plans: PlanCaches
    /// One line per request, when `trove serve --access-log` asks for it.
    public let accessLog: AccessLog?
    /// The Prometheus metrics (`/metrics`).
    public var metrics: ProxyMetrics { stats.metrics }
    /// Makes every purge (writes, the admin API, webhooks), counting, logging and remembering each.
    public let purger: Purger
    /// The most recent purges (`GET /purges`).
    let purgeHistory = PurgeHistory()
    /// What the routes in shadow would have done (`GET /shadow`), and the writes seen, for its diagnosis.
    public let shadow: ShadowReport

    public init(
        rules: RulesState, origins: any OriginClient<ByteBuffer>, stores: StoreDirectory, clock: any TroveClock,
        stats: ProxyStats, coalescer: Coalescer, gates: OriginGates, logger: Logger,
        reload: (@Sendable () -> ReloadOutcome)? = nil, accessLog: AccessLog? = nil
    ) {
        self.accessLog = accessLog
        self.reload = reload
        self.rules = rules
        self.origins = origins
        self.stores = stores
        self.clock = clock
        self.stats = stats
        self.plans = PlanCaches(stats: stats)
        self.shadow = ShadowReport(clock: clock) { [metrics = stats.metrics] route, outcome in metrics.recordShadow(route: route, outcome: outcome) }
        self.coalescer = coalescer
        self.gates = gates
        self.logger = logger
        self.purger = Purger(clock: clock) { [metrics = stats.metrics, purgeHistory] outcome in
            metrics.record(outcome)
            PurgeLog.write(outcome, to: logger)
            let kept = purgeHistory.record(outcome, at: clock.nowMilliseconds())
            accessLog?.record(purge: kept)
        }
    }
}

/// What a reload of the rules file did.
public struct ReloadOutcome: Sendable {
    /// True when the new rules are in force.
    public var applied: Bool
    /// The fingerprint of the rules in force afterwards.
    public var version: String
    /// Errors (when refused) and warnings, as `trove check` prints them.
    public var diagnostics: [String]
    /// Settings that changed but only take effect on restart (listeners, store).
    public var needsRestart: [String]

    public init(applied: Bool, version: String, diagnostics: [String], needsRestart: [String] = []) {
        self.applied = applied
        self.version = version
        self.diagnostics = diagnostics
        self.needsRestart = needsRestart
    }
}

/// The rules in force. A request reads them once when it starts and keeps them until it ends, so a reload
/// never changes the rules under a request in flight.
public final class RulesState: Sendable {
    /// One version of the rules and what is derived from it once. A class: every request takes the current one,
    /// and a reference is one retain where the rule set's fields are dozens. Immutable.
    public final class Loaded: Sendable {
        public let rules: RuleSet
        /// What purges need from these rules (`limits.max_purge`, how long counters live).
        public let purgeSettings: PurgeSettings
        /// When these rules were put in force (milliseconds since the epoch).
        public let loadedAt: Int64
        /// The headers that carry credentials, lower-cased (`clients.credentials`), read for every request.
        public let credentialHeaders: [String]

        public init(rules: RuleSet, loadedAt: Int64) {
            self.rules = rules
            self.purgeSettings = PurgeSettings(rules: rules)
            self.loadedAt = loadedAt
            self.credentialHeaders = Array(rules.clients.credentialHeaders)
        }
    }

    private let loaded: Mutex<Loaded>
    /// Moves on every `replace`: the hit fast path compares it with the version its remembered plans were made
    /// under (one relaxed load) instead of taking the lock `current` takes on every request.
    private let versionCount = Atomic<Int>(0)

    public init(_ rules: RuleSet, loadedAt: Int64) {
        loaded = Mutex(Loaded(rules: rules, loadedAt: loadedAt))
    }

    public var current: Loaded { loaded.withLock { $0 } }

    /// Which `replace` the rules in force came from. Read before `current`, it never names newer rules than
    /// `current` returns.
    var version: Int { versionCount.load(ordering: .acquiring) }

    /// Puts new rules in force for requests that start from now on.
    public func replace(with rules: RuleSet, loadedAt: Int64) {
        loaded.withLock { $0 = Loaded(rules: rules, loadedAt: loadedAt) }
        versionCount.add(1, ordering: .releasing)
    }
}

/// What one event loop uses of its store: entries and purges, fetch locks, and webhook delivery claims (on Redis,
/// all three on the loop's one connection).
public struct LoopStores {
    public let store: any CacheStore<ByteBuffer>
    public let fetchLocks: any FetchLocks
    public let deliveryClaims: any DeliveryClaims

    public init(store: any CacheStore<ByteBuffer>, fetchLocks: any FetchLocks, deliveryClaims: any DeliveryClaims) {
        self.store = store
        self.fetchLocks = fetchLocks
        self.deliveryClaims = deliveryClaims
    }
}

/// The stores each event loop uses: the shared memory store (with local fetch locks and claims), or each loop's
/// own Redis connection.
public final class StoreDirectory: Sendable {
    private enum Kind: Sendable {
        case shared(InMemoryStore<ByteBuffer>, LocalFetchLocks, LocalDeliveryClaims)
        case perLoop([ObjectIdentifier: NIOLoopBound<LoopStores>])
    }

    private let kind: Kind
    /// `memory` or `redis`, for statistics.
    public let name: String

    /// One memory store for every loop; `claims` remembers webhook deliveries (default: its own, bounded).
    public init(memory: InMemoryStore<ByteBuffer>, claims: LocalDeliveryClaims = LocalDeliveryClaims()) {
        kind = .shared(memory, LocalFetchLocks(), claims)
        name = "memory"
    }

    /// Each loop's own stores, built on each loop by `make` (which runs on that loop).
    public static func perLoop(
        group: any EventLoopGroup, name: String, make: @escaping @Sendable (any EventLoop) -> LoopStores
    ) async throws -> StoreDirectory {
        var stores: [ObjectIdentifier: NIOLoopBound<LoopStores>] = [:]
        for loop in group.makeIterator() {
            stores[ObjectIdentifier(loop)] = try await loop.submit { NIOLoopBound(make(loop), eventLoop: loop) }.get()
        }
        return StoreDirectory(stores: stores, name: name)
    }

    /// One loop's stores, made on that loop now (tests: an EmbeddedEventLoop runs nothing submitted until told).
    convenience init(loop: any EventLoop, stores: LoopStores, name: String) {
        self.init(stores: [ObjectIdentifier(loop): NIOLoopBound(stores, eventLoop: loop)], name: name)
    }

    private init(stores: [ObjectIdentifier: NIOLoopBound<LoopStores>], name: String) {
        kind = .perLoop(stores)
        self.name = name
    }

    /// Whether a body a lookup returns is the store's own, shared by every client that reads it (the memory
    /// store): serving it holds no copy, so it does not count against `limits.response_body_budget`. Redis bodies
    /// are read for each answer.
    public var sharesBodies: Bool {
        if case .shared = kind { return true }
        return false
    }

    /// The stores of `loop`. Call on that loop.
    public func stores(for loop: any EventLoop) -> LoopStores {
        switch kind {
        case .shared(let memory, let locks, let claims):
            return LoopStores(store: memory, fetchLocks: locks, deliveryClaims: claims)
        case .perLoop(let stores):
            guard let bound = stores[ObjectIdentifier(loop)] else {
                preconditionFailure("no store for event loop \(loop): stores are built for the server's own group")
            }
            return bound.value
        }
    }

    /// The entries-and-purges store of `loop`. Call on that loop.
    public func store(for loop: any EventLoop) -> any CacheStore<ByteBuffer> {
        stores(for: loop).store
    }

    /// The health of every loop's store together, answered on `loop`: ready only when all are (each event
    /// loop has its own Redis connection, and a request may land on any of them).
    public func health(on loop: any EventLoop) -> EventLoopFuture<StoreHealth> {
        switch kind {
        case .shared(let memory, _, _):
            return loop.makeSucceededFuture(memory.health)
        case .perLoop(let stores):
            let futures = stores.values.map { bound in bound.eventLoop.submit { bound.value.store.health } }
            return EventLoopFuture.whenAllSucceed(futures, on: loop).map { healths in
                if let sick = healths.first(where: { !$0.ready }) {
                    let count = healths.filter { !$0.ready }.count
                    return StoreHealth(ready: false, status: "\(count) of \(healths.count) connections: \(sick.status)")
                }
                return StoreHealth(ready: true, status: healths.first?.status ?? "no store")
            }
        }
    }

    /// Shuts every loop's store down, on its loop (closes the Redis connections).
    public func shutdown() async {
        switch kind {
        case .shared(let memory, _, _):
            memory.shutdown()
        case .perLoop(let stores):
            for bound in stores.values {
                try? await bound.eventLoop.submit { bound.value.store.shutdown() }.get()
            }
        }
    }
}
