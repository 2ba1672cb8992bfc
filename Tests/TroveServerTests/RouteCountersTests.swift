import Testing
import TroveCore
@testable import TroveServer

/// One `record` keeps both views of a route's counts: `/stats` counts an error under its outcome and under
/// errors; `/metrics` gives each request one outcome label, error first.
@Suite struct RouteCountersTests {
    @Test func oneRecordBothViews() {
        let metrics = ProxyMetrics(store: "memory")
        let counters = metrics.route("event")
        counters.record(outcome: .hit, stored: false, storedBytes: 0, coalesced: true, error: false)
        counters.record(outcome: .miss, stored: true, storedBytes: 512, coalesced: false, error: false)
        counters.record(outcome: .miss, stored: false, storedBytes: 0, coalesced: false, error: true)
        counters.record(outcome: nil, stored: false, storedBytes: 0, coalesced: false, error: false)

        let stats = counters.snapshot
        #expect(stats.requests == 4)
        #expect(stats.hits == 1)
        #expect(stats.misses == 2)
        #expect(stats.errors == 1)
        #expect(stats.stored == 1)
        #expect(stats.coalesced == 1)

        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        func value(_ series: String) -> Double? {
            exposition.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect(value(#"trove_requests_total{route="event",outcome="hit"}"#) == 1)
        #expect(value(#"trove_requests_total{route="event",outcome="miss"}"#) == 1)
        #expect(value(#"trove_requests_total{route="event",outcome="error"}"#) == 1)
        #expect(value(#"trove_requests_total{route="event",outcome="other"}"#) == 1)
        #expect(value(#"trove_stored_bytes_total{route="event"}"#) == 512)
        #expect(value(#"trove_coalesced_total{route="event"}"#) == 1)
    }
}
