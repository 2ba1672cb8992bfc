public import TroveHTTP
internal import Synchronization

/// An origin's answer handed over as it arrives, for an exchange that does not store it (pass, bypass, writes):
/// the head once, then the body in pieces, with at most `window` bytes handed over and not yet consumed. Past
/// the window the origin client pauses the transfer, and `consumed` resumes it once the consumer (the client's
/// connection) has taken half; so a slow client costs a window, not a body. The transfer's end is the
/// request's completion, as for any other request.
///
/// Shared by two threads: the origin client's, which calls `head`, `reserve` and `push`, and the connection's,
/// which calls `consumed` and `cancel`. `deliver` hops to the connection's own thread.
public final class OriginStream<Body: Sendable>: Sendable {
    public enum Event: Sendable {
        /// The final status and headers (after any 1xx), before any body.
        case head(status: Int, headers: [Header])
        case body(Body)
    }

    private struct State {
        /// Bytes handed over and not yet consumed.
        var outstanding = 0
        /// The origin client was told the window is full, and waits for `resume`.
        var paused = false
        var cancelled = false
        var resume: (@Sendable () -> Void)?
        var abort: (@Sendable () -> Void)?
    }

    /// Bytes that may be handed over and not yet consumed.
    public let window: Int
    private let state = Mutex(State())
    private let deliver: @Sendable (Event) -> Void
    private let paused: @Sendable (Bool) -> Void

    /// - Parameters:
    ///   - deliver: called for each event, on the origin client's thread, in order.
    ///   - paused: told when the transfer pauses (true) and resumes or ends paused (false), on either thread: for
    ///     metrics.
    public init(window: Int, deliver: @escaping @Sendable (Event) -> Void, paused: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.window = max(1, window)
        self.deliver = deliver
        self.paused = paused
    }

    // MARK: The origin client's side

    /// Tells the stream how to resume a paused transfer and how to abort it. Called once, when the transfer
    /// starts; a stream cancelled before that aborts at once.
    public func attach(resume: @escaping @Sendable () -> Void, abort: @escaping @Sendable () -> Void) {
        let cancelled = state.withLock { state in
            state.resume = resume
            state.abort = abort
            return state.cancelled
        }
        if cancelled { abort() }
    }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    public func head(status: Int, headers: [Header]) {
        deliver(.head(status: status, headers: headers))
    }

    /// Room for `count` more bytes: true (they count as handed over; `push` them), or false: the window is full,
    /// the transfer must pause until `resume` is called. A piece is always taken when nothing is outstanding,
    /// whatever its size, so a piece bigger than the window cannot stall the transfer.
    public func reserve(_ count: Int) -> Bool {
        let (taken, pausedNow) = state.withLock { state -> (Bool, Bool) in
            if state.outstanding > 0 && state.outstanding + count > window {
                defer { state.paused = true }
                return (false, !state.paused)
            }
            state.outstanding += count
            return (true, false)
        }
        if pausedNow { paused(true) }
        return taken
    }

    public func push(_ body: Body) {
        deliver(.body(body))
    }

    // MARK: The consumer's side

    /// `count` bytes handed over were written on: resumes a paused transfer once half the window is free.
    public func consumed(_ count: Int) {
        let resume: (@Sendable () -> Void)? = state.withLock { state in
            state.outstanding = max(0, state.outstanding - count)
            guard state.paused, state.outstanding <= window / 2, !state.cancelled else { return nil }
            state.paused = false
            return state.resume
        }
        if let resume {
            paused(false)
            resume()
        }
    }

    /// The consumer is gone (the client closed): the transfer is aborted.
    public func cancel() {
        let (abort, wasPaused): ((@Sendable () -> Void)?, Bool) = state.withLock { state in
            guard !state.cancelled else { return (nil, false) }
            state.cancelled = true
            defer { state.paused = false }
            return (state.abort, state.paused)
        }
        if wasPaused { paused(false) }
        abort?()
    }

    /// True while the transfer waits for the consumer (for metrics).
    public var isPaused: Bool { state.withLock { $0.paused } }
}
