import TroveHTTP
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import TroveApp
import TroveCore
import TroveCurl
import TroveDemoOrigin
import TroveRules
import TroveServer
import TroveFixtures
import TroveTestSupport

/// One integration scenario: a real redis-server (or the memory store), the demo origin on a free port, a
/// manual clock, and any number of Trove instances built in-process on free ports. Everything it starts, it
/// stops.
final class Scenario: Sendable {
    static let token = "test-admin-token"
    /// One HTTP client for every scenario (a real libcurl client, not Trove's own code path).
    static let client = CurlOriginClient()

    let redis: RedisServer?
    let origin: DemoOrigin
    let clock = ManualClock()
    let namespace = "it\(UInt32.random(in: 0...UInt32.max))"
    private let originGroup: MultiThreadedEventLoopGroup

    /// - Parameters:
    ///   - redis: a real Redis store; false uses the memory store.
    ///   - origin: the demo origin's settings (its delay, its rate limit).
    init(redis: Bool, origin configuration: DemoOrigin.Configuration = .init()) async throws {
        self.redis = redis ? try RedisServer() : nil
        originGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        origin = try await DemoOrigin.start(configuration, group: originGroup)
    }

    func stop(_ troves: TroveApplication...) async {
        for trove in troves { await trove.stop() }
        try? await origin.stop()
        try? await originGroup.shutdownGracefully()
        redis?.stop()
    }

    /// The routes most scenarios use, over the demo origin's endpoints.
    static let routes = """
          - name: events-list
            match: GET /api/v1/events
            cache:
              key: "events:list:page={query.page|default:1}:limit={query.limit|default:20}"
              ttl: 5m
              tags: [events, "events:list"]
          - name: event
            match: GET /api/v1/events/{id}
            cache:
              key: "events:full:{id}"
              ttl: 10m
              tags: [events, "event:{id}"]
          - name: event-create
            match: POST /api/v1/events
            purge: {tags: ["events:list"]}
          - name: event-change
            match: PUT,PATCH,DELETE /api/v1/events/{id}
            purge: {tags: ["event:{id}", "events:list"]}
          - name: asin-stats
            match: GET /api/v1/products/stats/asin-status
            cache:
              key: "asin_stats:{header.authorization|sha256}"
              ttl: 10s
              authenticated: true
          - name: product-create
            match: POST /api/v1/products
            purge: {keys: ["asin_stats:{header.authorization|sha256}"]}
          - name: plain
            match: GET /respond/plain
            cache: {key: "plain:{query}", ttl: 1m, max_body: 1KB}
          - name: override
            match: GET /respond/override
            cache: {key: "override:{query}", ttl: 1m, override_cache_control: true}
          - name: everything-else
            match: ANY /**
            pass: true
        """

    /// A rules file for this scenario; `originURL`, `timeout` and `origin` (more settings, e.g. `rate: 2/s`)
    /// describe the demo origin; `settings` adds top-level sections (`limits: {...}`, `clients: {...}`); `store`
    /// adds settings to the Redis store's (`local: {size: 1MB}`).
    func rules(
        routes: String = Scenario.routes, originURL: String? = nil, timeout: String = "2s", origin extra: String = "", settings: String = "",
        store: String = ""
    ) throws -> RuleSet {
        try RulesLoader.parse(yaml(routes: routes, originURL: originURL, timeout: timeout, origin: extra, settings: settings, store: store),
            file: "scenario.yaml", environment: ["TROVE_ADMIN_TOKEN": Self.token])
    }

    /// The text of `rules(…)`, to write to a file (for reload scenarios).
    func yaml(
        routes: String = Scenario.routes, originURL: String? = nil, timeout: String = "2s", origin extra: String = "", settings: String = "",
        store storeExtra: String = ""
    ) -> String {
        let more = storeExtra.isEmpty ? "" : ", " + storeExtra
        let store = redis.map { "store: {redis: \"\($0.url())\", namespace: \(namespace), command_timeout: 200ms\(more)}" } ?? ""
        return """
            version: 1
            listen: 127.0.0.1:0
            admin: {listen: 127.0.0.1:0, token: {env: TROVE_ADMIN_TOKEN}}
            \(store)
            \(settings)
            origins:
              demo: {url: "\(originURL ?? origin.url)", timeout: \(timeout), connect_timeout: 1s\(extra.isEmpty ? "" : ", " + extra)}
            routes:
            \(routes)
            """
    }

