import TroveHTTP
import Foundation
import Histogram
import Testing
import TroveLoadTest

/// The report a person reads: the table, the Markdown, the HTML and its plot.
struct ReportTests {
    static func report() throws -> Report {
        let scenario = try Scenario.load(try ScenarioTests.file("""
            name: sample
            rules: r.yaml
            load: {mode: rate, rate: 10/s, duration: 10s, warmup: 2s}
            requests: [{get: /a}]
            """))
        var before = RunResult()
        var after = RunResult()
        for index in 0..<100 {
            _ = before.latency.record(200_000 + UInt64(index) * 1000)  // 200-299 ms
            _ = after.latency.record(index < 90 ? 1000 : 200_000)  // 90 % at 1 ms
        }
        before.successLatency = before.latency
        after.successLatency = after.latency
        before.answered = 100
        after.answered = 100
        before.statuses = [200: 100]
        after.statuses = [200: 100]
        after.xCache = ["HIT": 90, "MISS": 10]
        before.seconds = 10
        after.seconds = 10
        return Report(
            scenario: scenario,
            sides: [
                Side(name: "before (origin)", result: before, origin: OriginCounts(total: 100, statuses: ["200": 100], maxInFlight: 3)),
                Side(name: "after (Trove)", result: after, origin: OriginCounts(total: 10, statuses: ["200": 10], maxInFlight: 1)),
            ],
            provenance: Provenance(command: "trove-loadtest run sample.yaml", date: Date(timeIntervalSince1970: 0),
                machine: "2 cpus", loadBefore: "0.10 0.20 0.30", loadAfter: "1.00 0.50 0.40"))
    }

    @Test func theTableComparesBothSides() throws {
        let table = try Self.report().terminalTable()
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("sample: 10 requests/s"))
        #expect(lines[1].contains("before (origin)") && lines[1].contains("after (Trove)"))
        let p50 = try #require(lines.first { $0.hasPrefix("latency p50") })
        #expect(p50.contains("249."), "the 50th of 200…299 ms, within the histogram's 3 digits: \(p50)")
        #expect(p50.contains("1.00 ms"))
        #expect(p50.contains("faster"))
        #expect(lines.contains { $0.hasPrefix("hit ratio (X-Cache)") && $0.contains("90.0 %") })
        #expect(lines.contains { $0.hasPrefix("origin served") && $0.contains("100") && $0.contains("10× fewer") })
        #expect(lines.contains { $0.hasPrefix("requests/s") && $0.hasSuffix("same") })
        #expect(!lines.contains { $0.hasPrefix("2xx/3xx latency") }, "no separate success latency when every answer succeeded")
    }

    @Test func markdownAndHTMLCarryTheTableThePlotAndWhereItRan() throws {
        let report = try Self.report()
        let markdown = report.markdown(plotFile: "sample.svg")
        #expect(markdown.contains("| | before (origin) | after (Trove) | |"))
        #expect(markdown.contains("![Latency by percentile, before and after](sample.svg)"))
        #expect(markdown.contains("Command: `trove-loadtest run sample.yaml`"))
        #expect(markdown.contains("load average 0.10 0.20 0.30 before, 1.00 0.50 0.40 after"))
        let html = report.html()
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.contains("<svg"))
        #expect(html.contains("<th>after (Trove)</th>"))
        let svg = report.plotSVG()
        #expect(svg.components(separatedBy: "<polyline").count == 3, "one curve per side")
        #expect(svg.contains(">1 ms<") && svg.contains(">1 s<"), "decades from 1 ms to 1 s on the latency axis")
        #expect(svg.contains("99.9%"))
    }

    @Test func theRawFormatsAreReadable() throws {
        let report = try Self.report()
        let json = try #require(try JSONSerialization.jsonObject(with: report.json()) as? [String: Any])
        let sides = try #require(json["sides"] as? [[String: Any]])
        #expect(sides.count == 2)
        #expect(sides[1]["origin_served"] as? Int == 10)
        #expect((sides[1]["hit_ratio"] as? Double).map { abs($0 - 0.9) < 0.001 } == true)
        let hgrm = Report.hgrm(report.sides[0].result.latency)
        #expect(hgrm.contains("Value"))
        #expect(hgrm.contains("#[Max"))
    }

    @Test func errorsGetTheirOwnRowsAndSuccessLatency() throws {
        var report = try Self.report()
        report.sides[0].result.statuses = [200: 10, 429: 90]
        report.sides[0].result.successLatency.reset()
        for _ in 0..<10 { _ = report.sides[0].result.successLatency.record(2_500_000) }
        let lines = report.terminalTable().split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("429 Too Many Requests") && $0.contains("90") })
        #expect(lines.contains { $0.hasPrefix("2xx/3xx latency p50") && $0.contains("2500 ms") })
    }
}
