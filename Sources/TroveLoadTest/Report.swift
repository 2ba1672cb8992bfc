internal import TroveHTTP
public import Foundation
public import Histogram

/// One side of a comparison: the same scenario sent straight at the origin (before) or through Trove (after).
public struct Side: Sendable {
    public var name: String
    public var result: RunResult
    /// What the origin served for the measured requests (its own count).
    public var origin: OriginCounts
    /// Trove's counters, on the side that went through Trove.
    public var trove: TroveCounts?
    /// Seconds at which Redis was killed and restarted, when the scenario did so.
    public var chaos: [String] = []

    public init(name: String, result: RunResult, origin: OriginCounts, trove: TroveCounts? = nil, chaos: [String] = []) {
        self.name = name
        self.result = result
        self.origin = origin
        self.trove = trove
        self.chaos = chaos
    }
}

/// Where and how a comparison was measured, so a reader can tell what the figures mean.
public struct Provenance: Sendable {
    public var command: String
    public var date: Date
    public var machine: String
    public var loadBefore: String
    public var loadAfter: String

    public init(command: String, date: Date, machine: String, loadBefore: String, loadAfter: String) {
        self.command = command
        self.date = date
        self.machine = machine
        self.loadBefore = loadBefore
        self.loadAfter = loadAfter
    }

    public static func machineDescription() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var model = "?"
        if let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }), let colon = line.firstIndex(of: ":") {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var memory = "?"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        if let line = meminfo.split(separator: "\n").first, let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            memory = String(format: "%.0f GiB", kilobytes / 1_048_576)
        }
        var system = utsname()
        uname(&system)
        let release = withUnsafeBytes(of: &system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(ProcessInfo.processInfo.activeProcessorCount) cpus (\(model)), \(memory), Linux \(release)"
    }

    /// The 1, 5 and 15 minute load averages.
    public static func load() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}

/// Renders a before/after comparison: a table for the terminal, and Markdown and HTML reports with the
/// latency-percentile curves of both sides as an SVG plot.
public struct Report: Sendable {
    public var scenario: Scenario
    public var sides: [Side]
    public var provenance: Provenance

    public init(scenario: Scenario, sides: [Side], provenance: Provenance) {
        self.scenario = scenario
        self.sides = sides
        self.provenance = provenance
    }

    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    /// Rows of the comparison: label, one cell per side, and a verdict comparing the last side with the first.
    func rows() -> [(String, [String], String)] {
        var rows: [(String, [String], String)] = []
        func row(_ label: String, _ values: [String], _ verdict: String = "") { rows.append((label, values, verdict)) }
        let first = sides.first!
        let last = sides.last!
        row("requests/s", sides.map { String(format: "%.1f", $0.result.requestsPerSecond) },
            ratio(last.result.requestsPerSecond, first.result.requestsPerSecond, higherIsBetter: true))
        for (label, percentile) in Self.percentiles {
            let values = sides.map { Self.milliseconds($0.result.latency.valueAtPercentile(percentile)) }
            row("latency \(label)", values.map(Self.format(ms:)), ratio(values.last!, values.first!, higherIsBetter: false))
        }
        let maxima = sides.map { Self.milliseconds($0.result.latency.max) }
        row("latency max", maxima.map(Self.format(ms:)), ratio(maxima.last!, maxima.first!, higherIsBetter: false))
        // When some answers were errors (a fast 429 or 503), the latency of the useful answers tells more.
        if sides.contains(where: { $0.result.successLatency.totalCount < UInt64($0.result.answered) }) {
            for (label, percentile) in [("p50", 50.0), ("p99", 99.0)] {
                let values = sides.map { Self.milliseconds($0.result.successLatency.valueAtPercentile(percentile)) }
                row("2xx/3xx latency \(label)", values.map(Self.format(ms:)), ratio(values.last!, values.first!, higherIsBetter: false))
            }
        }
        row("answered", sides.map { "\($0.result.answered)" })
        row("no answer", sides.map { side in
            side.result.failed == 0 ? "0" : "\(side.result.failed) (" + side.result.failures.sorted { $0.value > $1.value }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        })
        if sides.contains(where: { !$0.result.connectErrors.isEmpty }) {
            row("connections refused or failed", sides.map { "\($0.result.connectErrors.values.reduce(0, +))" })
        }
        row("2xx / 3xx", sides.map { "\(Self.count($0.result.statuses, 200..<400))" })
        row("429 Too Many Requests", sides.map { "\($0.result.statuses[429] ?? 0)" })
        row("other 4xx", sides.map { "\(Self.count($0.result.statuses, 400..<500) - ($0.result.statuses[429] ?? 0))" })
        row("5xx", sides.map { "\(Self.count($0.result.statuses, 500..<600))" })
        row("hit ratio (X-Cache)", sides.map { side in side.result.hitRatio.map { String(format: "%.1f %%", $0 * 100) } ?? "–" })
        row("origin served", sides.map { "\($0.origin.total)" },
            last.origin.total > 0 && first.origin.total > last.origin.total
                ? String(format: "%.0f× fewer", Double(first.origin.total) / Double(last.origin.total)) : "")
        row("origin answered 429", sides.map { "\($0.origin.statuses["429"] ?? 0)" })
        return rows
    }

