internal import Synchronization

/// How the consumer of an origin transfer reaches the origin client's thread: resume the transfer after it
/// paused, abort it when the consumer leaves. Shared by `OriginStream` (an answer handed over as it arrives)
/// and `OriginUpload` (a body read as it arrives).
public final class TransferControl: Sendable {
    private struct State {
        var cancelled = false
        var resume: (@Sendable () -> Void)?
        var abort: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    /// Tells the control how to resume and abort the transfer; called once, when the transfer starts. A
    /// control cancelled before that aborts at once.
    public func attach(resume: @escaping @Sendable () -> Void, abort: @escaping @Sendable () -> Void) {
        let cancelled = state.withLock { state in
            state.resume = resume
            state.abort = abort
            return state.cancelled
        }
        if cancelled { abort() }
    }

    /// The transfer ended: nothing reaches it any more.
    public func detach() {
        state.withLock { state in
            state.resume = nil
            state.abort = nil
        }
    }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Resumes the transfer, unless it was cancelled (or has not started: then it has not paused either).
    func resume() {
        let resume = state.withLock { $0.cancelled ? nil : $0.resume }
        resume?()
    }

    /// Aborts the transfer; true the first time.
    @discardableResult
    func cancel() -> Bool {
        let (first, abort): (Bool, (@Sendable () -> Void)?) = state.withLock { state in
            guard !state.cancelled else { return (false, nil) }
            state.cancelled = true
            return (true, state.abort)
        }
        abort?()
        return first
    }
}
