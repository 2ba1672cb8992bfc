public import TroveHTTP
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import TroveCore


/// A Redis server's host and port: the one the URL names, or the master the sentinels name.
public typealias RedisAddress = ServerAddress

/// Where and how to reach Redis: the adapter's own settings, which the composition root fills from the rules
/// file's `store:` section (so this module never reads the rules).
public struct RedisConnectionSettings: Sendable, CustomStringConvertible {
    /// The server, or (with `sentinel`) the first sentinel.
    public var host: String
    public var port: Int
    public var database: Int
    public var username: String?
    public var password: String?
    public var connectTimeout: Duration
    public var commandTimeout: Duration
    /// Commands waiting for answers on one connection before new ones fail fast.
    public var maxPending: Int
    /// TLS (`rediss://`); nil for plain TCP. With sentinels, both they and the master speak it.
    public var tls: RedisTLSContext?
    /// The sentinels to ask for the master (`redis-sentinel://`); nil when `host` is the Redis to use.
    public var sentinel: RedisSentinelSettings?
    /// A cluster's seed nodes (`redis-cluster://`); nil when `host` is the Redis to use.
    public var cluster: [ServerAddress]?

    public init(
        host: String, port: Int, database: Int = 0, username: String? = nil, password: String? = nil,
        connectTimeout: Duration, commandTimeout: Duration, maxPending: Int = 4096, tls: RedisTLSContext? = nil,
        sentinel: RedisSentinelSettings? = nil, cluster: [ServerAddress]? = nil
    ) {
        self.cluster = cluster
        self.tls = tls
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.maxPending = maxPending
        self.sentinel = sentinel
    }

    /// The server the URL names (the first sentinel, with sentinels).
    var address: RedisAddress { RedisAddress(host: host, port: port) }

    /// `redis://host:port/db` (or the sentinels and master), never the credentials: for logs and `/readyz`.
    public var description: String {
        if let cluster {
            return "\(tls == nil ? "redis" : "rediss")-cluster://" + cluster.map(\.description).joined(separator: ",")
        }
        guard let sentinel else { return describe(address) }
        let servers = sentinel.sentinels.map(\.description).joined(separator: ",")
        return "\(tls == nil ? "redis" : "rediss")-sentinel://\(servers)/\(sentinel.master)/\(database)"
    }

    /// `redis://host:port/db` for one server Trove reaches.
    func describe(_ server: RedisAddress) -> String { "\(tls == nil ? "redis" : "rediss")://\(server)/\(database)" }

    /// What every connection sends before anything else: AUTH when there is a password, then (for a
    /// connection that reads and writes entries) SELECT; pub/sub ignores the database.
    func setupCommands(selectingDatabase: Bool) -> [[RESPArgument]] {
        var commands: [[RESPArgument]] = []
        if let password {
            commands.append(["AUTH"] + (username.map { [.string($0)] } ?? []) + [.string(password)])
        }
        if selectingDatabase && database != 0 {
            commands.append(["SELECT", .string(String(database))])
        }
        return commands
    }

    /// Connects to `server` on `eventLoop` with `handler` as the whole pipeline (after TLS, when spoken).
    func connect<Handler: ChannelHandler>(to server: RedisAddress, on eventLoop: any EventLoop, handler: Handler) -> EventLoopFuture<any Channel> {
        let bound = NIOLoopBound(handler, eventLoop: eventLoop)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(connectTimeout.milliseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(host: server.host)) }
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(host: server.host, port: server.port)
    }
}

/// The sentinels that watch the master Trove uses (`redis-sentinel://`), and their own credentials.
public struct RedisSentinelSettings: Sendable {
    public var sentinels: [RedisAddress]
    /// The name the sentinels monitor the master under (`sentinel monitor NAME ...`).
    public var master: String
    public var username: String?
    public var password: String?

    public init(sentinels: [RedisAddress], master: String, username: String? = nil, password: String? = nil) {
        precondition(!sentinels.isEmpty, "at least one sentinel")
        self.sentinels = sentinels
        self.master = master
        self.username = username
        self.password = password
    }

    /// AUTH for a sentinel, when it asks for a password.
    var setupCommands: [[RESPArgument]] {
        guard let password else { return [] }
        return [["AUTH"] + (username.map { [.string($0)] } ?? []) + [.string(password)]]
    }
}

