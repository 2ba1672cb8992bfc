internal import TroveHTTP
public import CoreMetrics
internal import Prometheus
internal import Synchronization
internal import TroveCore
internal import TroveRules

/// Trove's Prometheus metrics, served by the admin API's `GET /metrics`: what each route's requests came to,
/// what was stored, how long origins and the store took, purges by source.
///
/// Metrics are made through swift-metrics with a factory of this instance's own (no global bootstrap), backed by
/// its own swift-prometheus registry: several servers in one process (tests) keep their figures apart. Labels
/// are route and origin names from the rules file and fixed words, never anything a client sends, so the
/// number of series is bounded by the rules. Handlers resolve a route's counters once per request (see
/// `ProxyStats`), and the counters themselves are relaxed atomics.
public final class ProxyMetrics: Sendable {
    /// A limit of `limits:` that was reached: a connection refused or closed, a request answered 408/413/503.
    public enum LimitReached: String, Sendable, CaseIterable {
        case maxConnections = "max_connections"
        case headerTimeout = "header_timeout"
        case bodyTimeout = "body_timeout"
        case keepAliveTimeout = "keepalive_timeout"
        case sendTimeout = "send_timeout"
        case maxRequestBody = "max_request_body"
        case maxResponseBody = "max_response_body"
        case requestBodyBudget = "request_body_budget"
        case responseBodyBudget = "response_body_budget"
        case maxHeaderSize = "max_header_size"
        case maxPurge = "max_purge"
        case maxDecodedBody = "max_decoded_body"
    }

    private let registry: PrometheusCollectorRegistry
    private let limits: [LimitReached: CoreMetrics.Counter]
    private let openConnections: CoreMetrics.Gauge
    /// What a paused stream waits for: an answer's origin transfer waits for its client to read, an upload's
    /// client waits (is not read) for the origin to take what it sent.
    enum PausedFor: String, Sendable, CaseIterable {
        case client, origin
    }
    /// Streams paused now on each side, and how long each pause lasted.
    private let paused: [PausedFor: PausedStreams]

    private final class PausedStreams: Sendable {
        let count = Atomic<Int>(0)
        let gauge: CoreMetrics.Gauge
        let durations: CoreMetrics.Timer

        init(_ side: PausedFor, factory: PrometheusMetricsFactory) {
            let dimensions = [("waiting_for", side.rawValue)]
            gauge = CoreMetrics.Gauge(label: "trove_streams_paused", dimensions: dimensions, factory: factory)
            durations = CoreMetrics.Timer(label: "trove_stream_pause_duration_seconds", dimensions: dimensions, factory: factory)
        }
    }
    private let factory: PrometheusMetricsFactory
    /// By source, then hard (`false`) or soft (`true`).
    private let purges: [PurgeSource: [Bool: CoreMetrics.Counter]]
    /// Lookups the full path made (the fast path's, answered from memory in under a microsecond, are counted in
    /// `fastHits` only: timing them would cost as much as the rest of the hit).
    private let storeLookup: CoreMetrics.Timer
    /// Hits answered by the fast path (`HitFastPath`), also counted with every hit in `trove_requests_total`.
    private let fastHits: CoreMetrics.Counter

    func recordFastHit() {
        fastHits.increment()
    }
    private let storeWrite: CoreMetrics.Timer
    private let storeErrors: [String: CoreMetrics.Counter]
    private let origins = Mutex<[String: OriginMetrics]>([:])

    private struct OriginMetrics: Sendable {
        let duration: CoreMetrics.Timer
        let failures: CoreMetrics.Counter
    }

