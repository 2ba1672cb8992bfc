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
    }

    /// Bytes that may be handed over and not yet consumed.
    public let window: Int
    private let state = Mutex(State())
    /// How the origin client is resumed and aborted (`attach` it when the transfer starts).
    public let control = TransferControl()
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

    public var isCancelled: Bool { control.isCancelled }

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
        let resumes = state.withLock { state -> Bool in
            state.outstanding = max(0, state.outstanding - count)
            guard state.paused, state.outstanding <= window / 2 else { return false }
            state.paused = false
            return true
        }
        if resumes {
            paused(false)
            control.resume()
        }
    }

    /// The consumer is gone (the client closed): the transfer is aborted.
    public func cancel() {
        guard control.cancel() else { return }
        let wasPaused = state.withLock { state in
            defer { state.paused = false }
            return state.paused
        }
        if wasPaused { paused(false) }
    }

    /// True while the transfer waits for the consumer (for metrics).
    public var isPaused: Bool { state.withLock { $0.paused } }
}