/// One event loop's connection to Redis: connects (AUTH, SELECT), sends command batches, and reconnects by
/// itself with backoff when the connection is lost or a command times out.
///
/// While it is not connected, commands fail at once with `.unavailable`: that is the circuit breaker. A dead or
/// stuck Redis costs one timeout per connection cycle, not one per request, and the backoff between attempts
/// grows while Redis stays away.
///
/// Lives on its event loop only.
final class RedisConnection {
    private enum State {
        case idle
        case connecting(RedisAddress)
        case ready(RedisChannelHandler, any Channel, RedisAddress)
        case waiting(Scheduled<Void>)
        case stopped
    }

    let eventLoop: any EventLoop
    private let settings: RedisConnectionSettings
    /// Names the master when Redis is watched by sentinels; nil when the URL names the server.
    private let monitor: SentinelMonitor?
    private var following: Int?
    private let logger: Logger
    private let metrics: RedisMetrics
    private var state: State = .idle
    /// The server being connected to, or connected to: whose failures `metrics` counts.
    private var current: RedisAddress?
    private var backoff = Backoff()
    private var lastError: StoreError = .unavailable("not connected to Redis yet")
    /// The last failure logged as a warning: a reason is told once (a wrong CA, a refused password), not at every
    /// retry; the next different one is told again.
    private var lastWarned: String?
    /// Called on the loop each time the connection becomes ready (the store replays queued purges then).
    var onReady: (() -> Void)?

    init(
        eventLoop: any EventLoop, settings: RedisConnectionSettings, monitor: SentinelMonitor? = nil, metrics: RedisMetrics = RedisMetrics(),
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.monitor = monitor
        self.metrics = metrics
        self.logger = logger
    }

    var isReady: Bool {
        if case .ready = state { true } else { false }
    }

    /// Why the connection is not ready, for `/readyz`.
    var status: String {
        switch state {
        case .ready(_, _, let server): "connected to \(settings.describe(server))" + (monitor.map { ", \($0.status)" } ?? "")
        case .idle, .connecting: "connecting to \(settings)"
        case .waiting, .stopped: "not connected to \(settings): \(lastError)"
        }
    }

    func start() {
        guard case .idle = state else { return }
        if let monitor {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            following = monitor.follow(on: eventLoop) { master in bound.value.masterMoved(to: master) }
        }
        connect()
    }

    func stop() {
        // Stopped first: closing the channel reports the close, which must not read as a lost connection.
        let previous = state
        state = .stopped
        if let following { monitor?.unfollow(following) }
        switch previous {
        case .ready(_, let channel, let server):
            metrics.disconnected(server)
            channel.close(promise: nil)
        case .waiting(let scheduled):
            scheduled.cancel()
        default:
            break
        }
    }

    /// Sends a batch; fails at once when not connected.
    func send(_ commands: [[RESPArgument]], completion: @escaping RedisChannelHandler.Completion) {
        guard case .ready(let handler, _, _) = state else {
            completion(.failure(lastError))
            return
        }
        handler.send(commands, completion: completion)
    }

    /// Sends commands already encoded (`commands` of them).
    func send(encoded buffer: ByteBuffer, commands: Int, completion: @escaping RedisChannelHandler.Completion) {
        guard case .ready(let handler, _, _) = state else {
            completion(.failure(lastError))
            return
        }
        handler.send(encoded: buffer, commands: commands, completion: completion)
    }

    /// The sentinels named another master: a connection to the old one (or waiting to retry) goes to the new one
    /// now; one being made finds out when its handshake ends.
    func masterMoved(to master: RedisAddress) {
        switch state {
        case .ready(let handler, let channel, let server) where server != master:
            logger.info("the Redis master moved; reconnecting", metadata: [
                "redis.from": "\(server)", "redis.to": "\(master)",
            ])
            handler.onClose = nil
            channel.close(promise: nil)
            metrics.disconnected(server)
            state = .idle
            connect()
        case .waiting(let scheduled):
            scheduled.cancel()
            state = .idle
            connect()
        default:
            break
        }
    }

