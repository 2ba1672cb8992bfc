import Synchronization
import Testing
import TroveCore

/// The two windows between the connection's thread and the origin client's: an answer handed over piece by
/// piece (`OriginStream`), a body read as it arrives (`OriginUpload`).
@Suite struct OriginStreamTests {
    final class Calls: Sendable {
        let names = Mutex<[String]>([])
        func add(_ name: String) { names.withLock { $0.append(name) } }
        var all: [String] { names.withLock { $0 } }
    }

    @Test func anAnswerPausesPastItsWindowAndResumesAtHalf() {
        let calls = Calls()
        let stream = OriginStream<Int>(window: 100, deliver: { _ in calls.add("deliver") }, paused: { calls.add($0 ? "paused" : "resumed") })
        stream.control.attach(resume: { calls.add("resume") }, abort: { calls.add("abort") })
        #expect(stream.reserve(60))
        #expect(stream.reserve(40))
        #expect(!stream.reserve(1), "the window is full")
        #expect(!stream.reserve(1))
        stream.consumed(40)
        #expect(calls.all == ["paused"], "60 of 100 still out: not yet")
        stream.consumed(20)
        #expect(calls.all == ["paused", "resumed", "resume"])
        stream.consumed(40)
        #expect(stream.reserve(200), "a piece bigger than the window passes when nothing is out")
        stream.cancel()
        #expect(calls.all.last == "abort")
        #expect(stream.isCancelled)
    }

    @Test func anUploadIsReadAsItArrivesAndHoldsItsClientPastTheWindow() {
        let calls = Calls()
        let upload = OriginUpload(window: 8, length: 12) { calls.add("room") }
        upload.control.attach(resume: { calls.add("resume") }, abort: { calls.add("abort") })
        var buffer = [UInt8](repeating: 0, count: 5)
        func read() -> OriginUpload.Read { buffer.withUnsafeMutableBytes { upload.read(into: $0) } }
        #expect(read() == .pause, "nothing yet")
        #expect(upload.append([1, 2, 3, 4]), "room left")
        #expect(calls.all == ["resume"], "the paused transfer is resumed")
        #expect(!upload.append([5, 6, 7, 8, 9, 10]), "10 held: the client must wait")
        #expect(read() == .bytes(5))
        #expect(Array(buffer) == [1, 2, 3, 4, 5])
        #expect(calls.all == ["resume"], "5 held, more than half the window: the client still waits")
        #expect(read() == .bytes(5))
        #expect(calls.all == ["resume", "room"], "nothing held: read from the client again")
        upload.finish()
        #expect(read() == .end)
        let cancelled = OriginUpload(window: 8, length: nil) { }
        cancelled.control.attach(resume: { }, abort: { calls.add("aborted") })
        cancelled.cancel()
        #expect(calls.all.last == "aborted")
        #expect(buffer.withUnsafeMutableBytes { cancelled.read(into: $0) } == .abort)
    }

    /// Pieces the connection had decoded before it stopped reading arrive after the window was full; one that
    /// arrives after the origin read a little (the window below full, not yet half free) keeps it full, so the
    /// origin's later read still says when to read from the client again (found stalling a 1 GiB upload).
    @Test func aPieceAfterTheWindowFilledKeepsItFullUntilHalfIsRead() {
        let calls = Calls()
        let upload = OriginUpload(window: 10, length: nil) { calls.add("room") }
        var buffer = [UInt8](repeating: 0, count: 3)
        func read() -> OriginUpload.Read { buffer.withUnsafeMutableBytes { upload.read(into: $0) } }
        #expect(!upload.append(Array(repeating: 1, count: 10)), "full")
        #expect(read() == .bytes(3), "7 held")
        #expect(!upload.append([2]), "8 held: below the window, but the client waits until half is free")
        #expect(calls.all.isEmpty)
        #expect(read() == .bytes(3))
        #expect(calls.all == ["room"], "5 held, half the window: read from the client again")
        #expect(upload.append([3]))
    }

    /// A transfer that ended is detached: a consumer leaving afterwards reaches nothing (the origin client's
    /// next transfer may have the same handle).
    @Test func aDetachedTransferIsNotAborted() {
        let calls = Calls()
        let stream = OriginStream<Int>(window: 10, deliver: { _ in })
        stream.control.attach(resume: { calls.add("resume") }, abort: { calls.add("abort") })
        stream.control.detach()
        stream.cancel()
        #expect(calls.all.isEmpty)
        #expect(stream.isCancelled)
    }
}
