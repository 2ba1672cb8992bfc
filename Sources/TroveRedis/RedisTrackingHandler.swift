internal import NIOCore

/// Turns on server-assisted tracking of the purge counters on its own connection, in RESP2, and passes each
/// invalidation on: `CLIENT ID`, then `CLIENT TRACKING on REDIRECT <that id> BCAST PREFIX <counters>` (the
/// connection redirects to itself) and `SUBSCRIBE __redis__:invalidate`, where the server then publishes the
/// names of the counters that changed (or nil: every key may have, after FLUSHALL/FLUSHDB).
///
/// `onTracking` is called once the server has confirmed both, so that no change after it can be missed; any
/// refusal closes the connection (made again with backoff by its owner, which forgets every counter on close).
final class RedisTrackingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let channel = "__redis__:invalidate"

    private enum State {
        /// Waiting for the replies to the set-up commands (AUTH), then the connection's id.
        case identifying(setupReplies: Int)
        /// `CLIENT TRACKING` sent: waiting for its OK, then the subscription's confirmation.
        case enabling(trackingConfirmed: Bool)
        case tracking
        case closed
    }

    private let reader = RESPReader()
    private let setup: [[RESPArgument]]
    private let prefix: String
    private var state: State
    private let onRefused: (String) -> Void
    private let onTracking: () -> Void
    private let onInvalidate: ([String]?) -> Void

    init(
        setup: [[RESPArgument]], prefix: String, onRefused: @escaping (String) -> Void, onTracking: @escaping () -> Void,
        onInvalidate: @escaping ([String]?) -> Void
    ) {
        self.setup = setup
        self.prefix = prefix
        self.state = .identifying(setupReplies: setup.count)
        self.onRefused = onRefused
        self.onTracking = onTracking
        self.onInvalidate = onInvalidate
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 128)
        for command in setup + [["CLIENT", "ID"]] { RESPEncoder.encode(command, into: &buffer) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.feed(unwrapInboundIn(data))
        do {
            while let reply = try reader.next(allocator: context.channel.allocator) {
                handle(reply, context: context)
            }
        } catch {
            refuse("an unreadable reply: \(error)", context: context)
        }
    }

    private func handle(_ reply: RESPValue, context: ChannelHandlerContext) {
        if case .error(let message) = reply { return refuse(message, context: context) }
        switch state {
        case .identifying(let setupReplies) where setupReplies > 0:
            state = .identifying(setupReplies: setupReplies - 1)
        case .identifying:
            guard case .integer(let id) = reply else { return refuse("CLIENT ID answered \(reply)", context: context) }
            var buffer = context.channel.allocator.buffer(capacity: 128)
            RESPEncoder.encode(["CLIENT", "TRACKING", "on", "REDIRECT", .string(String(id)), "BCAST", "PREFIX", .string(prefix)], into: &buffer)
            RESPEncoder.encode(["SUBSCRIBE", .string(Self.channel)], into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            state = .enabling(trackingConfirmed: false)
        case .enabling(false):
            guard case .simpleString("OK") = reply else { return refuse("CLIENT TRACKING answered \(reply)", context: context) }
            state = .enabling(trackingConfirmed: true)
        case .enabling(true):
            guard case .array(let parts) = reply, parts.first == .bulkString(ByteBuffer(string: "subscribe")) else {
                return refuse("SUBSCRIBE answered \(reply)", context: context)
            }
            state = .tracking
            onTracking()
        case .tracking:
            guard case .array(let parts) = reply, parts.count == 3, parts[0] == .bulkString(ByteBuffer(string: "message")) else { return }
            switch parts[2] {
            case .null:
                onInvalidate(nil)
            case .array(let keys):
                onInvalidate(keys.compactMap { if case .bulkString(let name) = $0 { String(buffer: name) } else { nil } })
            default:
                // Not a shape Redis sends: forget everything rather than guess.
                onInvalidate(nil)
            }
        case .closed:
            break
        }
    }

    private func refuse(_ message: String, context: ChannelHandlerContext) {
        if case .closed = state { return }
        state = .closed
        onRefused(message)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state = .closed
        context.close(promise: nil)
    }
}
