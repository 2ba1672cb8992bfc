internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import TroveCore
internal import TroveRules

/// Serves the admin API on its own listener: purge, explain, entry, health, readiness and statistics.
///
/// Every endpoint but `/healthz` needs `Authorization: Bearer TOKEN` when a token is configured; the token
/// is compared in constant time. Answers are JSON.
///
/// | endpoint | answer |
/// |---|---|
/// | `POST /purge` `{"tags": [], "keys": [], "routes": [], "all": false}` | what was invalidated |
/// | `GET /explain?request=GET%20/path&header=Name:%20value` | the same as `trove explain --json` |
/// | `GET /entry?key=KEY` | the entry's status, age, TTL, tags, size, and whether a purge invalidated it |
/// | `GET /healthz` | alive |
/// | `GET /readyz` | rules loaded; store ready or degraded |
/// | `GET /stats` | requests, hits, misses, passes, hit ratio, overall and per route |
/// | `GET /metrics` | the same and more in Prometheus' text format (`ProxyMetrics`) |
/// | `POST /reload` | re-reads the rules file; refused (and the old rules kept) when it has errors |
/// | `POST` webhooks.shopify.path | a Shopify webhook (signed with HMAC, no bearer token), when the rules put it here |
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let environment: ProxyEnvironment
    private let token: [UInt8]?
    private var store: (any CacheStore<ByteBuffer>)?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var bodyTooLarge = false
    /// Bodies bigger than this are refused with 413 (purge requests are small; Shopify's webhooks stay far below).
    static let maxBody = 4 << 20

    /// - Parameter token: the bearer token; nil only when the rules allow an unauthenticated loopback admin API.
    init(environment: ProxyEnvironment, token: String?) {
        self.environment = environment
        self.token = token.map { Array($0.utf8) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        store = environment.stores.store(for: context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            bodyTooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes <= Self.maxBody {
                body.writeBuffer(&chunk)
            } else {
                bodyTooLarge = true
            }
        case .end:
            guard let head else { return }
            self.head = nil
            handle(context: context, head: head)
        }
    }

    /// A malformed request: NIO's protocol error handler, in front, has already answered 400 with
    /// `Connection: close`; the connection cannot be read further, so close it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        let query = components?.queryItems ?? []
        if bodyTooLarge {
            write(context: context, head: head, answer: .error(413, "the body is larger than \(Self.maxBody >> 20) MiB"))
            return
        }
        let loaded = environment.rules.current
        // A webhook proves itself with its signature, not the admin token.
        if let webhook = loaded.rules.shopifyWebhook, webhook.listener == .admin,
            WebhookEndpoint.matches(webhook, method: head.method.token, uri: head.uri), let store
        {
            WebhookEndpoint.handle(webhook, loaded: loaded, headers: head.headers.map { Header($0.name, $0.value) },
                body: Array(body.readableBytesView), client: context.channel.remoteAddress?.ipAddress, environment: environment,
                store: store
            ) { answer in
                self.write(context: context, head: head, answer: .json(answer.status, answer.json))
            }
            return
        }
        if path != "/healthz" && !authorized(head) {
            var answer = Answer.error(401, "missing or wrong bearer token: send Authorization: Bearer $TROVE_ADMIN_TOKEN")
            answer.headers.append(("WWW-Authenticate", "Bearer realm=\"trove-admin\""))
            write(context: context, head: head, answer: answer)
            return
        }
        switch (head.method, path) {
        case (.GET, "/healthz"):
            write(context: context, head: head, answer: .json(200, ["status": "ok"]))
        case (.GET, "/readyz"):
            storeHealth(context) { self.write(context: context, head: head, answer: self.readiness($0)) }
        case (.GET, "/stats"):
            storeHealth(context) { self.write(context: context, head: head, answer: self.statistics($0)) }
        case (.GET, "/metrics"):
            write(context: context, head: head, answer: Answer(status: 200,
                headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                body: ByteBuffer(bytes: environment.metrics.exposition())))
        case (.GET, "/explain"):
            write(context: context, head: head, answer: explain(query))
        case (.GET, "/entry"):
            entry(query) { self.write(context: context, head: head, answer: $0) }
        case (.POST, "/purge"):
            purge { self.write(context: context, head: head, answer: $0) }
        case (.POST, "/reload"):
            reload(on: context.eventLoop) { self.write(context: context, head: head, answer: $0) }
        case (_, "/healthz"), (_, "/readyz"), (_, "/stats"), (_, "/metrics"), (_, "/explain"), (_, "/entry"), (_, "/purge"), (_, "/reload"):
            write(context: context, head: head, answer: .error(405, "\(head.method.token) is not allowed on \(path)"))
        default:
            write(context: context, head: head, answer: .error(404,
                "no such endpoint \(path); try GET /healthz, /readyz, /stats, /metrics, /explain?request=…, /entry?key=…, or POST /purge, /reload"))
        }
    }

    // MARK: Authentication

    private func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let token else { return true }
        guard let header = head.headers.first(name: "Authorization"), header.hasPrefix("Bearer ") else { return false }
        return Self.constantTimeEquals(Array(header.utf8.dropFirst("Bearer ".utf8.count)), token)
    }

    /// Compares every byte whatever the first difference, so the time taken does not tell how much of a guess
    /// was right.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }

    // MARK: Endpoints

    private func storeHealth(_ context: ChannelHandlerContext, _ body: @escaping (StoreHealth) -> Void) {
        environment.stores.health(on: context.eventLoop).assumeIsolated().whenComplete { result in
            body((try? result.get()) ?? StoreHealth(ready: false, status: "the store's health is unknown"))
        }
    }

    private func readiness(_ health: StoreHealth) -> Answer {
        let loaded = environment.rules.current
        return .json(200, [
            "status": health.ready ? "ready" : "degraded",
            "rules": ["file": loaded.rules.file, "version": loaded.rules.fingerprint, "loaded_at": iso(loaded.loadedAt)],
            "store": ["kind": environment.stores.name, "ready": health.ready, "status": health.status],
        ])
    }

    private func statistics(_ health: StoreHealth) -> Answer {
        let loaded = environment.rules.current
        return .json(200, [
            "rules": ["file": loaded.rules.file, "version": loaded.rules.fingerprint, "loaded_at": iso(loaded.loadedAt)],
            "store": ["kind": environment.stores.name, "ready": health.ready, "status": health.status],
            "total": Self.describe(environment.stats.total),
            "routes": environment.stats.byRoute.mapValues(Self.describe),
        ])
    }

    static func describe(_ snapshot: ProxyStats.Snapshot) -> [String: Any] {
        var fields: [String: Any] = [
            "requests": snapshot.requests, "hits": snapshot.hits, "misses": snapshot.misses, "stale": snapshot.stale,
            "bypasses": snapshot.bypasses, "passes": snapshot.passes, "errors": snapshot.errors, "stored": snapshot.stored,
            "collapsed": snapshot.collapsed,
        ]
        fields["hit_ratio"] = snapshot.hitRatio.map { ($0 * 10_000).rounded() / 10_000 } ?? NSNull()
        return fields
    }

    private func explain(_ query: [URLQueryItem]) -> Answer {
        guard let request = query.first(where: { $0.name == "request" })?.value, !request.isEmpty else {
            return .error(400, "say which request: /explain?request=GET%20/api/v1/events%3Fpage%3D2")
        }
        let words = request.split(separator: " ", omittingEmptySubsequences: true)
        guard (1...2).contains(words.count) else { return .error(400, "the request must be 'METHOD /path?query'") }
        let method = words.count == 2 ? words[0].uppercased() : "GET"
        let target = String(words.last!)
        var headers: [Header] = []
        for item in query where item.name == "header" {
            guard let value = item.value, let colon = value.firstIndex(of: ":") else {
                return .error(400, "header '\(item.value ?? "")' has no ':'; write header=Name:%20value")
            }
            headers.append(Header(String(value[..<colon]).trimmingCharacters(in: .whitespaces),
                String(value[value.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        let rules = environment.rules.current.rules
        let head = RequestHead(method: method, target: target, headers: headers)
        let explanation = Explanation(plan: rules.plan(for: head), rules: rules, request: head)
        guard let data = try? JSONEncoder.sorted.encode(explanation) else { return .error(500, "cannot encode the explanation") }
        return Answer(status: 200, body: ByteBuffer(bytes: data))
    }

    private func entry(_ query: [URLQueryItem], answer: @escaping (Answer) -> Void) {
        guard let key = query.first(where: { $0.name == "key" })?.value, !key.isEmpty else {
            answer(.error(400, "say which key: /entry?key=events:full:42 (trove explain shows a request's key)"))
            return
        }
        guard let store else { return answer(.error(503, "no store")) }
        let now = environment.clock.nowMilliseconds()
        store.inspect(key: key) { result in
            switch result {
            case .failure(let error):
                answer(.error(503, "the store cannot answer: \(error)"))
            case .success(nil):
                answer(.error(404, "no entry is stored under '\(key)'"))
            case .success(let inspection?):
                let meta = inspection.meta
                answer(.json(200, [
                    "key": key, "route": meta.route, "status": meta.status, "valid": inspection.valid,
                    "age": meta.age(at: now), "ttl": meta.remainingTTL(at: now),
                    "stale_for": max(0, Int((meta.staleUntil - max(now, meta.freshUntil)) / 1000)),
                    "stored_at": self.iso(meta.storedAt), "tags": meta.tags, "size": meta.bodyLength,
                    "headers": meta.headers.map { [$0.name, $0.value] },
                ]))
            }
        }
    }

    /// Re-reads the rules file off the event loop (it reads a file), and answers with what happened.
    private func reload(on loop: any EventLoop, answer: @escaping (Answer) -> Void) {
        guard let reload = environment.reload else {
            return answer(.error(409, "these rules were not read from a file, so there is nothing to re-read"))
        }
        let promise = loop.makePromise(of: ReloadOutcome.self)
        Task { promise.succeed(reload()) }
        promise.futureResult.assumeIsolated().whenSuccess { outcome in
            if outcome.applied {
                answer(.json(200, ["applied": true, "version": outcome.version, "warnings": outcome.diagnostics,
                    "needs_restart": outcome.needsRestart]))
            } else {
                answer(.json(400, ["applied": false, "version": outcome.version, "errors": outcome.diagnostics,
                    "error": "the rules file was refused; the rules in force stay"]))
            }
        }
    }

    private struct PurgeBody: Decodable {
        var tags: [String]?
        var keys: [String]?
        var routes: [String]?
        var all: Bool?
    }

    private func purge(answer: @escaping (Answer) -> Void) {
        let data = Data(body.readableBytesView)
        let request: PurgeBody
        do {
            let object = try JSONSerialization.jsonObject(with: data)
            guard let fields = object as? [String: Any] else { throw AdminError("the body must be a JSON object") }
            let unknown = Set(fields.keys).subtracting(["tags", "keys", "routes", "all"])
            guard unknown.isEmpty else {
                throw AdminError("unknown field(s) \(unknown.sorted().joined(separator: ", ")); use tags, keys, routes or all")
            }
            request = try JSONDecoder().decode(PurgeBody.self, from: data)
        } catch let error as AdminError {
            return answer(.error(400, error.message))
        } catch {
            return answer(.error(400, "the body must be JSON like {\"tags\": [\"events\"]} (\(error.localizedDescription))"))
        }
        let loaded = environment.rules.current
        let cachedRoutes = loaded.rules.routes.filter { $0.cachePolicy != nil }.map(\.name)
        for route in request.routes ?? [] where !cachedRoutes.contains(route) {
            return answer(.error(400, "no cached route is named '\(route)'; cached routes: \(cachedRoutes.joined(separator: ", "))"))
        }
        let purges = PurgeSet(tags: request.tags ?? [], keys: request.keys ?? [], routes: request.routes ?? [],
            everything: request.all ?? false)
        guard !purges.isEmpty else {
            return answer(.error(400, "nothing to purge: give tags, keys, routes or \"all\": true"))
        }
        if let refusal = purges.refusal(maxPurge: loaded.rules.limits.maxPurge) {
            environment.metrics.recordLimit(.maxPurge)
            return answer(.error(413, refusal))
        }
        guard let store else { return answer(.error(503, "no store")) }
        store.purge(PurgeRequest(purges: purges, counterLifetime: loaded.counterLifetime)) { result in
            let failed = result.isFailure
            self.environment.metrics.recordPurge(.admin, failed: failed)
            switch result {
            case .success(let report):
                self.environment.logger.info("admin purge", metadata: [
                    "purge.tags": "\(report.tags)", "purge.keys": "\(report.keys.map(\.key))",
                    "purge.routes": "\(report.routes)", "purge.all": "\(report.all)",
                ])
                answer(.json(200, ["purged": [
                    "all": report.all, "routes": report.routes, "tags": report.tags,
                    "keys": report.keys.map { ["key": $0.key, "found": $0.found] },
                ]]))
            case .failure(let error):
                answer(.json(202, [
                    "queued": true,
                    "reason": "the store is unavailable (\(error)); the purge is applied as soon as it is back, and "
                        + "until then nothing is served from it",
                ]))
            }
        }
    }

    // MARK: Writing

    struct Answer {
        var status: Int
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        var body: ByteBuffer

        static func json(_ status: Int, _ object: Any) -> Answer {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]))
                ?? Data("{}".utf8)
            return Answer(status: status, body: ByteBuffer(bytes: data + Data("\n".utf8)))
        }

        static func error(_ status: Int, _ message: String) -> Answer {
            json(status, ["error": message])
        }
    }

    private struct AdminError: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    private func iso(_ milliseconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    private func write(context: ChannelHandlerContext, head: HTTPRequestHead, answer: Answer) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders(answer.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(answer.body.readableBytes))
        if !head.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let response = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: answer.status), headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(answer.body))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }
}
