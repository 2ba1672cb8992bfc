import Testing
@testable import TroveServer

/// The connection's life as transcripts: pipelined requests in order, reads held past `max_pipelined` and
/// resumed at half, the next answer only once the client has read, refusals, draining, timeouts.
@Suite struct ProxyConnectionStateMachineTests {
    typealias Machine = ProxyConnectionStateMachine<String>

    static func name(_ action: Machine.Action) -> String {
        switch action {
        case .none: "none"
        case .begin(let request): "begin \(request)"
        case .read: "read"
        case .readAndBegin(let request): "read, begin \(request)"
        case .close: "close"
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() {
        var machine = Machine(maxPipelined: 16)
        #expect(Self.name(machine.requestComplete("a", writable: true)) == "begin a")
        #expect(Self.name(machine.requestComplete("b", writable: true)) == "none")
        #expect(Self.name(machine.requestComplete("c", writable: true)) == "none")
        #expect(machine.waiting == 2)
        let result1 = machine.answerStarts(keepAliveAsked: true)
        #expect(result1)
        #expect(Self.name(machine.answerWritten(writable: true)) == "begin b")
        let result2 = machine.answerStarts(keepAliveAsked: true)
        #expect(result2)
        #expect(Self.name(machine.answerWritten(writable: true)) == "begin c")
        let result3 = machine.answerStarts(keepAliveAsked: true)
        #expect(result3)
        #expect(Self.name(machine.answerWritten(writable: true)) == "none")
        #expect(!machine.isAnswering)
    }

    /// The next answer waits for the client to read the last one.
    @Test func aClientThatDoesNotReadGetsNothingMore() {
        var machine = Machine(maxPipelined: 16)
        _ = machine.requestComplete("a", writable: true)
        _ = machine.requestComplete("b", writable: true)
        _ = machine.answerStarts(keepAliveAsked: true)
        #expect(Self.name(machine.answerWritten(writable: false)) == "none")
        #expect(Self.name(machine.writabilityChanged(writable: false)) == "none")
        #expect(Self.name(machine.writabilityChanged(writable: true)) == "begin b")
        #expect(Self.name(machine.writabilityChanged(writable: true)) == "none", "one answer at a time")
        // A request arriving while the client is not reading waits too.
        _ = machine.answerStarts(keepAliveAsked: true)
        _ = machine.answerWritten(writable: false)
        #expect(Self.name(machine.requestComplete("c", writable: false)) == "none")
        #expect(Self.name(machine.writabilityChanged(writable: true)) == "begin c")
    }

    /// At `max_pipelined` waiting requests reads are held; they resume once fewer than half wait.
    @Test func readsAreHeldAtTheBoundAndResumedAtHalf() {
        var machine = Machine(maxPipelined: 4)
        _ = machine.requestComplete("r0", writable: true)
        for index in 1...4 { _ = machine.requestComplete("r\(index)", writable: true) }
        #expect(machine.waiting == 4)
        let result4 = machine.readRequested()
        #expect(!result4, "held")
        var transcript: [String] = []
        for _ in 0..<5 {
            _ = machine.answerStarts(keepAliveAsked: true)
            transcript.append(Self.name(machine.answerWritten(writable: true)))
        }
        #expect(transcript == ["begin r1", "begin r2", "begin r3", "read, begin r4", "none"])
        let result5 = machine.readRequested()
        #expect(result5)
    }

    /// A refused request is answered in its turn; nothing after it is read, and the connection closes after it.
    @Test func aRefusalEndsTheConnectionInItsTurn() {
        var machine = Machine(maxPipelined: 16)
        _ = machine.requestComplete("a", writable: true)
        #expect(Self.name(machine.refused("413", writable: true)) == "none")
        #expect(machine.isIgnoringInput)
        let result6 = machine.readRequested()
        #expect(!result6)
        _ = machine.answerStarts(keepAliveAsked: true)
        #expect(Self.name(machine.answerWritten(writable: true)) == "begin 413", "no read: input is ignored")
        let result7 = machine.answerStarts(keepAliveAsked: false)
        #expect(!result7)
        #expect(machine.isClosing)
        #expect(Self.name(machine.answerWritten(writable: true)) == "none")
        #expect(Self.name(machine.requestComplete("late", writable: true)) == "none")
    }

    /// `Connection: close` drops what waits behind it.
    @Test func closeDropsTheQueue() {
        var machine = Machine(maxPipelined: 16)
        _ = machine.requestComplete("a", writable: true)
        _ = machine.requestComplete("b", writable: true)
        let result8 = machine.answerStarts(keepAliveAsked: false)
        #expect(!result8)
        #expect(machine.waiting == 0)
        #expect(Self.name(machine.answerWritten(writable: true)) == "none")
    }

    /// Draining: an idle connection closes at once; a busy one answers what it has, the last answer closes it.
    @Test func drainingClosesAfterTheLastAnswer() {
        var idle = Machine(maxPipelined: 16)
        #expect(Self.name(idle.drainStarted()) == "close")

        var busy = Machine(maxPipelined: 16)
        _ = busy.requestComplete("a", writable: true)
        _ = busy.requestComplete("b", writable: true)
        #expect(Self.name(busy.drainStarted()) == "none")
        let result9 = busy.readRequested()
        #expect(!result9, "no more reads")
        let result10 = busy.answerStarts(keepAliveAsked: true)
        #expect(result10, "b still waits")
        #expect(Self.name(busy.answerWritten(writable: true)) == "begin b")
        let result11 = busy.answerStarts(keepAliveAsked: true)
        #expect(!result11, "the last answer closes")
        #expect(busy.isClosing)
    }

    /// A timeout while a request is being sent is a 408 in its turn; while an answer is out, a close.
    @Test func timeouts() {
        var sending = Machine(maxPipelined: 16)
        let result12 = sending.deadlinePassed(answers408: true)
        #expect(result12 == .refuse)
        #expect(!sending.isClosing)

        var answering = Machine(maxPipelined: 16)
        _ = answering.requestComplete("a", writable: true)
        _ = answering.requestComplete("b", writable: true)
        let result13 = answering.deadlinePassed(answers408: true)
        #expect(result13 == .close)
        #expect(answering.isClosing)
        #expect(answering.waiting == 0)
    }
}
