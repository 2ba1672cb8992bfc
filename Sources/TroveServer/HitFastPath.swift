internal import NIOCore
internal import NIOHTTP1
internal import TroveHTTP

/// The hit fast path: sits in front of NIO's request decoder, frames each request in the bytes the client sent
/// (`RequestFraming`), and lets `ProxyHandler` answer a plain read of a fresh stored entry straight from those
/// bytes: no request head, no headers array, no exchange, no state machine, one write. Everything else (misses,
/// writes, unusual requests, anything while another answer is pending) goes to the decoder exactly as it came,
/// one whole request at a time, so the decoder never holds part of a request when the next one is framed here.
///
/// The decoder is put in the pipeline (behind this handler) only when a request first needs it: a connection that
/// only ever asks for hits, or sits idle, holds no decoder (its parser state, its buffer), which is most of what an
/// idle keep-alive connection costs beside the channel itself.
///
/// Bytes go to the decoder whole-request by whole-request (`.request(length:)`), or, once a request cannot be
/// framed here (a chunked body, an upgrade, a doubtful head), all of them from then on: the connection stays
/// on the full path.
final class HitFastPath: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// A head longer than this without its end goes to the decoder (which refuses past its own limit with 431).
    static let maxHead = 16 << 10

    private enum Mode {
        /// Between requests: the decoder holds nothing.
        case framing
        /// This many more bytes belong to a request the decoder is reading (its body).
        case forwarding(Int)
        /// The decoder reads everything from now on.
        case passing
    }

    private let proxy: ProxyHandler
    private var mode = Mode.framing
    /// The start of a head that has not all arrived.
    private var partial: ByteBuffer?
    private var decoderAdded = false

    init(proxy: ProxyHandler) {
        self.proxy = proxy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch mode {
        case .passing:
            return context.fireChannelRead(data)
        case .forwarding(let left):
            guard buffer.readableBytes > left else {
                mode = buffer.readableBytes == left ? .framing : .forwarding(left - buffer.readableBytes)
                return context.fireChannelRead(data)
            }
            forward(buffer.readSlice(length: left)!, context)
            mode = .framing
        case .framing:
            break
        }
        if var partial {
            self.partial = nil
            partial.writeBuffer(&buffer)
            buffer = partial
        }
        while buffer.readableBytes > 0 {
            let frame = buffer.withUnsafeReadableBytes { RequestFraming.frame($0, maxHead: Self.maxHead) }
            switch frame {
            case .incomplete:
                partial = buffer
                return
            case .plainRead(let read):
                if !proxy.answerAtOnce(read, in: buffer) {
                    forward(buffer.getSlice(at: buffer.readerIndex, length: read.length)!, context)
                }
                buffer.moveReaderIndex(forwardBy: read.length)
            case .request(let length):
                guard length <= buffer.readableBytes else {
                    mode = .forwarding(length - buffer.readableBytes)
                    return forward(buffer, context)
                }
                forward(buffer.readSlice(length: length)!, context)
            case .unframed:
                mode = .passing
                return forward(buffer, context)
            }
        }
    }

    private func forward(_ bytes: ByteBuffer, _ context: ChannelHandlerContext) {
        if !decoderAdded {
            decoderAdded = true
            do {
                try context.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)), position: .after(self))
            } catch {
                // Only a channel already closed refuses a handler: nothing more is read from it.
                return context.close(promise: nil)
            }
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        // Whatever the decoder made of it is now with ProxyHandler; an outcome the fast path looked up is not
        // handed to any later request.
        proxy.forgetLookup()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partial = nil
        context.fireChannelInactive()
    }
}