    /// A Trove instance on free ports, with the scenario's clock; `rulesPath` makes it reloadable from that file.
    func trove(_ rules: RuleSet? = nil, rulesPath: String? = nil) async throws -> TroveApplication {
        var logger = Logger(label: "trove-test")
        logger.logLevel = .critical
        return try await TroveApplication.start(
            rules: rules ?? self.rules(), options: TroveApplication.Options(clock: clock, logger: logger, threads: 2,
                rulesPath: rulesPath, environment: ["TROVE_ADMIN_TOKEN": Self.token]))
    }

    /// A Trove instance as `trove(_:)` makes it, writing a JSON access log to a new temporary file: the instance,
    /// the sink (flush it before reading) and the file's path (the caller removes it).
    func troveWithAccessLog(_ rules: RuleSet) async throws -> (trove: TroveApplication, sink: AccessLogSink, path: String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trove-access-\(UUID().uuidString).log").path
        let sink = try AccessLogSink.open(path)
        var logger = Logger(label: "trove-test")
        logger.logLevel = .critical
        var options = TroveApplication.Options(clock: clock, logger: logger, threads: 2, environment: ["TROVE_ADMIN_TOKEN": Self.token])
        options.accessLog = AccessLog(logger: Logger(label: "trove.access") { _ in AccessLogHandler(format: .json, sink: sink) })
        return (try await TroveApplication.start(rules: rules, options: options), sink, path)
    }

    /// Sends the same request `count` times at once (on as many connections) and returns every answer.
    func concurrently(_ count: Int, _ trove: (Int) -> TroveApplication, _ path: String, headers: [Header] = []) async throws -> [Answer] {
        try await withThrowingTaskGroup(of: Answer.self) { group in
            for index in 0..<count {
                let instance = trove(index)
                group.addTask { try await self.request(instance, path, headers: headers) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// An answer as the client saw it.
    struct Answer: Sendable {
        let status: Int
        let headers: [Header]
        let body: String

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        var xCache: String? { header("X-Cache") }
        var cacheStatus: String? { header("Cache-Status") }

        func json() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "not a JSON object: \(body)")
        }
    }

    /// Sends a request to any URL (a Trove running as its own process, say).
    func request(url: String, _ method: String = "GET", headers: [Header] = [], body: String? = nil) async throws -> Answer {
        let result = await withCheckedContinuation { continuation in
            Self.client.send(OriginRequest(
                origin: "trove", method: method, url: url, headers: headers, body: body.map { ByteBuffer(string: $0) },
                connectTimeout: .seconds(2),
                timeout: .seconds(10), maxResponseBytes: 16 << 20)) { continuation.resume(returning: $0) }
        }
        let response = try result.get()
        return Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    /// Sends a GET to a Trove instance's proxy.
    func request(_ trove: TroveApplication, _ path: String, headers: [Header] = []) async throws -> Answer {
        try await request(trove, "GET", path, headers: headers)
    }

    /// Sends a request to a Trove instance's proxy (or, with `admin`, its admin API).
    func request(
        _ trove: TroveApplication, _ method: String, _ path: String, headers: [Header] = [], body: String? = nil,
        admin: Bool = false
    ) async throws -> Answer {
        let port = admin ? trove.adminPort : trove.publicPort
        let result = await withCheckedContinuation { continuation in
            Self.client.send(OriginRequest(
                origin: "trove", method: method, url: "http://127.0.0.1:\(port)\(path)", headers: headers,
                body: body.map { ByteBuffer(string: $0) }, connectTimeout: .seconds(2), timeout: .seconds(10),
                maxResponseBytes: 16 << 20)) { continuation.resume(returning: $0) }
        }
        let response = try result.get()
        return Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    /// Sends a GET to the admin API with the token.
    func admin(_ trove: TroveApplication, _ path: String, token: String? = Scenario.token) async throws -> Answer {
        try await admin(trove, "GET", path, token: token)
    }

    /// Calls the admin API with the token.
    func admin(_ trove: TroveApplication, _ method: String, _ path: String, json: String? = nil, token: String? = Scenario.token) async throws -> Answer {
        var headers = json == nil ? [] : [Header("Content-Type", "application/json")]
        if let token { headers.append(Header("Authorization", "Bearer \(token)")) }
        return try await request(trove, method, path, headers: headers, body: json, admin: true)
    }

    /// Sends a control request (`/__break`, `/__heal`) straight to the demo origin, not through Trove.
    func control(_ path: String) async throws {
        let result = await withCheckedContinuation { continuation in
            Self.client.send(OriginRequest(
                origin: "demo", method: "POST", url: origin.url + path, headers: [], body: nil, connectTimeout: .seconds(2),
                timeout: .seconds(5), maxResponseBytes: 1 << 20)) { continuation.resume(returning: $0) }
        }
        _ = try result.get()
    }

    /// How many requests for this exact target reached the origin.
    func originCount(_ target: String) -> Int { origin.stats.count(target: target) }
}
