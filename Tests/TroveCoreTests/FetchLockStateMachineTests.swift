import Testing
import TroveCore
import TroveHTTP

/// The cross-instance half of coalescing, as transcripts: take the lock and fetch, or wait for the holder's
/// fetch (notices, ticks), answer with what it stored, and never wait past the fetch window.
@Suite struct FetchLockStateMachineTests {
    typealias Machine = FetchLockStateMachine<String>
    static let address = EntryAddress(key: "event:1", route: "event", tags: ["event:1"])

    static func entry(freshUntil: Int64 = 10_000, generations: [Int64] = [0, 0, 0, 0]) -> EntryMeta {
        EntryMeta(status: 200, headers: [], storedAt: 0, freshUntil: freshUntil, staleUntil: freshUntil, route: "event",
            tags: ["event:1"], generations: generations, bodyLength: 4)
    }

    /// What an action is, for comparing transcripts.
    static func name(_ action: Machine.Action) -> String {
        switch action {
        case .lock: "lock"
        case .startWaiting: "startWaiting"
        case .lookup: "lookup"
        case .fetch(let lock, let stopWaiting): "fetch(\(lock == nil ? "no lock" : "locked")\(stopWaiting ? ", stop waiting" : ""))"
        case .answer(_, let body): "answer(\(body))"
        case .none: "none"
        }
    }

    @Test func theLockFreeFetches() {
        var machine = Machine(address: Self.address, window: 1000)
        #expect(Self.name(machine.start()) == "lock")
        #expect(Self.name(machine.lockCompleted(.success(.acquired(token: "t")))) == "fetch(locked)")
        #expect(machine.isDone)
        #expect(Self.name(machine.tick()) == "none")
    }

    @Test func noStoreFetchesAlone() {
        var machine = Machine(address: Self.address, window: 1000)
        _ = machine.start()
        #expect(Self.name(machine.lockCompleted(.failure(.unavailable("down")))) == "fetch(no lock)")
    }

    /// The holder stores the entry and says so: the waiter answers with it, after one lookup.
    @Test func aNoticeBringsTheEntry() {
        var machine = Machine(address: Self.address, window: 1000)
        _ = machine.start()
        #expect(Self.name(machine.lockCompleted(.success(.heldElsewhere))) == "startWaiting")
        #expect(Self.name(machine.notice()) == "lookup")
        #expect(Self.name(machine.notice()) == "none", "one lookup at a time")
        #expect(Self.name(machine.tick()) == "none")
        #expect(Self.name(machine.lookupCompleted(.found(Self.entry(), "body", generations: [0, 0, 0, 0]), now: 100)) == "answer(body)")
        #expect(machine.isDone)
    }

    /// An entry purged since it was stored, expired, or a Vary marker does not answer: the waiter tries the
    /// lock again, and fetches once it gets it.
    @Test func whatCannotAnswerSendsItBackToTheLock() {
        for found in [
            Self.entry(generations: [0, 0, 0, 1]),
            Self.entry(freshUntil: 50),
            EntryMeta.varyMarker(names: ["accept"], route: "event", tags: ["event:1"], generations: [0, 0, 0, 0], storedAt: 0, until: 10_000),
        ] {
            var machine = Machine(address: Self.address, window: 1000)
            _ = machine.start()
            _ = machine.lockCompleted(.success(.heldElsewhere))
            _ = machine.tick()
            #expect(Self.name(machine.lookupCompleted(.found(found, "old", generations: [0, 0, 0, 0]), now: 100)) == "lock")
            #expect(Self.name(machine.lockCompleted(.success(.heldElsewhere))) == "none")
            #expect(Self.name(machine.tick()) == "lookup")
            #expect(Self.name(machine.lookupCompleted(.notFound(generations: [0, 0, 0, 0]), now: 300)) == "lock")
            #expect(Self.name(machine.lockCompleted(.success(.acquired(token: "t")))) == "fetch(locked, stop waiting)")
        }
    }

    /// The holder never finishes (and its notice is lost): after the fetch window's worth of ticks the waiter
    /// fetches on its own.
    @Test func theWindowBoundsTheWait() {
        var machine = Machine(address: Self.address, window: 1000)
        _ = machine.start()
        _ = machine.lockCompleted(.success(.heldElsewhere))
        var transcript: [String] = []
        while !machine.isDone && transcript.count < 100 {
            let action = machine.tick()
            transcript.append(Self.name(action))
            if case .lookup = action {
                let next = machine.lookupCompleted(.notFound(generations: [0, 0, 0, 0]), now: 0)
                transcript.append(Self.name(next))
                if case .lock = next { transcript.append(Self.name(machine.lockCompleted(.success(.heldElsewhere)))) }
            }
        }
        #expect(transcript == Array(repeating: ["lookup", "lock", "none"], count: 4).flatMap { $0 } + ["lookup", "fetch(no lock, stop waiting)"])
    }

    /// Two instances' leaders on one key, against one lock: exactly one fetches, the other answers with what it
    /// stored, whatever order the events arrive in.
    @Test func twoInstancesOneFetch() {
        for noticeFirst in [true, false] {
            var holder: String?
            func lock(_ who: String) -> Result<FetchLock, StoreError> {
                if holder == nil { holder = who; return .success(.acquired(token: who)) }
                return .success(holder == who ? .acquired(token: who) : .heldElsewhere)
            }
            var stored: (EntryMeta, String)?
            var a = Machine(address: Self.address, window: 5000)
            var b = Machine(address: Self.address, window: 5000)
            _ = a.start()
            _ = b.start()
            #expect(Self.name(a.lockCompleted(lock("a"))) == "fetch(locked)")
            #expect(Self.name(b.lockCompleted(lock("b"))) == "startWaiting")
            // b looks before a's fetch ends: nothing yet, and the lock is still a's.
            #expect(Self.name(b.tick()) == "lookup")
            #expect(Self.name(b.lookupCompleted(.notFound(generations: [0, 0, 0, 0]), now: 100)) == "lock")
            #expect(Self.name(b.lockCompleted(lock("b"))) == "none")
            // a stores and releases the lock, then publishes its notice; b hears it (or ticks) and answers.
            stored = (Self.entry(), "from a")
            holder = nil
            let look = noticeFirst ? b.notice() : b.tick()
            #expect(Self.name(look) == "lookup")
            let found: LookupOutcome<String> = stored.map { .found($0.0, $0.1, generations: [0, 0, 0, 0]) } ?? .notFound(generations: [])
            #expect(Self.name(b.lookupCompleted(found, now: 400)) == "answer(from a)")
        }
    }
}