    private func connect() {
        let server: RedisAddress
        if let monitor {
            guard let master = monitor.master else {
                current = nil
                failed(.unavailable(monitor.status))
                return
            }
            server = master
        } else {
            server = settings.address
        }
        state = .connecting(server)
        current = server
        let handler = RedisChannelHandler(
            commandTimeout: .nanoseconds(Int64(settings.commandTimeout.milliseconds) * 1_000_000 + 1),
            maxPending: settings.maxPending)
        settings.connect(to: server, on: eventLoop, handler: handler)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.handshake(handler, channel, server)
                case .failure(let error):
                    guard case .connecting = self.state else { return }
                    self.failed(.unavailable("cannot connect to Redis at \(server): \(error)"))
                }
            }
    }

    /// AUTH and SELECT (and, with sentinels, ROLE: the master they named may have been demoted since), before
    /// anything else is sent.
    private func handshake(_ handler: RedisChannelHandler, _ channel: any Channel, _ server: RedisAddress) {
        guard case .connecting = state else {
            channel.close(promise: nil)
            return
        }
        handler.onClose = { [weak self] reason in self?.lost(reason) }
        let checksRole = monitor != nil
        let commands = settings.setupCommands(selectingDatabase: true) + (checksRole ? [["ROLE"]] : []) + [["PING"]]
        handler.send(commands) { result in
            guard case .connecting = self.state else {
                handler.onClose = nil
                channel.close(promise: nil)
                return
            }
            switch result {
            case .success(let replies):
                var refusal = replies.lazy.compactMap({ reply -> String? in
                    if case .error(let message) = reply { "Redis refused the connection set-up: \(message)" } else { nil }
                }).first
                if refusal == nil, checksRole, let role = Self.role(replies[replies.count - 2]), role != "master" {
                    refusal = "Redis at \(server) is a \(role == "slave" ? "replica" : role), not the master; asking the sentinels again"
                }
                if refusal == nil, let master = self.monitor?.master, master != server {
                    refusal = "the sentinels named another master (\(master)) while connecting to \(server)"
                }
                if let refusal {
                    handler.onClose = nil
                    channel.close(promise: nil)
                    self.failed(.unavailable(refusal))
                    return
                }
                self.state = .ready(handler, channel, server)
                self.metrics.connected(server)
                self.backoff.reset()
                self.lastWarned = nil
                self.logger.info("connected to Redis", metadata: ["redis.endpoint": "\(self.settings.describe(server))"])
                self.onReady?()
            case .failure(let error):
                self.failed(error)
            }
        }
    }

    /// `ROLE`'s first element: `master`, `slave` or `sentinel`.
    static func role(_ reply: RESPValue) -> String? {
        guard case .array(let parts) = reply, case .bulkString(let role)? = parts.first else { return nil }
        return String(buffer: role)
    }

    /// The connection was ready and is gone.
    private func lost(_ reason: StoreError) {
        guard case .ready(_, _, let server) = state else { return }
        metrics.disconnected(server)
        logger.warning("lost the Redis connection; requests go to the origin until it is back",
            metadata: ["redis.endpoint": "\(settings)", "redis.error": "\(reason)"])
        lastWarned = reason.description  // told just now
        failed(reason)
    }

    private func failed(_ reason: StoreError) {
        if case .stopped = state { return }
        if let current { metrics.failed(current) }
        lastError = reason
        if lastWarned != reason.description {
            lastWarned = reason.description
            logger.warning("cannot use Redis; requests go to the origin until it can be", metadata: [
                "redis.endpoint": "\(settings)", "redis.error": "\(reason)",
            ])
        }
        // The master may have moved: the sentinels are asked (at most once per 100 ms for every loop together),
        // and a new name reconnects this at once rather than after the backoff.
        monitor?.refresh()
        let delay = backoff.next()
        logger.debug("retrying Redis", metadata: ["redis.error": "\(reason)", "retry.in_ms": "\(delay.milliseconds)"])
        let scheduled = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay.milliseconds)) {
            if case .waiting = self.state { self.connect() }
        }
        state = .waiting(scheduled)
    }
}

/// Exponential backoff with jitter: 50 ms, 100 ms, … up to 5 s, each ±20 %, so that the connections of many
/// Trove instances do not all knock at once when Redis comes back.
struct Backoff {
    static let first: Duration = .milliseconds(50)
    static let limit: Duration = .seconds(5)
    private(set) var current: Duration = Backoff.first

    mutating func next() -> Duration {
        let base = current
        current = min(current * 2, Self.limit)
        let jitter = Double.random(in: 0.8...1.2)
        return .milliseconds(Int64(Double(base.milliseconds) * jitter))
    }

    mutating func reset() {
        current = Self.first
    }
}
