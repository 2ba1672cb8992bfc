import ArgumentParser
import Foundation
import Testing
import TroveRules
@testable import TroveApp

/// `trove suggest` as a person runs it: a log file in, a draft that loads out; clear failures otherwise.
struct SuggestCommandTests {
    @Test func writesADraftThatLoads() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("suggest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("access.log").path
        // A log without a final newline, with a line that is not a request.
        try """
            127.0.0.1 - - [05/Dec/2026:10:00:00 +0000] "GET /api/v1/events/1 HTTP/1.1" 200 345 "-" "curl/8"
            not a request
            127.0.0.1 - - [05/Dec/2026:10:00:01 +0000] "GET /api/v1/events/1 HTTP/1.1" 200 345 "-" "curl/8"
            127.0.0.1 - - [05/Dec/2026:10:00:02 +0000] "PATCH /api/v1/events/1 HTTP/1.1" 200 345 "-" "curl/8"
            """.write(toFile: log, atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("draft.yaml").path
        try SuggestCommand.parse([log, "--origin", "http://127.0.0.1:8000", "-o", output]).run()
        let rules = try RulesLoader.load(path: output, environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(rules.routes.map(\.match) == ["GET /api/v1/events/{event_id}", "PATCH /api/v1/events/{event_id}", "ANY /**"])
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(text.hasPrefix("# DRAFT rules written by `trove suggest` from \(log): 3 requests (1 line skipped: not a request)."))
    }

    @Test func failsClearly() {
        #expect(throws: (any Error).self) { try SuggestCommand.parse([]) }
        #expect(throws: (any Error).self) { try SuggestCommand.parse(["x.log", "--origin", "ftp://x"]) }
        #expect(throws: ExitCode.failure) { try SuggestCommand.parse(["/nonexistent/access.log"]).run() }
    }
}
