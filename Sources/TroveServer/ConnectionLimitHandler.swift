internal import NIOCore
internal import TroveRules

/// Sits on the proxy's listening channel, before NIO's accept handler: counts each accepted connection in
/// (`ClientConnections`), and closes at once those past `limits.max_connections` (NIO frees a connection it was
/// never handed on).
final class ConnectionLimitHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let connections: ClientConnections
    private let environment: ProxyEnvironment

    init(connections: ClientConnections, environment: ProxyEnvironment) {
        self.connections = connections
        self.environment = environment
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let accepted = unwrapInboundIn(data)
        let metrics = environment.metrics
        guard connections.admit(maximum: environment.rules.current.rules.limits.maxConnections) else {
            metrics.recordLimit(.maxConnections)
            accepted.close(promise: nil)
            return
        }
        metrics.recordOpenConnections(connections.count)
        let connections = self.connections
        accepted.closeFuture.whenComplete { _ in
            connections.closed()
            metrics.recordOpenConnections(connections.count)
        }
        context.fireChannelRead(data)
    }
}
