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
/// once.
public final class RedisSubscriber: FetchNotifications, Sendable {
    /// Who waits for which key.
    private final class Watchers: Sendable {
        let byKey = Mutex<[String: [(id: Int, callback: @Sendable (FetchNotice) -> Void)]]>([:])
        let nextID = Atomic<Int>(0)
    }

    private let watchers = Watchers()
    private let connection: NIOLoopBound<SubscriberConnection>

    /// Starts subscribing; call on `eventLoop`.
    public init(settings: RedisConnectionSettings, namespace: String, eventLoop: any EventLoop, logger: Logger) {
        let channel = RedisFetchLocks.noticeChannel(namespace: namespace)
        let subscriber = SubscriberConnection(eventLoop: eventLoop, settings: settings, channel: channel, logger: logger)
        connection = NIOLoopBound(subscriber, eventLoop: eventLoop)
        subscriber.onMessage = { [watchers] payload in
            guard let newline = payload.firstIndex(of: "\n"), let notice = FetchNotice(rawValue: String(payload[..<newline])) else {
                return
            }
            let key = String(payload[payload.index(after: newline)...])
            let callbacks = watchers.byKey.withLock { $0[key]?.map(\.callback) ?? [] }
            for callback in callbacks { callback(notice) }
        }
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

/// The subscribe-mode connection behind `RedisSubscriber`. Lives on its event loop only.
final class SubscriberConnection {
    private let eventLoop: any EventLoop
    private let settings: RedisConnectionSettings
    private let channelName: String
    private let logger: Logger
    private var channel: (any Channel)?
    private var backoff = Backoff()
    private var stopped = false
    var onMessage: ((String) -> Void)?

    init(eventLoop: any EventLoop, settings: RedisConnectionSettings, channel: String, logger: Logger) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.channelName = channel
        self.logger = logger
    }

    func connect() {
        guard !stopped else { return }
        let commands = settings.setupCommands(selectingDatabase: false) + [["SUBSCRIBE", .string(channelName)]]
        let handler = PushHandler(commands: commands, onRefused: { [weak self] message in
            // AUTH refused (or SUBSCRIBE): as the entry connections do, say why before retrying.
            self?.logger.warning("Redis refused the notice subscription", metadata: ["redis.error": "\(message)"])
        }) { [weak self] payload in self?.onMessage?(payload) }
        settings.connect(on: eventLoop, handler: handler)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.channel = channel
                    self.backoff.reset()
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        self.channel = nil
                        self.retry()
                    }
                case .failure:
                    self.retry()
                }
            }
    }

    private func retry() {
        guard !stopped else { return }
        let delay = backoff.next()
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay.milliseconds)) { self.connect() }
    }

    func stop() {
        stopped = true
        channel?.close(promise: nil)
    }
}

/// Sends the subscription, then passes every published message's payload on.
private final class PushHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reader = RESPReader()
    private let commands: [[RESPArgument]]
    private let onRefused: (String) -> Void
    private let onMessage: (String) -> Void

    init(commands: [[RESPArgument]], onRefused: @escaping (String) -> Void, onMessage: @escaping (String) -> Void) {
        self.commands = commands
        self.onRefused = onRefused
        self.onMessage = onMessage
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 128)
        for command in commands { RESPEncoder.encode(command, into: &buffer) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.feed(unwrapInboundIn(data))
        do {
            while let reply = try reader.next(allocator: context.channel.allocator) {
                switch reply {
                case .array(let parts) where parts.count == 3:
                    if case .bulkString(let kind) = parts[0], String(buffer: kind) == "message",
                        case .bulkString(let payload) = parts[2]
                    {
                        onMessage(String(buffer: payload))
                    }
                case .error(let message):
                    onRefused(message)
                    context.close(promise: nil)  // retried with backoff
                default:
                    break  // the subscription's confirmation, AUTH's OK
                }
            }
        } catch {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
