public import NIOCore
internal import NIOHTTP1
internal import NIOPosix
public import TroveRules

/// The two listeners of a running Trove: the public proxy and the admin API, on one event loop group.
public final class TroveServer: Sendable {
    public let environment: ProxyEnvironment
    private let publicChannel: any Channel
    private let adminChannel: any Channel

    /// The port the proxy listens on (useful when the rules said port 0).
    public var publicPort: Int { publicChannel.localAddress?.port ?? 0 }
    /// The port the admin API listens on.
    public var adminPort: Int { adminChannel.localAddress?.port ?? 0 }

    private init(environment: ProxyEnvironment, publicChannel: any Channel, adminChannel: any Channel) {
        self.environment = environment
        self.publicChannel = publicChannel
        self.adminChannel = adminChannel
    }

    /// Binds both listeners.
    /// - Parameter adminToken: the bearer token the admin API requires; nil only when the rules allow an
    ///   unauthenticated loopback admin API.
    public static func start(
        environment: ProxyEnvironment, listen: ListenAddress, admin: ListenAddress, adminToken: String?,
        group: any EventLoopGroup, drain: ConnectionDrain? = nil, connections: ClientConnections = ClientConnections()
    ) async throws -> TroveServer {
        let publicChannel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Out of descriptors (EMFILE), accept fails at once and would be retried at once, forever:
                    // back off instead (NIO's async bootstrap adds this handler; this one does not by itself).
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: false))
                    try channel.pipeline.syncOperations.addHandler(ConnectionLimitHandler(connections: connections, environment: environment))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Each connection keeps its receive buffer between reads (NIO pools it per channel): starting at 512
            // bytes instead of NIO's 2048 saves 1.5 KiB per idle keep-alive connection (idle-connections.py:
            // 6.6 -> 5.0 KiB), and the buffer still grows at once for a bigger request.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // NIO's request decoder, then ProxyHandler, which answers pipelined requests in order, malformed
                    // ones with 400, and encodes its answers itself (see there and ResponseEncoding why).
                    // In front of both, the hit fast path, which answers plain reads of fresh entries from the raw bytes
                    // and hands everything else to the decoder a whole request at a time; it adds the decoder when a
                    // request first needs it (see HitFastPath).
                    let proxy = ProxyHandler(environment: environment, drain: drain)
                    try channel.pipeline.syncOperations.addHandler(HitFastPath(proxy: proxy))
                    drain?.opened(channel)
                    try channel.pipeline.syncOperations.addHandler(proxy)
                }
            }
            .bind(host: listen.host, port: listen.port)
            .get()
        let adminChannel: any Channel
        do {
            adminChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: false))
                    }
                }
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(AdminHandler(environment: environment, token: adminToken))
                    }
                }
                .bind(host: admin.host, port: admin.port)
                .get()
        } catch {
            try? await publicChannel.close()
            throw error
        }
        return TroveServer(environment: environment, publicChannel: publicChannel, adminChannel: adminChannel)
    }

    /// Stops accepting connections on both listeners.
    public func close() async {
        try? await publicChannel.close()
        try? await adminChannel.close()
    }

    /// Stops accepting proxy connections (the admin API stays up while requests drain).
    public func closePublic() async {
        try? await publicChannel.close()
    }
}
