internal import Synchronization
public import TroveCore

/// Counts what Trove did with requests, overall and per route, for `/stats` (and, through `metrics`, for
/// `/metrics`).
///
/// Counters are relaxed atomics: every event loop adds to them without a lock, and `/stats` reads them
/// whenever it is asked. Routes are counted by name (so counts survive a reload that keeps the name).
public final class ProxyStats: Sendable {
    /// Counts at one moment.
    public struct Snapshot: Sendable, Equatable, Codable {
        public var requests = 0
        public var hits = 0
        public var misses = 0
        public var stale = 0
        public var bypasses = 0
        public var passes = 0
        public var errors = 0
        public var stored = 0
        public var coalesced = 0
        /// Hits served from this process's memory rather than from Redis (all of a memory store's hits).
        public var localHits = 0

        /// hits / (hits + misses); nil before any cacheable request.
        public var hitRatio: Double? {
            hits + misses == 0 ? nil : Double(hits) / Double(hits + misses)
        }

        static func + (a: Snapshot, b: Snapshot) -> Snapshot {
            Snapshot(requests: a.requests + b.requests, hits: a.hits + b.hits, misses: a.misses + b.misses,
                stale: a.stale + b.stale, bypasses: a.bypasses + b.bypasses, passes: a.passes + b.passes,
                errors: a.errors + b.errors, stored: a.stored + b.stored, coalesced: a.coalesced + b.coalesced,
                localHits: a.localHits + b.localHits)
        }
    }

    private let routes = Mutex<[String: RouteCounters]>([:])
    /// The name requests without a route are counted under.
    public static let unmatched = "(unmatched)"

    /// The Prometheus side of these counts, and the store, origin and purge metrics.
    public let metrics: ProxyMetrics

    public init(metrics: ProxyMetrics = ProxyMetrics(store: "memory")) {
        self.metrics = metrics
    }

    /// The counters of a route, created on first use. Handlers keep the result for the request.
    public func counters(route: String?) -> RouteCounters {
        let name = route ?? Self.unmatched
        return routes.withLock { routes in
            if let existing = routes[name] { return existing }
            let created = metrics.route(name)
            routes[name] = created
            return created
        }
    }

    /// Records one answered request (see `RouteCounters.record`).
    public func record(
        _ counters: RouteCounters, outcome: CacheStatus.Outcome?, stored: Bool, storedBytes: Int = 0, coalesced: Bool = false, error: Bool,
        local: Bool = false
    ) {
        counters.record(outcome: outcome, stored: stored, storedBytes: storedBytes, coalesced: coalesced, error: error, local: local)
    }

    /// Every route's counts, by name.
    public var byRoute: [String: Snapshot] {
        routes.withLock { $0.mapValues(\.snapshot) }
    }

    /// The counts of all routes together.
    public var total: Snapshot {
        byRoute.values.reduce(Snapshot(), +)
    }
}
