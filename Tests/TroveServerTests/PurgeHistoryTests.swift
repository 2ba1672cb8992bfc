import Testing
@testable import TroveServer
@testable import TroveCore
import TroveRules

/// `GET /purges`' memory: newest first, bounded in purges and in the names each keeps.
@Suite struct PurgeHistoryTests {
    private func outcome(_ tag: String, soft: Bool = false, result: PurgeOutcome.Result = .applied(PurgeReport())) -> PurgeOutcome {
        PurgeOutcome(source: .admin, purges: PurgeSet(tags: [tag], soft: soft ? SoftPurge(extraStale: 5000) : nil), result: result,
            context: ["route.name": "r"])
    }

    @Test func keepsTheNewestAndForgetsTheOldestAtItsBound() {
        let history = PurgeHistory(capacity: 3)
        #expect(history.recent.isEmpty)
        history.record(outcome("a"), at: 0)
        history.record(outcome("b", soft: true), at: 1000)
        #expect(history.recent.map(\.tags) == [["b"], ["a"]])
        #expect(history.recent[0].mode == .soft && history.recent[0].extraStaleMs == 5000 && history.recent[1].mode == .hard)
        #expect(history.recent[0].at == "1970-01-01T00:00:01.000Z")
        for tag in ["c", "d", "e", "f", "g"] { history.record(outcome(tag), at: 0) }
        #expect(history.recent.map(\.tags) == [["g"], ["f"], ["e"]], "at its bound the oldest goes")
    }

    @Test func aHugePurgeKeepsItsFirstNamesAndItsCounts() {
        let history = PurgeHistory(capacity: 2)
        let tags = (0..<10_000).map { "t\($0)" }
        history.record(PurgeOutcome(source: .webhook, purges: PurgeSet(tags: tags), result: .refused("too many"), context: [:]), at: 0)
        let record = history.recent[0]
        #expect(record.tags == Array(tags.prefix(PurgeHistory.namesKept)))
        #expect(record.counts == .init(routes: 0, tags: 10_000, keys: 0))
        #expect(record.result == .refused && record.reason == "too many" && record.countersMoved == 0)
        history.record(PurgeOutcome(source: .writeRule, purges: PurgeSet(tags: ["x"], keys: ["k"]),
            result: .queued(.unavailable("down")), context: [:]), at: 0)
        #expect(history.recent[0].result == .queued && history.recent[0].countersMoved == 2)
        #expect(history.recent[0].reason?.contains("applied when it is back") == true)
    }
}
