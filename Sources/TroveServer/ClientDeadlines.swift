internal import TroveHTTP
internal import TroveRules

/// When a client connection must have taken its next step, and what Trove does when it has not: the timeouts
/// of `limits:` as a state machine (events in, one deadline out), so that a slowloris client, an idle one and
/// one that never reads its answers each cost a bounded time, and the rules are tested as transcripts.
///
/// - A new connection must send a whole request head within `header` (nginx's client_header_timeout);
///   between requests, an idle keep-alive connection may wait `keepAlive`, and once the next request's first
///   bytes arrive its head must be whole within `header` of them. Late: 408 (when bytes of a request arrived),
///   or a quiet close (when none did).
/// - A request body may pause at most `body` between two reads. Late: 408.
/// - While requests are being answered, the client owes nothing (the answer's own time is bounded by the
///   origin's timeouts), except reading: a connection that stays unwritable (the client reads nothing of what
///   Trove sent) for `send` is closed, and so is one whose streamed answer stays stalled on it that long (the
///   answer's window is full of bytes the client has not taken, even while NIO's own buffer is below its high
///   watermark, as when the kernel's send buffer took most of the window).
///
/// Instants are nanoseconds on a monotonic clock, from the caller.
struct ClientDeadlines {
    struct Settings: Equatable {
        var header: Int64
        var body: Int64
        var keepAlive: Int64
        var send: Int64

        init(header: Int64, body: Int64, keepAlive: Int64, send: Int64) {
            self.header = header
            self.body = body
            self.keepAlive = keepAlive
            self.send = send
        }

        /// The timeouts of `limits:`, in nanoseconds.
        init(_ limits: Limits) {
            self.init(header: limits.headerTimeout.nanoseconds, body: limits.bodyTimeout.nanoseconds,
                keepAlive: limits.keepAliveTimeout.nanoseconds, send: limits.sendTimeout.nanoseconds)
        }
    }

    /// Which timeout ran out.
    enum Timeout: Equatable {
        case header, body, keepAlive, send
    }

    /// What to do when the deadline has passed: close the connection, after a 408 when part of a request
    /// arrived too slowly; without an answer when nothing of a request arrived (idle) or the client stopped
    /// reading.
    struct Expiry: Equatable {
        let timeout: Timeout
        let answers408: Bool
        /// In words, for the 408's body and the log.
        let reason: String
    }

    /// Where the client is in sending its next request.
    enum Reading: Equatable {
        /// No byte of a request since the last one ended; `first` on a new connection.
        case idle(since: Int64, first: Bool)
        /// Bytes of a head arrived, the head is not whole yet.
        case head(since: Int64)
        /// The head is whole; body bytes last arrived at `last`.
        case body(last: Int64)
    }

    let settings: Settings
    private(set) var reading: Reading
    /// Requests received whole and not yet answered (the one being answered and those queued behind it).
    private(set) var unanswered = 0
    /// Since when the connection has been unwritable, if it is.
    private var unwritableSince: Int64?
    /// Since when the answer streaming on the connection has waited for the client to take its window, if it does.
    private var stalledSince: Int64?

    init(settings: Settings, now: Int64) {
        self.settings = settings
        reading = .idle(since: now, first: true)
    }

    // MARK: Events

    /// Bytes arrived that did not complete a head, a body piece or a request (part of a head, in other words).
    mutating func bytesArrived(now: Int64) {
        switch reading {
        case .idle: reading = .head(since: now)
        case .head: break
        case .body: reading = .body(last: now)
        }
    }

    /// A request's head is whole.
    mutating func headReceived(now: Int64) {
        reading = .body(last: now)
    }

    /// A piece of a request's body arrived.
    mutating func bodyReceived(now: Int64) {
        if case .body = reading { reading = .body(last: now) }
    }

    /// A request arrived whole: it is answered (or queued) now.
    mutating func requestReceived(now: Int64) {
        unanswered += 1
        reading = .idle(since: now, first: false)
    }

    /// One request's answer is written (handed to the connection).
    mutating func answered(now: Int64) {
        unanswered = max(0, unanswered - 1)
        stalledSince = nil
        // The keep-alive wait starts when the last answer went out, not when the request came in.
        if unanswered == 0, case .idle = reading { reading = .idle(since: now, first: false) }
    }

    /// The connection became writable or unwritable (the client reads, or has stopped reading, what Trove sent).
    mutating func writabilityChanged(_ writable: Bool, now: Int64) {
        if writable {
            unwritableSince = nil
        } else if unwritableSince == nil {
            unwritableSince = now
        }
    }

    /// The answer streaming on the connection stopped (or started again) waiting for the client to take its window.
    mutating func answerStalled(_ stalled: Bool, now: Int64) {
        if !stalled {
            stalledSince = nil
        } else if stalledSince == nil {
            stalledSince = now
        }
    }

    // MARK: The deadline

    /// The instant by which the client must have done something, and which timeout that is; nil while it owes
    /// nothing. Cheap: read after every event (the reason in words is built only when a deadline passes).
    var deadlineAt: (at: Int64, timeout: Timeout, answers408: Bool)? {
        // The earlier of the two, without building an array: this is read after every event.
        let since: Int64? = switch (unwritableSince, stalledSince) {
        case (let a?, let b?): min(a, b)
        case (let a?, nil): a
        case (nil, let b?): b
        case (nil, nil): nil
        }
        if let since {
            return (since.addingClamped(settings.send), .send, false)
        }
        guard unanswered == 0 else { return nil }
        switch reading {
        case .idle(let since, true): return (since.addingClamped(settings.header), .header, false)
        case .idle(let since, false): return (since.addingClamped(settings.keepAlive), .keepAlive, false)
        case .head(let since): return (since.addingClamped(settings.header), .header, true)
        case .body(let last): return (last.addingClamped(settings.body), .body, true)
        }
    }

    /// The deadline with what happens when it passes, in words.
    var deadline: (at: Int64, expiry: Expiry)? {
        guard let (at, timeout, answers408) = deadlineAt else { return nil }
        let reason: String
        switch (timeout, answers408) {
        case (.send, _): reason = "the client read nothing of its answer for \(Self.format(settings.send))"
        case (.header, false): reason = "no request within \(Self.format(settings.header)) of connecting"
        case (.header, true): reason = "the request's headers did not arrive whole within \(Self.format(settings.header))"
        case (.keepAlive, _): reason = "idle for \(Self.format(settings.keepAlive)) between requests"
        case (.body, _): reason = "the request's body paused for more than \(Self.format(settings.body))"
        }
        return (at, Expiry(timeout: timeout, answers408: answers408, reason: reason))
    }

    /// What to do at `now`: nil while the deadline has not passed (or there is none).
    func expired(now: Int64) -> Expiry? {
        guard let at = deadlineAt?.at, now >= at else { return nil }
        return deadline?.expiry
    }

    private static func format(_ nanoseconds: Int64) -> String {
        Units.format(.nanoseconds(nanoseconds))
    }
}