    private func ratio(_ after: Double, _ before: Double, higherIsBetter: Bool) -> String {
        guard sides.count > 1, after > 0, before > 0 else { return "" }
        let factor = higherIsBetter ? after / before : before / after
        if abs(factor - 1) < 0.01 { return "same" }
        let text = factor >= 10 ? String(format: "%.0f×", factor) : String(format: "%.2f×", factor)
        return factor >= 1 ? "\(text) \(higherIsBetter ? "more" : "faster")" : "\(String(format: "%.2f×", 1 / factor)) \(higherIsBetter ? "less" : "slower")"
    }

    static func count(_ statuses: [Int: Int], _ range: Range<Int>) -> Int {
        statuses.filter { range.contains($0.key) }.values.reduce(0, +)
    }

    static func milliseconds(_ micros: UInt64) -> Double { Double(micros) / 1000 }

    static func format(ms: Double) -> String {
        switch ms {
        case ..<10: String(format: "%.2f ms", ms)
        case ..<1000: String(format: "%.1f ms", ms)
        default: String(format: "%.0f ms", ms)
        }
    }

    var loadDescription: String {
        let load = scenario.load
        let shape = load.mode == .rate
            ? String(format: "%g requests/s (open loop: latency counts from when each request was due)", load.rate)
            : "closed loop, \(load.connections) connections each sending as fast as answers come"
        return "\(shape), \(Self.seconds(load.duration)) measured after \(Self.seconds(load.warmup)) of warm-up, "
            + "at most \(load.connections) connections; store: \(scenario.store.rawValue)"
    }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.nanoseconds) / 1e9
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }

    // MARK: Terminal

    public func terminalTable() -> String {
        let headers = [""] + sides.map(\.name) + (sides.count > 1 ? [""] : [])
        let body = rows().map { [$0.0] + $0.1 + (sides.count > 1 ? [$0.2] : []) }
        let widths = (0..<headers.count).map { column in ([headers] + body).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 || index == cells.count - 1 && sides.count > 1
                    ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "   ")
        }
        var lines = ["\(scenario.name): \(loadDescription)", line(headers)]
        lines += body.map(line)
        return lines.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }.joined(separator: "\n")
    }

    // MARK: Markdown

    public func markdown(plotFile: String) -> String {
        var text = """
            # Load test: \(scenario.name)

            \(loadDescription).

            | | \(sides.map(\.name).joined(separator: " | ")) | |
            |---|\(sides.map { _ in "---:|" }.joined())---|

            """
        for (label, values, verdict) in rows() {
            text += "| \(label) | \(values.joined(separator: " | ")) | \(verdict) |\n"
        }
        text += "\n![Latency by percentile, before and after](\(plotFile))\n\n"
        text += routeTable()
        text += chaosNotes()
        text += timelineTable()
        text += """

            - Scenario: `\(Self.relative(scenario.file))`, rules: `\(Self.relative(scenario.rules))`; the demo origin \
            answers in \(Stack.delayText(scenario.origin))\(scenario.origin.rate.map { String(format: ", limited to %g requests/s (bucket of \(scenario.origin.burst)), 429 beyond", $0) } ?? "").
            - Command: `\(provenance.command)`
            - Machine: \(provenance.machine); load average \(provenance.loadBefore) before, \(provenance.loadAfter) after. \
            The load generator, the origin\(scenario.store.usesRedis ? ", Redis" : "") and Trove share these cores.
            - Date: \(ISO8601DateFormatter().string(from: provenance.date))
            - Latency: HDR histograms (hdrhistogram-swift), µs resolution; raw distributions in the `.hgrm` files next to this report.

            """
        return text
    }

    private func routeTable() -> String {
        guard let trove = sides.last?.trove, !trove.routes.isEmpty else { return "" }
        var text = "Trove's own counters per route (`GET /stats` on the admin API, warm-up included):\n\n"
        text += "| route | requests | hits | stale | misses | passes | collapsed | errors | hit ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (route, counts) in trove.routes.sorted(by: { $0.value["requests", default: 0] > $1.value["requests", default: 0] }) {
            let hits = counts["hits", default: 0] + counts["stale", default: 0]
            let lookups = hits + counts["misses", default: 0]
            let ratio = lookups == 0 ? "–" : String(format: "%.1f %%", Double(hits) * 100 / Double(lookups))
            text += "| \(route) | \(counts["requests", default: 0]) | \(counts["hits", default: 0]) | \(counts["stale", default: 0]) | "
                + "\(counts["misses", default: 0]) | \(counts["passes", default: 0]) | \(counts["collapsed", default: 0]) | "
                + "\(counts["errors", default: 0]) | \(ratio) |\n"
        }
        return text
    }

    /// Second by second, for a run with chaos: the requests due in each second, how many failed, their p99, and
    /// the hit ratio. A failover reads down this table.
    private func timelineTable() -> String {
        guard let side = sides.last, !side.chaos.isEmpty, !side.result.timeline.isEmpty else { return "" }
        var text = "\nSecond by second (\(side.name), requests by the second they were due):\n\n"
        text += "| second | answered | errors | p50 | p99 | hit ratio |\n|---:|---:|---:|---:|---:|---:|\n"
        for (index, second) in side.result.timeline.enumerated() {
            let ratio = second.hitRatio.map { String(format: "%.0f %%", $0 * 100) } ?? "–"
            func latency(_ percentile: Double) -> String {
                second.answered == 0 ? "–" : Self.format(ms: Self.milliseconds(second.latency.valueAtPercentile(percentile)))
            }
            text += "| \(index)–\(index + 1) | \(second.answered) | \(second.errors) | \(latency(50)) | \(latency(99)) | \(ratio) |\n"
        }
        return text
    }

    private func chaosNotes() -> String {
        let notes = sides.flatMap { side in side.chaos.map { "- \(side.name): \($0)" } }
        return notes.isEmpty ? "" : "\nChaos during the run:\n\n" + notes.joined(separator: "\n") + "\n"
    }

    static func relative(_ path: String) -> String {
        let current = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(current) ? String(path.dropFirst(current.count)) : path
    }

    // MARK: HTML and the plot

    public func html() -> String {
        let table = rows().map { label, values, verdict in
            "<tr><th>\(Self.escape(label))</th>" + values.map { "<td>\(Self.escape($0))</td>" }.joined() + "<td class=v>\(Self.escape(verdict))</td></tr>"
        }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Load test: \(Self.escape(scenario.name))</title>
            <style>
            body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; }
            th, td { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: right; }
            th:first-child { text-align: left; font-weight: normal; }
            thead th { font-weight: bold; }
            td.v { text-align: left; color: #1a7f37; }
            .meta { color: #555; font-size: 13px; }
            </style></head><body>
            <h1>Load test: \(Self.escape(scenario.name))</h1>
            <p>\(Self.escape(loadDescription)).</p>
            \(plotSVG())
            <table><thead><tr><th></th>\(sides.map { "<th>\(Self.escape($0.name))</th>" }.joined())<th></th></tr></thead>
            \(table)
            </table>
            <p class=meta>Command: <code>\(Self.escape(provenance.command))</code><br>
            Machine: \(Self.escape(provenance.machine)); load average \(Self.escape(provenance.loadBefore)) before, \(Self.escape(provenance.loadAfter)) after.<br>
            Date: \(ISO8601DateFormatter().string(from: provenance.date))</p>
            </body></html>

            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Latency (log scale) against percentile (the usual HdrHistogram x axis: 0, 90, 99, 99.9, 99.99 evenly
    /// spaced), one line per side.
    public func plotSVG() -> String {
        let width = 760.0
        // The legend sits between the title and the plot, one line per side, clear of the curves.
        let top = 36.0 + 18.0 * Double(sides.count)
        let height = 350.0 + top
        let left = 70.0, right = 20.0, bottom = 50.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let maxX = 4.0  // 99.99th percentile
        let colors = ["#c0392b", "#2471a3", "#27ae60", "#8e44ad"]
        // x = log10(1 / (1 - p)); points every 0.05 up to 99.99 %, then the maximum.
        let curves: [[(Double, Double)]] = sides.map { side in
            guard side.result.latency.totalCount > 0 else { return [] }
            var points = stride(from: 0.0, through: maxX, by: 0.05).map { x -> (Double, Double) in
                let percentile = (1 - pow(10, -x)) * 100
                return (x, max(0.001, Self.milliseconds(side.result.latency.valueAtPercentile(percentile))))
            }
            points.append((maxX, max(0.001, Self.milliseconds(side.result.latency.max))))
            return points
        }
        let values = curves.flatMap { $0.map(\.1) }
        let low = pow(10, floor(log10(values.min() ?? 0.1)))
        let high = pow(10, ceil(log10(max(values.max() ?? 1, low * 10))))
        func px(_ x: Double) -> Double { left + x / maxX * plotWidth }
        func py(_ ms: Double) -> Double { top + plotHeight - (log10(ms) - log10(low)) / (log10(high) - log10(low)) * plotHeight }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(left)\" y=\"18\" font-size=\"14\">Latency by percentile: \(Self.escape(scenario.name)) (log scale)</text>\n"
        // Horizontal grid: one line per power of ten.
        var decade = low
        while decade <= high * 1.0001 {
            let y = py(decade)
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(Self.decadeLabel(decade))</text>\n"
            decade *= 10
        }
        for (x, label) in [(0.0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%")] {
            let position = px(x)
            svg += "<line x1=\"\(position)\" x2=\"\(position)\" y1=\"\(top)\" y2=\"\(top + plotHeight)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(position)\" y=\"\(top + plotHeight + 18)\" text-anchor=\"middle\">\(label)</text>\n"
        }
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\">percentile</text>\n"
        for (index, curve) in curves.enumerated() where !curve.isEmpty {
            let path = curve.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            let color = colors[index % colors.count]
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            let legendY = 40 + Double(index) * 18
            svg += "<line x1=\"\(left + 12)\" x2=\"\(left + 36)\" y1=\"\(legendY - 4)\" y2=\"\(legendY - 4)\" stroke=\"\(color)\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(left + 42)\" y=\"\(legendY)\">\(Self.escape(sides[index].name)): p50 \(Self.format(ms: Self.milliseconds(sides[index].result.latency.valueAtPercentile(50)))), p99 \(Self.format(ms: Self.milliseconds(sides[index].result.latency.valueAtPercentile(99))))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// 0.01 ms, 0.1 ms, 1 ms, 10 ms, 100 ms, 1 s, 10 s, 100 s.
    static func decadeLabel(_ milliseconds: Double) -> String {
        if milliseconds >= 1000 { return "\(Int((milliseconds / 1000).rounded())) s" }
        if milliseconds >= 1 { return "\(Int(milliseconds.rounded())) ms" }
        return String(format: "%g ms", milliseconds)
    }

    /// A side's latency distribution in HdrHistogram's percentile format, in milliseconds.
    public static func hgrm(_ histogram: Histogram<UInt64>) -> String {
        var text = ""
        histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
        return text
    }

    /// The figures as JSON, for tools that compare runs.
    public func json() -> Data {
        let document: [String: Any] = [
            "scenario": scenario.name,
            "command": provenance.command,
            "date": ISO8601DateFormatter().string(from: provenance.date),
            "machine": provenance.machine,
            "load_average": ["before": provenance.loadBefore, "after": provenance.loadAfter],
            "sides": sides.map { side -> [String: Any] in
                var fields: [String: Any] = [
                    "name": side.name,
                    "requests_per_second": side.result.requestsPerSecond,
                    "answered": side.result.answered,
                    "no_answer": side.result.failures,
                    "statuses": Dictionary(uniqueKeysWithValues: side.result.statuses.map { (String($0.key), $0.value) }),
                    "x_cache": side.result.xCache,
                    "latency_ms": Dictionary(uniqueKeysWithValues: (Self.percentiles + [("p100", 100)]).map {
                        ($0.0, Self.milliseconds(side.result.latency.valueAtPercentile($0.1)))
                    }),
                    "origin_served": side.origin.total,
                    "origin_statuses": side.origin.statuses,
                ]
                if let ratio = side.result.hitRatio { fields["hit_ratio"] = ratio }
                if !side.chaos.isEmpty {
                    fields["chaos"] = side.chaos
                    fields["timeline"] = side.result.timeline.enumerated().map { index, second -> [String: Any] in
                        var row: [String: Any] = [
                            "second": index, "answered": second.answered, "errors": second.errors,
                            "p50_ms": Self.milliseconds(second.latency.valueAtPercentile(50)),
                            "p99_ms": Self.milliseconds(second.latency.valueAtPercentile(99)),
                        ]
                        if let ratio = second.hitRatio { row["hit_ratio"] = ratio }
                        return row
                    }
                }
                return fields
            },
        ]
        return (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}
