internal import ArgumentParser
internal import Foundation
internal import TroveRules

/// `trove suggest`: reads access logs and writes a draft rules file (`RulesDraft`), checked before it is written.
struct SuggestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suggest",
        abstract: "Draft a rules file from access logs (Trove's JSON lines, or nginx's combined format).",
        discussion: """
            Record traffic first: run Trove in front of the API with every request passed (a rules file whose \
            only route is `match: ANY /**, pass: true`) and `--access-log FILE --access-log-format json`, or use \
            nginx's access log. The draft templates paths into routes (numeric, UUID and long hex segments \
            become parameters), caches reads that succeeded, keys them on the query parameters seen, and makes \
            writes purge the resource they touch. Every guess is explained in a comment, and every cacheable \
            route runs in shadow until you remove `shadow: true`. See docs/shadow.md.

            Example:
              trove suggest access.log --origin http://127.0.0.1:8000 -o rules/draft.yaml
              trove serve -c rules/draft.yaml     # in shadow: clients get the origin's answers
              trove shadow                        # what it would have served, and why some answers were stale
            """
    )

    @Argument(help: ArgumentHelp("Access log files, read in order.", valueName: "log"))
    var logs: [String]

    @Option(help: ArgumentHelp("The API's URL, written as the draft's origin.", valueName: "url"))
    var origin: String = "http://127.0.0.1:8000"

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Write the draft here (default: stdout).", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Read at most this many lines in all (the rest is ignored, and said so).", valueName: "count"))
    var maxLines: Int = 5_000_000

    func validate() throws {
        guard !logs.isEmpty else { throw ValidationError("give at least one access log file") }
        guard maxLines > 0 else { throw ValidationError("--max-lines must be more than 0") }
        guard origin.hasPrefix("http://") || origin.hasPrefix("https://") else {
            throw ValidationError("--origin '\(origin)' is not an http:// or https:// URL")
        }
    }

    func run() throws {
        var traffic = RulesDraft.Traffic()
        var skipped = 0
        var read = 0
        for log in logs {
            guard let handle = FileHandle(forReadingAtPath: log) else {
                FileHandle.standardError.write(Data("trove suggest: cannot read \(log): no such file, or not readable\n".utf8))
                throw ExitCode.failure
            }
            defer { try? handle.close() }
            var pending = Data()
            while read < maxLines, let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                pending.append(chunk)
                var start = pending.startIndex
                while read < maxLines, let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    read += 1
                    let line = String(decoding: pending[start..<newline], as: UTF8.self)
                    if let request = RulesDraft.parse(line: Substring(line)) { traffic.add(request) } else if !line.isEmpty { skipped += 1 }
                    start = pending.index(after: newline)
                    if read % 500_000 == 0 { FileHandle.standardError.write(Data("trove suggest: \(read) lines read…\n".utf8)) }
                }
                pending = Data(pending[start...])
                // A line with no end in sight is not a log line: drop it rather than hold it.
                if pending.count > 1 << 20 { pending.removeAll(); skipped += 1 }
            }
            if read < maxLines, !pending.isEmpty {
                read += 1
                if let request = RulesDraft.parse(line: Substring(String(decoding: pending, as: UTF8.self))) { traffic.add(request) } else { skipped += 1 }
            }
        }
        guard traffic.requests > 0 else {
            FileHandle.standardError.write(Data(("trove suggest: no request found in \(logs.joined(separator: ", ")) (\(skipped) lines skipped); "
                + "give Trove's JSON access log (--access-log-format json) or nginx's combined format\n").utf8))
            throw ExitCode.failure
        }
        if read >= maxLines {
            FileHandle.standardError.write(Data("trove suggest: stopped after --max-lines \(maxLines) lines; the draft covers those\n".utf8))
        }
        let source = logs.joined(separator: ", ")
        let draft = RulesDraft.draft(traffic, origin: origin, source: source, skipped: skipped)
        // The draft must load: a draft that does not is this command's bug, said as such.
        do {
            _ = try RulesLoader.parse(draft, file: output ?? "draft.yaml", environment: ["TROVE_ADMIN_TOKEN": "draft"])
        } catch {
            FileHandle.standardError.write(Data("trove suggest: the draft does not load (a bug; please report it with the log):\n\(error)\n".utf8))
            throw ExitCode.failure
        }
        if let output {
            do {
                try draft.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                FileHandle.standardError.write(Data("trove suggest: cannot write \(output): \(error.localizedDescription) (does its directory exist?)\n".utf8))
                throw ExitCode.failure
            }
            let routes = draft.components(separatedBy: "\n  - name: ").count - 1
            FileHandle.standardError.write(Data(("trove suggest: \(traffic.requests) requests → \(routes) routes in \(output). "
                + "Next: read its comments, `trove check -c \(output)`, then `trove serve -c \(output)` (in shadow) and `trove shadow`.\n").utf8))
        } else {
            print(draft, terminator: "")
        }
    }
}
