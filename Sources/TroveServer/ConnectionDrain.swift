internal import NIOCore
internal import Synchronization

/// Tracks the proxy's connections and the requests in flight on them, so that a shutdown can stop taking
/// new requests, let those in flight finish, and close idle connections at once.
public final class ConnectionDrain: Sendable {
    private struct State {
        var busy: [ObjectIdentifier: any Channel] = [:]
        var idle: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }

    private let state = Mutex(State())

    public init() {}

    /// True once a shutdown has begun: answers then close their connections.
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Requests being answered now.
    public var inFlight: Int { state.withLock { $0.busy.count } }

    /// A connection was accepted.
    func opened(_ channel: any Channel) {
        state.withLock { $0.idle[ObjectIdentifier(channel)] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                state.idle[ObjectIdentifier(channel)] = nil
                state.busy[ObjectIdentifier(channel)] = nil
            }
        }
    }

    /// A request started on `channel`.
    func started(_ channel: any Channel) {
        state.withLock { state in
            state.idle[ObjectIdentifier(channel)] = nil
            state.busy[ObjectIdentifier(channel)] = channel
        }
    }

    /// A request's answer has been written; `closing` when the connection closes after it.
    func finished(_ channel: (any Channel)?, closing: Bool) {
        guard let channel else { return }
        state.withLock { state in
            state.busy[ObjectIdentifier(channel)] = nil
            if !closing { state.idle[ObjectIdentifier(channel)] = channel }
        }
    }

    /// Starts draining: idle connections are closed now; busy ones close after their answer.
    public func beginDraining() {
        let idle = state.withLock { state in
            state.draining = true
            defer { state.idle.removeAll() }
            return Array(state.idle.values)
        }
        for channel in idle { channel.close(promise: nil) }
    }

    /// Closes every connection left, answered or not (the drain's deadline has passed).
    public func closeAll() {
        let all = state.withLock { state in
            defer {
                state.idle.removeAll()
                state.busy.removeAll()
            }
            return Array(state.idle.values) + Array(state.busy.values)
        }
        for channel in all { channel.close(promise: nil) }
    }
}
