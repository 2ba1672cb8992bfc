import Testing
@testable import TroveServer

/// The timeouts of `limits:` as transcripts: events in, the deadline and what it does out (#12, finding 2).
@Suite struct ClientDeadlinesTests {
    static let second: Int64 = 1_000_000_000
    static let settings = ClientDeadlines.Settings(header: 10 * second, body: 30 * second, keepAlive: 60 * second, send: 45 * second)

    func deadline(_ machine: ClientDeadlines) -> (Int64, ClientDeadlines.Timeout, Bool)? {
        machine.deadline.map { ($0.at, $0.expiry.timeout, $0.expiry.answers408) }
    }

    /// A new connection that sends nothing is closed quietly after the header timeout.
    @Test func silentNewConnection() {
        let machine = ClientDeadlines(settings: Self.settings, now: 5)
        #expect(deadline(machine)! == (5 + 10 * Self.second, .header, false))
        #expect(machine.expired(now: 5 + 10 * Self.second - 1) == nil)
        #expect(machine.expired(now: 5 + 10 * Self.second)?.reason == "no request within 10s of connecting")
    }

    /// Slowloris: the head must be whole within the header timeout of its first byte, however the bytes trickle.
    @Test func slowHead() {
        var machine = ClientDeadlines(settings: Self.settings, now: 0)
        machine.bytesArrived(now: 2 * Self.second)
        for t in 3...11 { machine.bytesArrived(now: Int64(t) * Self.second) }
        #expect(deadline(machine)! == (12 * Self.second, .header, true))
        #expect(machine.expired(now: 12 * Self.second)?.reason == "the request's headers did not arrive whole within 10s")
    }

    /// A body may pause at most the body timeout between two reads; each piece moves the deadline.
    @Test func slowBody() {
        var machine = ClientDeadlines(settings: Self.settings, now: 0)
        machine.bytesArrived(now: 1)
        machine.headReceived(now: 2)
        #expect(deadline(machine)! == (2 + 30 * Self.second, .body, true))
        machine.bodyReceived(now: 20 * Self.second)
        machine.bytesArrived(now: 40 * Self.second)
        #expect(deadline(machine)! == (70 * Self.second, .body, true))
    }

    /// While requests are answered the client owes nothing; after the last answer the keep-alive wait begins,
    /// and the next request's first bytes start a header timeout.
    @Test func keepAliveBetweenRequests() {
        var machine = ClientDeadlines(settings: Self.settings, now: 0)
        machine.headReceived(now: 1)
        machine.requestReceived(now: 1)
        machine.headReceived(now: 2)
        machine.requestReceived(now: 2)
        #expect(machine.unanswered == 2)
        #expect(machine.deadline == nil)
        machine.answered(now: 100 * Self.second)
        #expect(machine.deadline == nil, "one request is still being answered")
        machine.answered(now: 200 * Self.second)
        #expect(deadline(machine)! == (260 * Self.second, .keepAlive, false))
        machine.bytesArrived(now: 230 * Self.second)
        #expect(deadline(machine)! == (240 * Self.second, .header, true))
    }

    /// A client that stops reading its answers is closed after the send timeout, whatever else is going on.
    @Test func clientThatDoesNotRead() {
        var machine = ClientDeadlines(settings: Self.settings, now: 0)
        machine.headReceived(now: 1)
        machine.requestReceived(now: 1)
        machine.writabilityChanged(false, now: 5 * Self.second)
        machine.writabilityChanged(false, now: 9 * Self.second)
        #expect(deadline(machine)! == (50 * Self.second, .send, false))
        machine.writabilityChanged(true, now: 30 * Self.second)
        #expect(machine.deadline == nil)
    }

    /// A streamed answer stalled on the client counts toward the send timeout even while the connection stays
    /// writable (the kernel took most of the window, NIO's buffer is under its high watermark); the earlier of a
    /// stall and unwritability counts, and the answer ending ends the stall.
    @Test func answerStalledOnTheClient() {
        var machine = ClientDeadlines(settings: Self.settings, now: 0)
        machine.headReceived(now: 1)
        machine.requestReceived(now: 1)
        machine.answerStalled(true, now: 3 * Self.second)
        machine.answerStalled(true, now: 7 * Self.second)
        #expect(deadline(machine)! == (48 * Self.second, .send, false))
        machine.writabilityChanged(false, now: 10 * Self.second)
        #expect(deadline(machine)! == (48 * Self.second, .send, false), "the earlier")
        machine.answerStalled(false, now: 20 * Self.second)
        #expect(deadline(machine)! == (55 * Self.second, .send, false), "unwritable still")
        machine.writabilityChanged(true, now: 21 * Self.second)
        #expect(machine.deadline == nil)
        machine.answerStalled(true, now: 22 * Self.second)
        machine.answered(now: 23 * Self.second)
        #expect(deadline(machine)?.1 == .keepAlive, "the answer ended: no stall")
    }

    /// Timeouts far in the future do not overflow.
    @Test func hugeTimeouts() {
        let machine = ClientDeadlines(settings: .init(header: .max, body: .max, keepAlive: .max, send: .max), now: 5)
        #expect(machine.deadline?.at == .max)
    }
}
