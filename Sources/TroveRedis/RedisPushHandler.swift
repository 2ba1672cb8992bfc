internal import NIOCore

/// Sends the subscription, then passes every published message's payload on (`message`, or `smessage` for a
/// sharded subscription). A sharded subscription the server drops (`sunsubscribe`: its slot moved to another
/// master) closes the connection, to be made again where the slot is now.
final class RedisPushHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reader = RESPReader()
    private let commands: [[RESPArgument]]
    private let onRefused: (String) -> Void
    private let onMessage: (String) -> Void
    /// Called when the server confirms the subscription: from then on no message is missed.
    var onSubscribed: (() -> Void)?

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
                    guard case .bulkString(let kind) = parts[0] else { break }
                    switch String(buffer: kind) {
                    case "message", "smessage":
                        if case .bulkString(let payload) = parts[2] { onMessage(String(buffer: payload)) }
                    case "subscribe", "ssubscribe":
                        onSubscribed?()
                    case "sunsubscribe":
                        context.close(promise: nil)
                    default:
                        break
                    }
                case .error(let message):
                    onRefused(message)
                    context.close(promise: nil)  // retried with backoff
                default:
                    break  // AUTH's OK
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
