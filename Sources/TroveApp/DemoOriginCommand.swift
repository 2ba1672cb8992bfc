internal import TroveHTTP
internal import ArgumentParser
internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import ServiceLifecycle
internal import UnixSignals
internal import TroveDemoOrigin
internal import TroveRules

/// `trove demo-origin`: runs the bundled slow API, to put Trove in front of.
struct DemoOriginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-origin",
        abstract: "Run a slow demo API (events, writes, per-user stats) to put Trove in front of.",
        discussion: """
            Endpoints: GET /api/v1/events?page=&limit=, GET|PUT|PATCH|DELETE /api/v1/events/{id}, \
            POST /api/v1/events, GET /api/v1/products/stats/asin-status (needs Authorization), \
            ANY /echo/**, GET /respond/**?status=&header=Name:Value&kb=. GET /__stats shows what it served; \
            POST /__break?status=503 makes it fail until POST /__heal. --rate 2 --burst 40 limits it like \
            Shopify's Admin API (429 beyond).
            """
    )

    @Option(help: ArgumentHelp("Where to listen.", valueName: "host:port"))
    var listen: String = "127.0.0.1:8000"

    @Option(help: ArgumentHelp("How long every answer takes: 200ms, 3s, or a range such as 2s..3s.", valueName: "duration"))
    var delay: String = "300ms"

    @Option(help: "How many events the API starts with.")
    var events: Int = 60

    @Option(help: ArgumentHelp(
        "Limit requests like Shopify's Admin API: a leaky bucket draining at this many per second; 429 beyond.",
        valueName: "per-second"))
    var rate: Double?

    @Option(help: ArgumentHelp("The leaky bucket's size (with --rate).", valueName: "requests"))
    var burst: Int = 40

    func run() async throws {
        guard let address = ListenAddress(parsing: listen) else { throw ValidationError("'\(listen)' is not host:port") }
        let bounds = delay.components(separatedBy: "..").map { Units.parseDuration($0) }
        guard (1...2).contains(bounds.count), let wait = bounds.first ?? nil, let longest = bounds.last ?? nil, longest >= wait else {
            throw ValidationError("'\(delay)' is not a duration such as 300ms, or a range such as 2s..3s")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await DemoOrigin.start(
            .init(host: address.host, port: address.port, delay: wait, jitter: longest - wait, events: events,
                rateLimit: rate.map { ($0, burst) }),
            group: group)
        FileHandle.standardOutput.write(Data(
            "demo origin on http://\(address.host):\(origin.port) (every answer takes \(wait == longest ? Units.format(wait) : "\(Units.format(wait)) to \(Units.format(longest))"); stats at /__stats)\n".utf8))
        let logger = Logger(label: "trove-demo-origin")
        let services = ServiceGroup(
            services: [ShutdownService {
                try? await origin.stop()
                try? await group.shutdownGracefully()
            }],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await services.run()
    }
}
