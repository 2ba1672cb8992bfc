public import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import Foundation
internal import Synchronization

/// A slow legacy API to put Trove in front of: the demo of `make run`, and the real HTTP origin of the tests.
///
/// It imitates the seeds' APIs (an events API over a slow backend, per-user stats) with a configurable delay,
/// accepts writes, and counts everything it served, so that a person or a test can see what reached it:
///
/// | endpoint | does |
/// |---|---|
/// | `GET /api/v1/events?page=&limit=&category=&status=&search=` | a page of events (about 2 KB for 20) |
/// | `GET /api/v1/events/{id}` | one event, or 404 |
/// | `POST /api/v1/events`, `PUT`/`PATCH`/`DELETE /api/v1/events/{id}` | change the events |
/// | `GET /api/v1/products/stats/asin-status` | per-user stats (needs `Authorization`) |
/// | `POST /api/v1/products` | adds a product for the user in `Authorization` |
/// | `ANY /echo/**` | the request as JSON (method, path, query, headers, body) |
/// | `GET /respond/**?status=&header=Name:Value&kb=` | an answer built from the query |
/// | `GET /__close` | closes the connection without answering |
/// | `GET /__stats`, `GET /__count?target=`, `POST /__reset` | what was served; reset the counts |
/// | `POST /__break?status=503[&retry_after=2]`, `POST /__heal` | answer every request with that status (and that `Retry-After`, in seconds, on 429 and 503) from now on; stop |
/// | `/api/categories/…`, `/api/products/…`, `/api/variants/…` | a Django REST catalog (`DemoCatalog`) |
/// | `/api/areas/{kind}`, `/api/property-types`, `/api/property/valuation` | a Flask property API |
///
/// Every answer except `/__*` waits `delay` first; a request can ask for another delay with the
/// `X-Origin-Delay-Ms` header or the `delay_ms` query parameter. With a `rateLimit`, it behaves like
/// Shopify's Admin API: a leaky bucket of `burst` requests draining at `perSecond`; a request that finds it
/// full gets 429 with `Retry-After`.
public final class DemoOrigin: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Every answer waits `delay`, plus a random part of `jitter` (uniformly drawn).
        public var delay: Duration
        public var jitter: Duration
        public var events: Int
        /// Requests per second and bucket size of a Shopify-like leaky bucket; nil for no limit.
        public var rateLimit: (perSecond: Double, burst: Int)?

        public init(
            host: String = "127.0.0.1", port: Int = 0, delay: Duration = .zero, jitter: Duration = .zero, events: Int = 60,
            rateLimit: (perSecond: Double, burst: Int)? = nil
        ) {
            self.host = host
            self.port = port
            self.delay = delay
            self.jitter = jitter
            self.events = events
            self.rateLimit = rateLimit
        }
    }

    public let port: Int
    /// The address it listens on (`127.0.0.1` unless the configuration says otherwise).
    public let host: String
    public let stats: DemoOriginStats
    private let channel: any Channel
    private let connections: Connections
    let data: DemoData

    /// The connections clients have open, so that `stop()` can close them: an origin that is down does not
    /// keep answering on connections opened before.
    final class Connections: Sendable {
        private let open = Mutex<[ObjectIdentifier: any Channel]>([:])

        func add(_ channel: any Channel) {
            open.withLock { $0[ObjectIdentifier(channel)] = channel }
            channel.closeFuture.whenComplete { [self] _ in _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
        }

        /// Closes them all and returns once every one is closed, so that nothing is answered after `stop()`.
        func closeAll() async {
            for channel in open.withLock({ Array($0.values) }) {
                try? await channel.close()
            }
        }
    }

    private init(host: String, port: Int, stats: DemoOriginStats, channel: any Channel, connections: Connections, data: DemoData) {
        self.host = host
        self.port = port
        self.stats = stats
        self.channel = channel
        self.connections = connections
        self.data = data
    }

    /// Starts listening; `configuration.port` 0 picks a free port (see `port`).
    public static func start(_ configuration: Configuration, group: any EventLoopGroup) async throws -> DemoOrigin {
        let stats = DemoOriginStats()
        let data = DemoData(events: configuration.events, rateLimit: configuration.rateLimit)
        let delay = configuration.delay...(configuration.delay + configuration.jitter)
        let connections = Connections()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            // No SO_REUSEPORT: with it, another server given the same port (a test's `freePort` race) would
            // listen beside this one and silently take half its connections.
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        DemoOriginHandler(delay: delay, stats: stats, data: data))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        return DemoOrigin(host: configuration.host, port: channel.localAddress?.port ?? configuration.port, stats: stats, channel: channel,
            connections: connections, data: data)
    }

    /// Stops listening and closes every open connection: from now on the origin is unreachable.
    public func stop() async throws {
        try await channel.close()
        await connections.closeAll()
    }

    public var url: String { "http://\(host):\(port)" }
}

/// What the demo origin served, for `/__stats` and for tests.
public final class DemoOriginStats: Sendable {
    public struct Snapshot: Sendable, Codable, Equatable {
        public var total = 0
        public var byMethod: [String: Int] = [:]
        /// Counted by path (without the query).
        public var byPath: [String: Int] = [:]
        /// Counted by path and query, as sent.
        public var byTarget: [String: Int] = [:]
        public var byStatus: [String: Int] = [:]
        public var inFlight = 0
        public var maxInFlight = 0
        /// Requests marked `X-Loadtest-Measured` (the load-test tool marks those of its measured part), and
        /// their statuses: the origin's own count of the measured part, exact whatever the timing.
        public var measured = 0
        public var measuredByStatus: [String: Int] = [:]
        /// `/stream`: answers started, bytes written, answers waiting for their client now, answers whose client
        /// left before the end.
        public var streams = 0
        public var streamedBytes = 0
        public var streamsBlocked = 0
        public var streamsAborted = 0
        /// `/sink`: request body bytes received (and dropped).
        public var sunkBytes = 0
    }

    private let state = Mutex(Snapshot())

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Requests that reached the origin for this exact target (`/api/v1/events?page=1`).
    public func count(target: String) -> Int { state.withLock { $0.byTarget[target] ?? 0 } }

    /// Requests that reached the origin for this path, whatever the query.
    public func count(path: String) -> Int { state.withLock { $0.byPath[path] ?? 0 } }

    public func reset() { state.withLock { $0 = Snapshot() } }

    func started(method: String, target: String, measured: Bool) {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        state.withLock { stats in
            stats.total += 1
            if measured { stats.measured += 1 }
            stats.byMethod[method, default: 0] += 1
            stats.byPath[path, default: 0] += 1
            stats.byTarget[target, default: 0] += 1
            stats.inFlight += 1
            stats.maxInFlight = max(stats.maxInFlight, stats.inFlight)
        }
    }

    func streamStarted() { state.withLock { $0.streams += 1 } }
    func streamed(_ bytes: Int) { state.withLock { $0.streamedBytes += bytes } }
    func streamBlocked(_ blocked: Bool) { state.withLock { $0.streamsBlocked += blocked ? 1 : -1 } }
    func streamAborted() { state.withLock { $0.streamsAborted += 1 } }
    func sunk(_ bytes: Int) { state.withLock { $0.sunkBytes += bytes } }

    func finished(status: Int, measured: Bool) {
        state.withLock { stats in
            stats.inFlight -= 1
            stats.byStatus[String(status), default: 0] += 1
            if measured { stats.measuredByStatus[String(status), default: 0] += 1 }
        }
    }
}
