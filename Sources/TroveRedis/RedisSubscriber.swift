internal import TroveHTTP
public import Logging
public import NIOCore
internal import NIOPosix
internal import Synchronization
public import TroveCore

/// Listens on Redis pub/sub for the fetch notices other Trove instances publish, and hands them to the
/// requests of this instance that wait for those keys.
///
/// One connection per instance, in subscribe mode, reconnecting by itself with backoff. While it is down,
/// waiters still learn the outcome by looking the key up now and then; notices only make them learn it at
/// once. With sentinels it follows the master; in a Redis Cluster it subscribes (`SSUBSCRIBE`) at the master of
/// the channel's slot and follows that slot when it moves.
public final class RedisSubscriber: FetchNotifications, Sendable {
    /// Who waits for which key.
    private final class Watchers: Sendable {
        let byKey = Mutex<[String: [(id: Int, callback: @Sendable (FetchNotice) -> Void)]]>([:])
        let nextID = Atomic<Int>(0)
    }

    private let watchers = Watchers()
    private let connection: NIOLoopBound<SubscriberConnection>

    /// Starts subscribing; call on `eventLoop`. With sentinels, `monitor` says where the master is; in a cluster,
    /// `topology` where the channel's slot is.
    public init(
        settings: RedisConnectionSettings, monitor: SentinelMonitor? = nil, topology: RedisClusterTopology? = nil, namespace: String,
        eventLoop: any EventLoop, logger: Logger
    ) {
        let channel = RedisFetchLocks.noticeChannel(namespace: namespace)
        let onMessage: (String) -> Void = { [watchers] payload in
            guard let newline = payload.firstIndex(of: "\n"), let notice = FetchNotice(rawValue: String(payload[..<newline])) else {
                return
            }
            let key = String(payload[payload.index(after: newline)...])
            let callbacks = watchers.byKey.withLock { $0[key]?.map(\.callback) ?? [] }
            for callback in callbacks { callback(notice) }
        }
        let subscriber = SubscriberConnection(eventLoop: eventLoop, settings: settings, monitor: monitor, topology: topology, channel: channel) { sharded in
            let commands = settings.setupCommands(selectingDatabase: false) + [[sharded ? "SSUBSCRIBE" : "SUBSCRIBE", .string(channel)]]
            return RedisPushHandler(commands: commands, onRefused: { message in
                // AUTH refused (or SUBSCRIBE): as the entry connections do, say why before retrying.
                if sharded, message.contains("unknown command") {
                    topology?.shardedPubSubRefused()
                } else if message.hasPrefix("MOVED") {
                    topology?.refresh()
                    return
                }
                logger.warning("Redis refused the notice subscription", metadata: ["redis.error": "\(message)"])
            }, onMessage: onMessage)
        }
        connection = NIOLoopBound(subscriber, eventLoop: eventLoop)
        subscriber.connect()
    }

    public func watch(_ key: String, _ callback: @escaping @Sendable (FetchNotice) -> Void) -> Int {
        let id = watchers.nextID.wrappingAdd(1, ordering: .relaxed).newValue
        watchers.byKey.withLock { $0[key, default: []].append((id, callback)) }
        return id
    }

    public func unwatch(_ key: String, id: Int) {
        watchers.byKey.withLock { watchers in
            watchers[key]?.removeAll { $0.id == id }
            if watchers[key]?.isEmpty == true { watchers[key] = nil }
        }
    }

    /// Closes the connection for good.
    public func stop() async throws {
        try await connection.eventLoop.submit { [connection] in connection.value.stop() }.get()
    }
}

/// A subscribe-mode connection, made again with backoff whenever it closes, at the server that should hear it: the
/// one Redis, the master the sentinels name, or (in a cluster) the master of its channel's slot. Behind
/// `RedisSubscriber` (fetch notices) and `CounterTracking` (invalidations); `makeHandler` says what is sent and
/// heard. Lives on its event loop only.
final class SubscriberConnection {
    private let eventLoop: any EventLoop
    private let settings: RedisConnectionSettings
    private let monitor: SentinelMonitor?
    private var following: Int?
    private let topology: RedisClusterTopology?
    private var followsMap = false
    /// The server subscribed to (or being connected to).
    private var server: RedisAddress?
    private let channelName: String
    private var channel: (any Channel)?
    private var backoff = Backoff()
    private var stopped = false
    /// The connection's handler, for a sharded subscription (`SSUBSCRIBE`) or not.
    private let makeHandler: (_ sharded: Bool) -> any ChannelHandler
    /// Called each time the connection closes (or could not be made), before it is made again.
    var onClosed: (() -> Void)?

    init(
        eventLoop: any EventLoop, settings: RedisConnectionSettings, monitor: SentinelMonitor?, topology: RedisClusterTopology?, channel: String,
        makeHandler: @escaping (_ sharded: Bool) -> any ChannelHandler
    ) {
        self.makeHandler = makeHandler
        self.eventLoop = eventLoop
        self.settings = settings
        self.monitor = monitor
        self.topology = topology
        self.channelName = channel
    }

    func connect() {
        guard !stopped else { return }
        if let monitor, following == nil {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            following = monitor.follow(on: eventLoop) { master in bound.value.masterMoved(to: master) }
        }
        if let topology, !followsMap {
            followsMap = true
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            topology.follow(on: eventLoop) { bound.value.mapRead() }
        }
        let slot = RedisSlot.of(channelName)
        let sharded = topology?.shardedPubSub == true
        let named = if let topology { topology.map.node(for: slot) } else if let monitor { monitor.master } else { settings.address }
        guard let server = named else {
            retry()  // the sentinels have not named the master yet, or the cluster's map is not read yet
            return
        }
        self.server = server
        settings.connect(to: server, on: eventLoop, handler: makeHandler(sharded))
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.channel = channel
                    self.backoff.reset()
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        self.channel = nil
                        self.onClosed?()
                        self.retry()
                    }
                case .failure:
                    self.onClosed?()
                    self.retry()
                }
            }
    }

    private func retry() {
        guard !stopped else { return }
        topology?.refresh()  // the channel's master may have gone or moved (at most one query per 100 ms)
        let delay = backoff.next()
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay.milliseconds)) { self.connect() }
    }

    /// The cluster's map was read: a subscription at a master that no longer serves the channel's slot is made
    /// again where the slot is now.
    private func mapRead() {
        guard !stopped, let topology, let server, topology.map.node(for: RedisSlot.of(channelName)) != server else { return }
        channel?.close(promise: nil)  // reconnected by the close
    }

    /// Notices are published on the master: a subscription to the old one hears nothing more.
    func masterMoved(to master: RedisAddress) {
        if master != server { channel?.close(promise: nil) }  // reconnected by the close
    }

    func stop() {
        stopped = true
        if let following { monitor?.unfollow(following) }
        channel?.close(promise: nil)
    }
}
