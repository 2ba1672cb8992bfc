import Synchronization
import Testing
import TroveCore

/// A cacheable answer read while it is written (`EntryFill`), as transcripts of what readers and the origin see.
@Suite struct EntryFillTests {
    /// What a reader was handed, and what the origin was told, in order.
    final class Transcript: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
        func reader(_ name: String) -> @Sendable (EntryFill<[UInt8]>.Event) -> Void {
            { event in
                switch event {
                case .pieces(let pieces): self.add("\(name) " + pieces.map { "\($0.count)" }.joined(separator: "+"))
                case .end(.success): self.add("\(name) end")
                case .end(.failure): self.add("\(name) broke")
                }
            }
        }
    }

    func piece(_ count: Int) -> [UInt8] { [UInt8](repeating: 7, count: count) }

    func fill(window: Int, _ transcript: Transcript) -> EntryFill<[UInt8]> {
        let fill = EntryFill<[UInt8]>(window: window)
        fill.connect(release: { transcript.add("release \($0)") }, abort: { transcript.add("abort") })
        return fill
    }

    /// Kept for the store: the origin is never held back, readers get all but the last piece until the entry is
    /// stored, a reader that comes late starts from the first byte, and the store gets the body whole.
    @Test func aKeptAnswerIsReadAsItArrivesAndEndsOnlyWhenSealed() {
        let transcript = Transcript()
        let fill = fill(window: 100, transcript)
        fill.append(piece(10))
        #expect(transcript.all.isEmpty, "not judged yet: held")
        fill.decide(.keep(limit: 1000, grow: { _ in true }))
        let first = fill.join(transcript.reader("a"))
        fill.append(piece(20))
        fill.append(piece(30))
        #expect(first != nil)
        let late = fill.join(transcript.reader("b"))
        #expect(late != nil)
        fill.finish(.success(()))
        #expect(fill.wholeBody()?.count == 60)
        #expect(transcript.all == ["release 10", "a 10", "release 20", "a 20", "release 30", "b 10+20"],
            "the last piece waits for the store")
        fill.seal()
        // Readers are handed their events in order; between readers, in any order.
        #expect(transcript.all.suffix(4).filter { $0.hasPrefix("a") } == ["a 30", "a end"])
        #expect(transcript.all.suffix(4).filter { $0.hasPrefix("b") } == ["b 30", "b end"])
        #expect(fill.readerCount == 0)
    }

    /// A reader is handed at most a window it has not written; it gets more as it writes.
    @Test func eachReaderHasAWindow() {
        let transcript = Transcript()
        let fill = fill(window: 25, transcript)
        fill.decide(.keep(limit: 1000, grow: { _ in true }))
        let reader = fill.join(transcript.reader("a"))!
        for _ in 0..<5 { fill.append(piece(10)) }
        #expect(transcript.all.filter { $0.hasPrefix("a") } == ["a 10", "a 10", "a 10"])
        fill.consumed(reader, 20)
        #expect(transcript.all.filter { $0.hasPrefix("a") } == ["a 10", "a 10", "a 10", "a 10"], "the fifth is the last: held")
        fill.finish(.success(()))
        fill.seal()
        fill.consumed(reader, 20)
        #expect(transcript.all.suffix(2) == ["a 10", "a end"])
    }

    /// Past the route's limit the answer is no longer kept: nothing goes to the store, pieces are dropped once
    /// read, the origin waits for the slowest reader, and a newcomer cannot join.
    @Test func anAnswerThatOutgrowsItsLimitIsPassedAtTheSlowestReadersPace() {
        let transcript = Transcript()
        let fill = fill(window: 20, transcript)
        fill.decide(.keep(limit: 25, grow: { _ in true }))
        let reader = fill.join(transcript.reader("a"))!
        fill.append(piece(10))
        fill.append(piece(10))
        fill.append(piece(10))
        #expect(!fill.isKept)
        #expect(fill.join(transcript.reader("late")) == nil, "the first bytes are gone")
        fill.append(piece(10))
        #expect(transcript.all == ["release 10", "a 10", "release 10", "a 10"], "a window handed out, no more released")
        fill.consumed(reader, 20)
        #expect(transcript.all.suffix(2) == ["a 10+10", "release 20"])
        fill.finish(.success(()))
        #expect(fill.wholeBody() == nil)
        #expect(transcript.all.last == "a end", "a passed answer ends at once: nothing is stored")
    }

    /// The response body budget is full: the answer is passed, as if it had outgrown its limit.
    @Test func aFullBudgetStopsKeeping() {
        let transcript = Transcript()
        let fill = fill(window: 100, transcript)
        let room = Mutex(15)
        fill.decide(.keep(limit: 1000, grow: { bytes in room.withLock { guard $0 >= bytes else { return false }; $0 -= bytes; return true } }))
        _ = fill.join(transcript.reader("a"))
        fill.append(piece(10))
        #expect(fill.isKept)
        fill.append(piece(10))
        #expect(!fill.isKept)
    }

    /// The origin broke off: readers are told at once, kept or not; nobody joins a broken answer.
    @Test func aBrokenAnswerEndsEveryReader() {
        let transcript = Transcript()
        let fill = fill(window: 100, transcript)
        fill.decide(.keep(limit: 1000, grow: { _ in true }))
        _ = fill.join(transcript.reader("a"))
        fill.append(piece(10))
        fill.finish(.failure(OriginError(kind: .failed, origin: "demo", reason: "reset")))
        #expect(transcript.all.suffix(2) == ["a 10", "a broke"])
        #expect(fill.wholeBody() == nil)
        #expect(fill.join(transcript.reader("b")) == nil)
    }

    /// A passed answer nobody reads any more is aborted; a kept one is fetched on for the store.
    @Test func leavingAbortsOnlyWhatNobodyNeeds() {
        let transcript = Transcript()
        let passed = fill(window: 100, transcript)
        passed.decide(.pass)
        let reader = passed.join(transcript.reader("a"))!
        passed.append(piece(10))
        passed.leave(reader)
        #expect(transcript.all.last == "abort")

        let kept = fill(window: 100, Transcript())
        kept.decide(.keep(limit: 1000, grow: { _ in true }))
        let keptReader = kept.join({ _ in })!
        kept.leave(keptReader)
        kept.append(piece(10))
        kept.finish(.success(()))
        #expect(kept.wholeBody()?.count == 10)
    }

    /// Not judged yet: a window is held and the origin waits; judged storable, everything is released at once.
    @Test func anUnjudgedAnswerHoldsAWindow() {
        let transcript = Transcript()
        let fill = fill(window: 20, transcript)
        fill.append(piece(15))
        fill.append(piece(15))
        #expect(transcript.all.isEmpty)
        fill.decide(.keep(limit: 1000, grow: { _ in true }))
        #expect(transcript.all == ["release 30"])
    }
}