    /// - Parameter store: `redis` or `memory`, the `store` label.
    public init(store: String) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Store round trips are tenths of a millisecond; origins (legacy APIs) up to tens of seconds.
        factory.durationHistogramBuckets["trove_store_duration_seconds"] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .milliseconds(250),
        ]
        factory.durationHistogramBuckets["trove_origin_duration_seconds"] = [
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        self.factory = factory
        var purges: [PurgeSource: [Bool: CoreMetrics.Counter]] = [:]
        for source in PurgeSource.allCases {
            for soft in [false, true] {
                purges[source, default: [:]][soft] = CoreMetrics.Counter(label: "trove_purges_total",
                    dimensions: [("source", source.rawValue), ("mode", soft ? "soft" : "hard")], factory: factory)
            }
        }
        self.purges = purges
        storeLookup = CoreMetrics.Timer(label: "trove_store_duration_seconds", dimensions: [("store", store), ("op", "lookup")], factory: factory)
        fastHits = CoreMetrics.Counter(label: "trove_fast_path_hits_total", factory: factory)
        storeWrite = CoreMetrics.Timer(label: "trove_store_duration_seconds", dimensions: [("store", store), ("op", "store")], factory: factory)
        var storeErrors: [String: CoreMetrics.Counter] = [:]
        for op in ["lookup", "store", "purge"] {
            storeErrors[op] = CoreMetrics.Counter(label: "trove_store_errors_total", dimensions: [("store", store), ("op", op)], factory: factory)
        }
        self.storeErrors = storeErrors
        var limits: [LimitReached: CoreMetrics.Counter] = [:]
        for limit in LimitReached.allCases {
            limits[limit] = CoreMetrics.Counter(label: "trove_limits_reached_total", dimensions: [("limit", limit.rawValue)], factory: factory)
        }
        self.limits = limits
        openConnections = CoreMetrics.Gauge(label: "trove_client_connections", factory: factory)
        paused = Dictionary(uniqueKeysWithValues: PausedFor.allCases.map { ($0, PausedStreams($0, factory: factory)) })
    }

    /// A limit was reached (someone was refused, cut off or answered 408/413/431/503 because of it).
    public func recordLimit(_ limit: LimitReached) {
        limits[limit]?.increment()
    }

    /// A stream paused waiting for `side` (`started`), or went on after `nanoseconds` (see `PauseMeter`).
    func recordPause(_ side: PausedFor, started: Bool, nanoseconds: Int64 = 0) {
        guard let paused = paused[side] else { return }
        let now = started ? paused.count.add(1, ordering: .relaxed).newValue : paused.count.subtract(1, ordering: .relaxed).newValue
        paused.gauge.record(now)
        if !started { paused.durations.recordNanoseconds(nanoseconds) }
    }

    /// Client connections to the proxy open now.
    func recordOpenConnections(_ count: Int) {
        openConnections.record(count)
    }

    /// The counters of `route`.
    func route(_ name: String) -> RouteCounters {
        RouteCounters(route: name, factory: factory)
    }

    func recordLookup(nanoseconds: Int64, failed: Bool) {
        storeLookup.recordNanoseconds(nanoseconds)
        if failed { storeErrors["lookup"]?.increment() }
    }

    func recordStore(nanoseconds: Int64, failed: Bool) {
        storeWrite.recordNanoseconds(nanoseconds)
        if failed { storeErrors["store"]?.increment() }
    }

    /// A purge was made (queued: the store was away and replays it when back), or refused (`limits.max_purge`).
    func record(_ purge: PurgeOutcome) {
        switch purge.result {
        case .applied:
            purges[purge.source]?[purge.purges.soft != nil]?.increment()
        case .queued:
            purges[purge.source]?[purge.purges.soft != nil]?.increment()
            storeErrors["purge"]?.increment()
        case .refused:
            recordLimit(.maxPurge)
        }
    }

    /// An origin request ended, answered (`failed` false, whatever the status) or not (connect error, timeout).
    func recordOrigin(_ origin: String, nanoseconds: Int64, failed: Bool) {
        let metrics = origins.withLock { origins in
            if let existing = origins[origin] { return existing }
            let made = OriginMetrics(
                duration: CoreMetrics.Timer(label: "trove_origin_duration_seconds", dimensions: [("origin", origin)], factory: factory),
                failures: CoreMetrics.Counter(label: "trove_origin_failures_total", dimensions: [("origin", origin)], factory: factory))
            origins[origin] = made
            return made
        }
        metrics.duration.recordNanoseconds(nanoseconds)
        if failed { metrics.failures.increment() }
    }

    private let shadow = Mutex<[String: [ShadowReport.Outcome: CoreMetrics.Counter]]>([:])

    /// A request on a route in shadow came to `outcome` (`trove_shadow_answers_total{route, outcome}`): would-be
    /// hits, stale answers, misses, and answers that could not be compared.
    func recordShadow(route: String, outcome: ShadowReport.Outcome) {
        let counter = shadow.withLock { shadow in
            if let made = shadow[route] { return made[outcome]! }
            var made: [ShadowReport.Outcome: CoreMetrics.Counter] = [:]
            for each in ShadowReport.Outcome.allCases {
                made[each] = CoreMetrics.Counter(label: "trove_shadow_answers_total", dimensions: [("route", route), ("outcome", each.rawValue)],
                    factory: factory)
            }
            shadow[route] = made
            return made[outcome]!
        }
        counter.increment()
    }

    /// The factory behind these metrics, for parts outside the server that report their own (the Redis
    /// connections' `RedisMetrics`).
    public var metricsFactory: any MetricsFactory { factory }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
