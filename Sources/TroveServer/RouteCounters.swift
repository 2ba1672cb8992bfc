internal import CoreMetrics
internal import Synchronization
internal import TroveCore

/// One route's counts (or those of requests no route matched), kept once for both views: the relaxed atomics
/// `/stats` reads, and the Prometheus counters `/metrics` exposes. `record` is the one place an answered
/// request is counted.
///
/// The two views differ in one way, on purpose: `/stats` counts a request Trove answered with an error both
/// under its cache outcome and under `errors`; `/metrics` gives each request one `outcome` label, `error` first,
/// so that its outcomes add up to its requests.
public final class RouteCounters: Sendable {
    /// A count as `/stats` reads it, with the metric that counts the same thing.
    final class Tally: Sendable {
        let count = Atomic<Int>(0)
        let metric: CoreMetrics.Counter

        init(_ metric: CoreMetrics.Counter) {
            self.metric = metric
        }

        func add(_ amount: Int = 1) {
            count.add(amount, ordering: .relaxed)
            metric.increment(by: amount)
        }

        var value: Int { count.load(ordering: .relaxed) }
    }

    let requests = Atomic<Int>(0)
    let hits, misses, stale, bypasses, passes: Tally
    /// Answers Trove made itself because of an error (origin unreachable or too slow, bad request).
    let errors: Tally
    /// `/metrics` only: requests answered without a cache outcome (rejected requests, answers Trove made before
    /// a route's cache was consulted).
    let other: CoreMetrics.Counter
    let stored: Tally
    let storedBytes: CoreMetrics.Counter
    /// Requests answered from another request's fetch, which they waited for.
    let coalesced: Tally
    /// Hits served from this process's memory (the memory store, or the in-process tier in front of Redis): the
    /// rest of `hits` came from Redis.
    let localHits: Tally

    init(route: String, factory: any MetricsFactory) {
        func outcome(_ name: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: "trove_requests_total", dimensions: [("route", route), ("outcome", name)], factory: factory)
        }
        hits = Tally(outcome("hit"))
        misses = Tally(outcome("miss"))
        stale = Tally(outcome("stale"))
        bypasses = Tally(outcome("bypass"))
        passes = Tally(outcome("pass"))
        errors = Tally(outcome("error"))
        other = outcome("other")
        stored = Tally(CoreMetrics.Counter(label: "trove_entries_stored_total", dimensions: [("route", route)], factory: factory))
        storedBytes = CoreMetrics.Counter(label: "trove_stored_bytes_total", dimensions: [("route", route)], factory: factory)
        coalesced = Tally(CoreMetrics.Counter(label: "trove_coalesced_total", dimensions: [("route", route)], factory: factory))
        localHits = Tally(CoreMetrics.Counter(label: "trove_local_hits_total", dimensions: [("route", route)], factory: factory))
    }

    /// Counts one answered request.
    func record(
        outcome: CacheStatus.Outcome?, stored isStored: Bool, storedBytes bytes: Int, coalesced isCoalesced: Bool, error: Bool, local: Bool = false
    ) {
        requests.add(1, ordering: .relaxed)
        let tally: Tally? = switch outcome {
        case .hit: hits
        case .miss: misses
        case .stale: stale
        case .bypass: bypasses
        case .pass: passes
        case nil: nil
        }
        if error {
            tally?.count.add(1, ordering: .relaxed)
            errors.add()
        } else if let tally {
            tally.add()
        } else {
            other.increment()
        }
        if isStored {
            stored.add()
            storedBytes.increment(by: bytes)
        }
        if isCoalesced { coalesced.add() }
        if local, outcome == .hit, !error { localHits.add() }
    }

    public var snapshot: ProxyStats.Snapshot {
        ProxyStats.Snapshot(
            requests: requests.load(ordering: .relaxed), hits: hits.value, misses: misses.value, stale: stale.value,
            bypasses: bypasses.value, passes: passes.value, errors: errors.value, stored: stored.value,
            coalesced: coalesced.value, localHits: localHits.value)
    }
}
