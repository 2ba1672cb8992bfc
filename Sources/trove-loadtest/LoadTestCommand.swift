import ArgumentParser
import Foundation
import TroveLoadTest

/// `trove-loadtest`: before/after load tests of Trove in front of the demo origin.
@main
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trove-loadtest",
        abstract: "Measure an API before (straight at the origin) and after (through Trove), side by side.",
        discussion: """
            A scenario (loadtest/scenarios/*.yaml) names a rules file, how the demo origin behaves (delay, rate \
            limit), the requests to send and their mix, and the load. The tool starts the demo origin, sends the \
            scenario straight at it, then starts `trove serve` (and redis-server when the scenario says \
            store: redis) in front of it and sends the same requests again, and reports both side by side.

            Examples:
              trove-loadtest run loadtest/scenarios/shopify-events.yaml
              trove-loadtest run loadtest/scenarios/*.yaml --duration 10s
              trove-loadtest run loadtest/scenarios/django-catalog.yaml --only after --rate 500/s
              trove-loadtest check loadtest/scenarios/*.yaml
            """,
        subcommands: [Run.self, Check.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run scenarios before and after Trove; print a table and write Markdown, HTML, SVG and JSON reports.")

    @Argument(help: ArgumentHelp("Scenario files.", valueName: "scenario.yaml"))
    var scenarios: [String]

    @Option(help: ArgumentHelp("Measure this long instead of the scenario's duration.", valueName: "duration"))
    var duration: String?

    @Option(help: ArgumentHelp("Warm up this long instead of the scenario's warm-up.", valueName: "duration"))
    var warmup: String?

    @Option(help: ArgumentHelp("Send this many requests per second (rate mode) instead of the scenario's rate.", valueName: "N/s"))
    var rate: String?

    @Option(help: ArgumentHelp("Use this many connections instead of the scenario's.", valueName: "N"))
    var connections: Int?

    @Option(help: ArgumentHelp("Measure only one side: before (the origin alone) or after (through Trove).", valueName: "side"))
    var only: String?

    @Option(help: "Seed of the request mix; the same seed sends the same requests in the same order.")
    var seed: UInt64 = 42

    @Option(help: ArgumentHelp("Where the reports go.", valueName: "directory"))
    var out: String = "loadtest/results"

    @Option(help: ArgumentHelp("The trove executable (default: the one next to this tool).", valueName: "path"))
    var trove: String?

    func validate() throws {
        for (name, value) in [("--duration", duration), ("--warmup", warmup)] {
            if let value, Scenario.duration(value) == nil { throw ValidationError("\(name) '\(value)' is not a duration such as 30s or 2m") }
        }
        if let rate, Scenario.rate(rate) == nil { throw ValidationError("--rate '\(rate)' is not a rate such as 200/s") }
        if let only, LoadTest.SideKind(rawValue: only) == nil { throw ValidationError("--only: say before or after") }
        if let connections, connections < 1 { throw ValidationError("--connections must be at least 1") }
    }

    func run() async throws {
        var loaded: [Scenario] = []
        for path in scenarios {
            do {
                var scenario = try Scenario.load(path)
                if let duration { scenario.load.duration = Scenario.duration(duration)! }
                if let warmup { scenario.load.warmup = Scenario.duration(warmup)! }
                if let rate { scenario.load.rate = Scenario.rate(rate)! }
                if let connections { scenario.load.connections = connections }
                loaded.append(scenario)
            } catch {
                print("trove-loadtest: \(error)")
                throw ExitCode.failure
            }
        }
        let handlers = Interruption.install()
        defer { handlers.forEach { $0.cancel() } }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let terminal = isatty(2) == 1
        var failures = 0
        for scenario in loaded {
            let logs = FileManager.default.temporaryDirectory.appendingPathComponent("trove-loadtest/\(scenario.name)").path
            let options = LoadTest.Options(
                trove: trove, seed: seed,
                sides: only.flatMap(LoadTest.SideKind.init(rawValue:)).map { [$0] } ?? scenario.sides.compactMap(LoadTest.SideKind.init(rawValue:)),
                workDirectory: logs)
            let loadBefore = Provenance.load()
            let progress = ProgressLine(terminal: terminal)
            let sides: [Side]
            do {
                sides = try await LoadTest.run(scenario, options: options) { event in progress.show(event) }
            } catch {
                progress.finish()
                FileHandle.standardError.write(Data("trove-loadtest: \(scenario.name): \(error)\n  logs: \(logs)\n".utf8))
                failures += 1
                continue
            }
            progress.finish()
            let provenance = Provenance(
                command: Self.commandLine(), date: Date(), machine: Provenance.machineDescription(), loadBefore: loadBefore,
                loadAfter: Provenance.load())
            let report = Report(scenario: scenario, sides: sides, provenance: provenance)
            print("\n" + report.terminalTable() + "\n")
            let base = "\(out)/\(scenario.name)"
            try report.markdown(plotFile: "\(scenario.name).svg").write(toFile: base + ".md", atomically: true, encoding: .utf8)
            try report.plotSVG().write(toFile: base + ".svg", atomically: true, encoding: .utf8)
            try report.html().write(toFile: base + ".html", atomically: true, encoding: .utf8)
            try report.json().write(to: URL(fileURLWithPath: base + ".json"))
            for side in sides {
                let suffix = side.name.hasPrefix("before") ? "before" : "after"
                try Report.hgrm(side.result.latency).write(toFile: "\(base)-\(suffix).hgrm", atomically: true, encoding: .utf8)
            }
            print("report: \(base).md, \(base).html (plot: \(base).svg; raw: \(base).json, \(base)-*.hgrm); logs: \(logs)\n")
        }
        if failures > 0 { throw ExitCode.failure }
    }

    static func commandLine() -> String {
        (["trove-loadtest"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check scenario files without running them.")

    @Argument(help: ArgumentHelp("Scenario files.", valueName: "scenario.yaml"))
    var scenarios: [String]

    func run() throws {
        var bad = 0
        for path in scenarios {
            do {
                let scenario = try Scenario.load(path)
                print("ok  \(path): \(scenario.requests.count) kind\(scenario.requests.count == 1 ? "" : "s") of request, \(scenario.load.mode.rawValue) mode, rules \(scenario.rules)")
            } catch {
                print("\(error)")
                bad += 1
            }
        }
        if bad > 0 { throw ExitCode.failure }
    }
}

/// One line of progress on a terminal (rewritten in place), or a line every 5 s when the output is a file.
final class ProgressLine: Sendable {
    let terminal: Bool

    init(terminal: Bool) {
        self.terminal = terminal
    }

    func show(_ event: LoadTest.Event) {
        switch event {
        case .note(let text):
            write((terminal ? "\r\u{1B}[K" : "") + text + "\n")
        case .progress(let side, let progress):
            let phase = progress.warmingUp ? "warm-up" : "measure"
            let line = String(
                format: "%@ %@ %5.0fs  %7.0f answers/s  p50 %@  p99 %@  no answer %d%@", side, phase, progress.elapsed,
                progress.perSecond, Self.ms(progress.p50), Self.ms(progress.p99), progress.failed,
                progress.backlog > 0 ? "  waiting to be sent \(progress.backlog)" : "")
            if terminal {
                write("\r\u{1B}[K" + line)
            } else if Int(progress.elapsed) % 5 == 0 {
                write(line + "\n")
            }
        }
    }

    func finish() {
        if terminal { write("\r\u{1B}[K") }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func ms(_ value: Double) -> String {
        value < 10 ? String(format: "%.2f ms", value) : String(format: "%.0f ms", value)
    }
}

/// Ctrl-C or SIGTERM stops what the run started before the tool exits.
enum Interruption {
    /// Keep what it returns for as long as the handlers should stay.
    static func install() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("\ntrove-loadtest: interrupted; stopping what it started\n".utf8))
                LoadTest.cleanup.run()
                exit(130)
            }
            source.resume()
            return source
        }
    }
}
