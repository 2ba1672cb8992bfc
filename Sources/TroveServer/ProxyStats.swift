internal import Synchronization
public import TroveCore

/// Counts what Trove did with requests, overall and per route, for `/stats` (and, through `metrics`, for
/// `/metrics`).
///
/// Counters are relaxed atomics: every event loop adds to them without a lock, and `/stats` reads them
/// whenever it is asked. Routes are counted by name (so counts survive a reload that keeps the name).
public final class ProxyStats: Sendable {
    /// The counters of one route (or of requests no route matched).
    public final class Counters: Sendable {
        let requests = Atomic<Int>(0)
        let hits = Atomic<Int>(0)
        let misses = Atomic<Int>(0)
        let stale = Atomic<Int>(0)
        let bypasses = Atomic<Int>(0)
        let passes = Atomic<Int>(0)
        /// Answers Trove made itself because of an error (origin unreachable or too slow, bad request).
        let errors = Atomic<Int>(0)
        let stored = Atomic<Int>(0)
        /// Requests answered from another request's fetch, which they waited for.
        let coalesced = Atomic<Int>(0)
        /// The same route's Prometheus counters.
        let metrics: ProxyMetrics.RouteMetrics

        init(metrics: ProxyMetrics.RouteMetrics) {
            self.metrics = metrics
        }

        public var snapshot: Snapshot {
            Snapshot(
                requests: requests.load(ordering: .relaxed), hits: hits.load(ordering: .relaxed),
                misses: misses.load(ordering: .relaxed), stale: stale.load(ordering: .relaxed),
                bypasses: bypasses.load(ordering: .relaxed), passes: passes.load(ordering: .relaxed),
                errors: errors.load(ordering: .relaxed), stored: stored.load(ordering: .relaxed),
                coalesced: coalesced.load(ordering: .relaxed))
        }
    }

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

        /// hits / (hits + misses); nil before any cacheable request.
        public var hitRatio: Double? {
            hits + misses == 0 ? nil : Double(hits) / Double(hits + misses)
        }

        static func + (a: Snapshot, b: Snapshot) -> Snapshot {
            Snapshot(requests: a.requests + b.requests, hits: a.hits + b.hits, misses: a.misses + b.misses,
                stale: a.stale + b.stale, bypasses: a.bypasses + b.bypasses, passes: a.passes + b.passes,
                errors: a.errors + b.errors, stored: a.stored + b.stored, coalesced: a.coalesced + b.coalesced)
        }
    }

    private let routes = Mutex<[String: Counters]>([:])
    /// The name requests without a route are counted under.
    public static let unmatched = "(unmatched)"

    /// The Prometheus side of these counts, and the store, origin and purge metrics.
    public let metrics: ProxyMetrics

    public init(metrics: ProxyMetrics = ProxyMetrics(store: "memory")) {
        self.metrics = metrics
    }

    /// The counters of a route, created on first use. Handlers keep the result for the request.
    public func counters(route: String?) -> Counters {
        let name = route ?? Self.unmatched
        return routes.withLock { routes in
            if let existing = routes[name] { return existing }
            let created = Counters(metrics: metrics.route(name))
            routes[name] = created
            return created
        }
    }

    /// Records one answered request. In `/metrics` each request has one outcome: `error` when Trove answered
    /// with an error of its own, else its cache outcome; so hits / (hits + misses) is the hit ratio of the
    /// requests that were answered.
    public func record(
        _ counters: Counters, outcome: CacheStatus.Outcome?, stored: Bool, storedBytes: Int = 0, coalesced: Bool = false, error: Bool
    ) {
        counters.requests.add(1, ordering: .relaxed)
        switch outcome {
        case .hit: counters.hits.add(1, ordering: .relaxed)
        case .miss: counters.misses.add(1, ordering: .relaxed)
        case .stale: counters.stale.add(1, ordering: .relaxed)
        case .bypass: counters.bypasses.add(1, ordering: .relaxed)
        case .pass: counters.passes.add(1, ordering: .relaxed)
        case nil: break
        }
        if error { counters.errors.add(1, ordering: .relaxed) }
        if stored { counters.stored.add(1, ordering: .relaxed) }
        if coalesced { counters.coalesced.add(1, ordering: .relaxed) }
        counters.metrics.record(outcome: outcome, error: error, stored: stored, bytes: storedBytes, coalesced: coalesced)
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
