internal import NIOCore
internal import Synchronization

/// Tracks the proxy's connections and how many requests are in flight, so that a shutdown can stop taking
/// new requests, let those in flight finish, and close idle connections at once.
///
/// Per request it costs two relaxed atomic additions; connections are registered when they open and close.
/// Which connection is idle only its own handler knows: draining tells every handler (on its loop) with a
/// `ConnectionDrain.Event`, and an idle one closes itself.
public final class ConnectionDrain: Sendable {
    /// Sent down each connection's pipeline when draining begins.
    struct Event: Sendable {}

    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let requests = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)

    public init() {}

    /// True once a shutdown has begun: answers then close their connections.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Requests being answered now.
    public var inFlight: Int { requests.load(ordering: .relaxed) }

    /// A connection was accepted.
    func opened(_ channel: any Channel) {
        connections.withLock { $0[ObjectIdentifier(channel)] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    /// A request started.
    func started() {
        requests.add(1, ordering: .relaxed)
    }

    /// A request's answer has been written.
    func finished() {
        requests.subtract(1, ordering: .relaxed)
    }

    /// Starts draining: every connection is told; idle ones close now, busy ones after their answer.
    public func beginDraining() {
        draining.store(true, ordering: .relaxed)
        for channel in connections.withLock({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(Event())
        }
    }

    /// Closes every connection left, answered or not (the drain's deadline has passed).
    public func closeAll() {
        for channel in connections.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }
}
