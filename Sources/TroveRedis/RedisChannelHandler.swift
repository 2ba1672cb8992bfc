internal import TroveHTTP
internal import NIOCore
internal import TroveCore

/// Sends batches of Redis commands over one connection and hands each batch its replies, in order.
///
/// Redis answers in the order it receives commands, so a FIFO of batches is all the matching needed. Writes
/// are flushed once per event-loop tick, so the commands of every request that arrived in the same tick
/// leave in one `writev`. Every batch has a deadline; the oldest one is checked on a timer, and when it has
/// passed the connection is closed and every waiting batch fails: a lost reply would otherwise shift every
/// later reply onto the wrong caller.
///
/// Lives on its channel's event loop only.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    typealias Completion = (Result<[RESPValue], StoreError>) -> Void

    private struct Batch {
        var expected: Int
        var replies: [RESPValue]
        let deadline: NIODeadline
        let completion: Completion
    }

    private let reader = RESPReader()
    private var pending = CircularBuffer<Batch>(initialCapacity: 64)
    private var context: ChannelHandlerContext?
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    private let commandTimeout: TimeAmount
    private let maxPending: Int
    /// Called once when the connection is gone, with why.
    var onClose: ((StoreError) -> Void)?
    private var closeReason: StoreError?

    init(commandTimeout: TimeAmount, maxPending: Int) {
        self.commandTimeout = commandTimeout
        self.maxPending = maxPending
    }

    var pendingCount: Int { pending.count }

    /// Queues a batch of commands; `completion` gets all their replies together, or the reason there are none.
    func send(_ commands: [[RESPArgument]], completion: @escaping Completion) {
        guard let context, closeReason == nil else {
            completion(.failure(closeReason ?? .unavailable("the Redis connection is not open")))
            return
        }
        guard pending.count < maxPending else {
            completion(.failure(.overloaded("\(pending.count) Redis commands are already waiting for answers")))
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands { RESPEncoder.encode(command, into: &buffer) }
        send(encoded: buffer, commands: commands.count, completion: completion)
    }

    /// Queues commands already encoded (`commands` of them, in `buffer`).
    func send(encoded buffer: ByteBuffer, commands: Int, completion: @escaping Completion) {
        guard let context, closeReason == nil else {
            completion(.failure(closeReason ?? .unavailable("the Redis connection is not open")))
            return
        }
        guard pending.count < maxPending else {
            completion(.failure(.overloaded("\(pending.count) Redis commands are already waiting for answers")))
            return
        }
        pending.append(Batch(expected: commands, replies: [], deadline: .now() + commandTimeout, completion: completion))
        context.write(wrapOutboundOut(buffer), promise: nil)
        if !flushScheduled {
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                self.context?.flush()
            }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        scheduleTimeoutCheck(on: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        failAll(.unavailable("the Redis connection closed"))
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.feed(unwrapInboundIn(data))
        do {
            while let reply = try reader.next(allocator: context.channel.allocator) {
                guard !pending.isEmpty else {
                    close(context, .protocolError("Redis sent a reply nobody asked for"))
                    return
                }
                pending[pending.startIndex].replies.append(reply)
                if pending[pending.startIndex].replies.count == pending[pending.startIndex].expected {
                    let batch = pending.removeFirst()
                    batch.completion(.success(batch.replies))
                }
                // A master demoted to a replica (a failover) refuses every write from now on: the connection is
                // given up, so that it is made again to whatever the sentinels name.
                if case .error(let message) = reply, message.hasPrefix("READONLY ") {
                    close(context, .unavailable("Redis became a read-only replica (\(message)); reconnecting"))
                    return
                }
            }
        } catch {
            close(context, .protocolError(error.description))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = closeReason ?? .unavailable("Redis closed the connection")
        closeReason = reason
        failAll(reason)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context, .unavailable(RedisTLSContext.describe(error) ?? "Redis connection error: \(error)"))
    }

    private func scheduleTimeoutCheck(on loop: any EventLoop) {
        // A quarter of the timeout between checks: a stuck command is noticed within 1.25 timeouts, and the
        // check costs nothing per command.
        let interval = max(.milliseconds(5), TimeAmount.nanoseconds(commandTimeout.nanoseconds / 4))
        timer = loop.assumeIsolated().scheduleTask(in: interval) { [self] in
            guard let context else { return }
            if let oldest = pending.first, oldest.deadline < .now() {
                close(context, .timeout("Redis did not answer within \(commandTimeout.nanoseconds / 1_000_000) ms"))
            } else {
                scheduleTimeoutCheck(on: context.eventLoop)
            }
        }
    }

    private func close(_ context: ChannelHandlerContext, _ reason: StoreError) {
        guard closeReason == nil else { return }
        closeReason = reason
        failAll(reason)
        context.close(promise: nil)
    }

    private func failAll(_ reason: StoreError) {
        if let onClose {
            self.onClose = nil
            onClose(reason)
        }
        while let batch = pending.popFirst() {
            batch.completion(.failure(reason))
        }
    }
}
