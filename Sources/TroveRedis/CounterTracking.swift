public import Logging
public import NIOCore
public import TroveCore

/// Keeps an in-process tier's `TrackedCounters` current (`store.local.mode: tracked`): one connection per process,
/// to the one Redis or the master the sentinels name, on which Redis tracks every purge counter (`CLIENT TRACKING
/// … BCAST PREFIX NS:g:`) and publishes the names of those that change. While it is up, a tier hit needs no round
/// trip; the moment it closes every counter is forgotten and hits read them from Redis again (`strict`) until it is
/// back and confirmed.
///
/// Not for a Redis Cluster: each master would need its own (the rules refuse `tracked` there).
public final class CounterTracking: Sendable {
    public let counters: TrackedCounters
    private let connection: NIOLoopBound<SubscriberConnection>

    /// Starts tracking; call on `eventLoop`. With sentinels, `monitor` says where the master is.
    public init(
        settings: RedisConnectionSettings, monitor: SentinelMonitor? = nil, namespace: String, counters: TrackedCounters,
        eventLoop: any EventLoop, logger: Logger
    ) {
        precondition(settings.cluster == nil, "tracked counters need one Redis server (or sentinels), not a cluster")
        self.counters = counters
        let prefix = RedisKeys(namespace: namespace).counterPrefix
        let refusals = Refusals()
        let tracking = SubscriberConnection(eventLoop: eventLoop, settings: settings, monitor: monitor, topology: nil,
            channel: RedisTrackingHandler.channel) { _ in
            RedisTrackingHandler(setup: settings.setupCommands(selectingDatabase: false), prefix: prefix, onRefused: { message in
                // Said once per refusal, not on every retry.
                guard refusals.said != message else { return }
                refusals.said = message
                logger.warning("Redis refused to track the purge counters; hits read them on every request meanwhile",
                    metadata: ["redis.error": "\(message)"])
            }, onTracking: {
                refusals.said = nil
                counters.trackingStarted()
                logger.info("Redis tracks the purge counters: hits on the in-process tier read none of them")
            }, onInvalidate: counters.invalidate)
        }
        tracking.onClosed = {
            if counters.isTracking {
                logger.warning("the connection tracking the purge counters is lost: hits read them from Redis until it is back")
            }
            counters.trackingStopped()
        }
        connection = NIOLoopBound(tracking, eventLoop: eventLoop)
        tracking.connect()
    }

    /// Stops tracking for good (every counter forgotten).
    public func stop() async throws {
        try await connection.eventLoop.submit { [connection] in connection.value.stop() }.get()
        counters.trackingStopped()
    }
}

/// The last refusal logged, so that a server that keeps refusing is reported once. Used on the tracking
/// connection's event loop only.
private final class Refusals {
    var said: String?
}
