internal import ArgumentParser
internal import Foundation
internal import TroveCore

/// `trove shadow`: reads a running Trove's shadow report (`GET /shadow`) and prints it for a person: per route what
/// it would have done, then, for each route that would have served stale answers, the cause, the fix and the
/// evidence.
struct ShadowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shadow",
        abstract: "Show what the routes in shadow would have served, and why some answers would have been stale.",
        discussion: """
            Routes run in shadow with cache.shadow in the rules, or all of them with `trove serve --shadow`: clients \
            get the origin's answers while Trove looks up, stores, purges and compares. See docs/shadow.md.

            Examples:
              trove shadow --admin http://127.0.0.1:9090
              trove shadow -c rules/events.yaml --json
              trove shadow --reset          # start counting again, after changing the rules
            The token is read from $TROVE_ADMIN_TOKEN (or --token-env).
            """
    )

    @OptionGroup var location: AdminOptions

    @Flag(help: "Print the admin API's JSON answer as it is.")
    var json = false

    @Flag(help: "Forget what was counted so far (DELETE /shadow).")
    var reset = false

    func run() async throws {
        guard let client = location.client(for: "shadow") else { throw ExitCode.failure }
        guard let (status, text) = await client.send(reset ? "DELETE" : "GET", "/shadow") else { throw ExitCode.failure }
        guard status == 200 else {
            FileHandle.standardError.write(Data("trove shadow: the admin API answered \(status): \(text)".utf8))
            throw ExitCode.failure
        }
        if reset {
            print("shadow report reset: counting starts again now")
        } else if json {
            print(text, terminator: "")
        } else {
            guard let summary = try? JSONDecoder().decode(ShadowSummary.self, from: Data(text.utf8)) else {
                FileHandle.standardError.write(Data("trove shadow: the answer is not a shadow report (an older Trove?):\n\(text)".utf8))
                throw ExitCode.failure
            }
            print(Self.render(summary))
        }
    }

    /// The report as a person reads it: a table of routes, then each diagnosis.
    static func render(_ summary: ShadowSummary) -> String {
        guard !summary.routes.isEmpty else {
            return "no route runs in shadow: add cache.shadow: true to a route, or start `trove serve --shadow`"
        }
        let period = ShadowDiagnosis.duration(summary.now - summary.since)
        var lines = ["shadow report: the last \(period), \(summary.writesSeen) writes seen", ""]
        let header = ["route", "match", "would-be hits", "stale", "misses", "hit ratio", "not compared"]
        var rows = [header]
        for route in summary.routes {
            let counts = route.counts
            let notCompared = counts.notCompared.values.reduce(0, +)
            rows.append([route.name, route.match, "\(counts.hits + counts.stale)", "\(counts.stale)", "\(counts.misses)",
                         String(format: "%.0f%%", route.hitRatio * 100), notCompared == 0 ? "-" : "\(notCompared)"])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { column, cell in
                column < 2 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  "))
        }
        let stale = summary.routes.filter { $0.diagnosis != nil }
        if stale.isEmpty {
            lines += ["", "no stale answers: every would-be hit matched what the origin answered"]
        }
        for route in stale {
            guard let diagnosis = route.diagnosis else { continue }
            lines += ["", "\(route.name): \(route.counts.stale) stale of \(route.counts.hits + route.counts.stale) would-be hits (\(diagnosis.kind.rawValue))",
                      "  cause     \(diagnosis.explanation)", "  fix       \(diagnosis.suggestion)"]
            for (offset, item) in diagnosis.evidence.enumerated() { lines.append((offset == 0 ? "  evidence  " : "            ") + item) }
        }
        for route in summary.routes where !route.counts.notCompared.isEmpty {
            let reasons = route.counts.notCompared.sorted { $0.value > $1.value }.map { "\($0.key) (\($0.value))" }
            lines.append("")
            lines.append("\(route.name): not compared: \(reasons.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}
