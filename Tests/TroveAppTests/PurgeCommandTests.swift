import ArgumentParser
import Testing
@testable import TroveApp

/// `trove purge`: what it asks for, and what it prints of the answer.
struct PurgeCommandTests {
    @Test func softNeedsItsFlagAndADuration() throws {
        let soft = try PurgeCommand.parse(["--tag", "events", "--soft", "--stale", "1m"])
        #expect(soft.soft && soft.stale == "1m")
        #expect(throws: (any Error).self) { try PurgeCommand.parse(["--tag", "events", "--stale", "1m"]) }
        #expect(message(["--tag", "events", "--stale", "1m"]).hasPrefix("Error: --stale is the window of a soft purge: add --soft\n"))
        #expect(message(["--tag", "events", "--soft", "--stale", "soon"]).hasPrefix("Error: --stale takes a duration such as 30s or 5m, not 'soon'\n"))
    }

    /// The message a validation failure of these arguments prints.
    private func message(_ arguments: [String]) -> String {
        do {
            _ = try PurgeCommand.parse(arguments)
            return "accepted"
        } catch {
            return PurgeCommand.fullMessage(for: error)
        }
    }

    @Test func theAnswerIsSummarised() {
        let applied = PurgeCommand.summary(status: 200, body: """
            {"purged": {"all": false, "routes": [], "tags": ["events"], "keys": [{"key": "events:full:1", "found": true}], "soft": true}}
            """)
        #expect(applied == """
            soft purge applied (200); what it named is now stale: each is served while one refresh runs:
              tag     events
              key     events:full:1   had an entry
            """)
        #expect(PurgeCommand.summary(status: 200, body: #"{"purged": {"all": true, "routes": [], "tags": [], "keys": [], "soft": false}}"#)
            .hasPrefix("hard purge applied (200); what it named is gone"))
        #expect(PurgeCommand.summary(status: 202, body: #"{"queued": true, "reason": "the store is unavailable (down)"}"#)
            == "queued: the store is unavailable (down); nothing it covers is served meanwhile")
        #expect(PurgeCommand.summary(status: 413, body: #"{"error": "too many"}"#) == "trove purge: too many")
        #expect(PurgeCommand.summary(status: 502, body: "not json") == "not json")
    }
}
