internal import NIOCore

/// The life of one client connection, decided apart from the channel: which request is answered now and which
/// wait behind it (pipelining), when reads are held back and resumed (back-pressure), when the connection
/// closes (refusals, `Connection: close`, timeouts, draining for shutdown). Events in, actions out; tested as
/// transcripts (`ProxyConnectionStateMachineTests`); `ProxyHandler` performs the actions.
///
/// `Request` is whatever the handler answers (a parsed request, or a refusal it answers itself); the machine
/// only keeps them in order.
struct ProxyConnectionStateMachine<Request> {
    /// What the handler must do after an event.
    enum Action {
        case none
        /// Start answering this request now.
        case begin(Request)
        /// Ask the channel for more bytes (a read that was held back).
        case read
        /// Ask for more bytes, and start answering this request.
        case readAndBegin(Request)
        /// Close the connection now.
        case close
    }

    /// What a timeout comes to: answer 408 in the request's turn, or close at once.
    enum Expiry: Equatable {
        case refuse, close
    }

    private enum State {
        /// Reading and answering requests.
        case open
        /// Its last answer is written or being written (or it timed out): nothing more starts.
        case closing
    }

    private var state = State.open
    /// Complete requests waiting for the one being answered, oldest first.
    private var queue = CircularBuffer<Request>(initialCapacity: 0)
    /// A request is being answered.
    private(set) var isAnswering = false
    /// A request was refused before its end: nothing after it is read.
    private(set) var isIgnoringInput = false
    /// Reads are held back (too many waiting, a refusal, draining); `readWanted`: the channel asked meanwhile.
    private var readsHeld = false
    private var readWanted = false
    /// A request body streaming to the origin filled its window: reads wait until the origin takes half.
    private var uploadHolds = false
    private var draining = false
    /// Past this many waiting requests, reads are held back (`limits.max_pipelined`).
    let maxPipelined: Int

    init(maxPipelined: Int) {
        self.maxPipelined = max(1, maxPipelined)
    }

    var isClosing: Bool {
        if case .closing = state { true } else { false }
    }

    /// Requests waiting behind the one being answered.
    var waiting: Int { queue.count }

    /// A request complete now could be answered at once, in full, without anything changing here (the hit fast
    /// path): the connection is open and reading, nothing is being answered or waits, and the client has read what
    /// it was sent.
    func answersAtOnce(writable: Bool) -> Bool {
        guard case .open = state else { return false }
        return writable && !isAnswering && queue.isEmpty && !isIgnoringInput && !readsHeld && !uploadHolds && !draining
    }

    /// A request is complete (`writable`: the client has read what it was sent).
    mutating func requestComplete(_ request: Request, writable: Bool) -> Action {
        guard case .open = state else { return .none }
        if isAnswering || !writable {
            queue.append(request)
            if queue.count >= maxPipelined { readsHeld = true }
            return .none
        }
        isAnswering = true
        return .begin(request)
    }

    /// A request is refused before its end (malformed, too large, over budget, too slow): it is answered in
    /// its turn, and nothing after it is read.
    mutating func refused(_ refusal: Request, writable: Bool) -> Action {
        isIgnoringInput = true
        readsHeld = true
        return requestComplete(refusal, writable: writable)
    }

    /// The channel wants to read: read now, unless reads are held.
    mutating func readRequested() -> Bool {
        guard readsHeld || uploadHolds else { return true }
        readWanted = true
        return false
    }

    /// The body streaming to the origin filled its window: hold reads.
    mutating func uploadFull() {
        uploadHolds = true
    }

    /// The origin took half the window: true when a read is wanted now.
    mutating func uploadHasRoom() -> Bool {
        uploadHolds = false
        guard readWanted, !readsHeld, case .open = state else { return false }
        readWanted = false
        return true
    }

    /// The answer about to be written: does the connection stay open after it? Not when the request or the
    /// answer says close, nor when it is the last answer of a connection being drained. When it does not,
    /// what waits behind it is dropped.
    mutating func answerStarts(keepAliveAsked: Bool) -> Bool {
        if draining { readsHeld = true }
        let keepAlive = keepAliveAsked && !(draining && queue.isEmpty)
        if !keepAlive {
            state = .closing
            queue.removeAll()
        }
        return keepAlive
    }

    /// The answer is written (`writable`: the client has read enough of it to start the next one). Resumes
    /// held reads once fewer than half of `maxPipelined` wait, and starts the next request.
    mutating func answerWritten(writable: Bool) -> Action {
        isAnswering = false
        guard case .open = state else { return .none }
        var read = false
        if readsHeld, !isIgnoringInput, !draining, queue.count < max(1, maxPipelined / 2) {
            readsHeld = false
            read = readWanted && !uploadHolds
            if read { readWanted = false }
        }
        guard writable, let next = queue.popFirst() else { return read ? .read : .none }
        isAnswering = true
        return read ? .readAndBegin(next) : .begin(next)
    }

    /// The answer could not be written (the channel is gone).
    mutating func answerAbandoned() {
        isAnswering = false
    }

    /// The client caught up with what was written: the next waiting request may start.
    mutating func writabilityChanged(writable: Bool) -> Action {
        guard writable, !isAnswering, case .open = state, let next = queue.popFirst() else { return .none }
        isAnswering = true
        return .begin(next)
    }

    /// Trove drains for shutdown: no more reads; an idle connection closes now, a busy one after its last answer
    /// (`answerStarts`).
    mutating func drainStarted() -> Action {
        draining = true
        readsHeld = true
        guard !isAnswering, queue.isEmpty, case .open = state else { return .none }
        state = .closing
        return .close
    }

    /// A `limits:` timeout passed. `answers408`: the client was sending a request (or had sent nothing yet), so
    /// it is told why, in its turn; otherwise the connection just closes.
    mutating func deadlinePassed(answers408: Bool) -> Expiry {
        if answers408 && !isAnswering { return .refuse }
        state = .closing
        queue.removeAll()
        return .close
    }

    /// The connection is gone: whatever waited is dropped.
    mutating func closed() {
        state = .closing
        queue.removeAll()
    }
}
