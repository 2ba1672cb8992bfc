internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import TroveCore
internal import TroveRules

/// Serves one client connection: plans each request with the rules, runs the read-through state machine
/// (lookup, fetch, store, purge) and writes the answer with `X-Cache`, `Cache-Status` and `Age`.
///
/// NIO's pipelining handler in front of it hands over one request at a time, so at most one `Exchange` is in
/// flight per connection. Store callbacks arrive on this loop; origin answers are hopped back to it. Errors
/// become statuses here and only here: origin unreachable 502, origin too slow 504, bad request 400, body
/// too large 413.
final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let environment: ProxyEnvironment
    private var store: (any CacheStore<ByteBuffer>)?
    private var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false

    init(environment: ProxyEnvironment) {
        self.environment = environment
    }

    /// One request from the moment it is complete to the moment its answer is written.
    private final class Exchange {
        let head: HTTPRequestHead
        let body: ByteBuffer?
        let plan: RequestPlan
        var machine: ReadThroughStateMachine
        let counters: ProxyStats.Counters
        var entry: (meta: EntryMeta, body: ByteBuffer)?
        var response: OriginResponse<ByteBuffer>?
        var fetchMethod = "GET"

        init(head: HTTPRequestHead, body: ByteBuffer?, plan: RequestPlan, machine: ReadThroughStateMachine, counters: ProxyStats.Counters) {
            self.head = head
            self.body = body
            self.plan = plan
            self.machine = machine
            self.counters = counters
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        store = environment.stores.store(for: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
            bodyTooLarge = false
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > environment.maxRequestBody {
                bodyTooLarge = true
                body = nil
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            start(head, body: body)
        }
    }

    /// A malformed request: NIO's protocol error handler, in front, has already answered 400 with
    /// `Connection: close`; the connection cannot be read further, so close it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Running a request

    private func start(_ head: HTTPRequestHead, body: ByteBuffer?) {
        let loaded = environment.rules.current
        let headers = head.headers.map { (name: $0.name, value: $0.value) }
        let plan = loaded.rules.plan(for: RequestHead(method: head.method.rawValue, target: head.uri, headers: headers))
        let machine = ReadThroughStateMachine(
            plan: plan, requestHeaders: headers.map { Header($0.name, $0.value) }, clock: environment.clock,
            counterLifetime: loaded.counterLifetime)
        let exchange = Exchange(head: head, body: body, plan: plan, machine: machine,
            counters: environment.stats.counters(route: plan.route?.name))
        if bodyTooLarge {
            respond(.init(source: .trove(status: 413, message: "the request body is larger than \(Units.format(bytes: environment.maxRequestBody))"),
                cacheStatus: nil, age: nil, omitBody: false), exchange, close: true)
            return
        }
        execute(exchange.machine.start(), exchange)
    }

    private func execute(_ action: ReadThroughStateMachine.Action, _ exchange: Exchange) {
        guard let store else { return }
        switch action {
        case .lookup(let dependencies):
            store.lookup(dependencies) { outcome in
                if case .found(let meta, let body, _) = outcome { exchange.entry = (meta, body) }
                if case .unavailable(let error) = outcome {
                    self.environment.logger.debug("store unavailable for a lookup", metadata: ["store.error": "\(error)"])
                }
                self.execute(exchange.machine.lookupCompleted(outcome.result), exchange)
            }
        case .fetch(let fetch):
            fetchFromOrigin(fetch, exchange)
        case .store(let pending, _):
            guard let response = exchange.response else { return internalError("store without an origin answer", exchange) }
            store.store(StoreWrite(dependencies: pending.dependencies, meta: pending.meta, body: response.body,
                expireAfter: pending.expireAfter)) { result in
                if case .failure(let error) = result {
                    self.environment.logger.debug("store write failed", metadata: ["store.error": "\(error)"])
                }
                self.execute(exchange.machine.storeCompleted(result), exchange)
            }
        case .purge(let request, _):
            store.purge(request) { result in
                if case .failure(let error) = result {
                    self.environment.logger.warning("purge queued until the store is back",
                        metadata: ["route.name": "\(exchange.plan.route?.name ?? "")", "store.error": "\(error)"])
                }
                self.execute(exchange.machine.purgeCompleted(result), exchange)
            }
        case .respond(let plan):
            respond(plan, exchange, close: false)
        }
    }

    private func fetchFromOrigin(_ fetch: ReadThroughStateMachine.Fetch, _ exchange: Exchange) {
        guard let context, let origin = exchange.plan.origin, let target = exchange.plan.target else {
            execute(exchange.machine.originFailed(OriginError(kind: .failed, origin: "?", reason: "no origin for this request")), exchange)
            return
        }
        exchange.fetchMethod = fetch.method
        let request = OriginRequest<ByteBuffer>(
            origin: origin.name, method: fetch.method, url: origin.url + target.forwardTarget,
            headers: HeaderPolicy.originRequestHeaders(
                client: exchange.head.headers.map { Header($0.name, $0.value) },
                clientAddress: context.channel.remoteAddress?.ipAddress,
                origin: origin, forStorage: fetch.forStorage),
            body: fetch.sendsBody ? exchange.body : nil, connectTimeout: origin.connectTimeout, timeout: origin.timeout,
            maxResponseBytes: environment.maxResponseBody)
        let promise = context.eventLoop.makePromise(of: OriginResponse<ByteBuffer>.self)
        environment.origins.send(request) { promise.completeWith($0.mapError { $0 as any Error }) }
        promise.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let response):
                exchange.response = response
                self.execute(exchange.machine.originResponded(
                    status: response.status, headers: response.headers, bodyLength: response.bodyLength), exchange)
            case .failure(let error):
                let originError = error as? OriginError ?? OriginError(kind: .failed, origin: origin.name, reason: "\(error)")
                self.environment.logger.warning("origin failed", metadata: [
                    "origin.name": "\(origin.name)", "origin.error": "\(originError.reason)", "route.name": "\(exchange.plan.route?.name ?? "")",
                ])
                self.execute(exchange.machine.originFailed(originError), exchange)
            }
        }
    }

    // MARK: Answering

    private func respond(_ plan: ReadThroughStateMachine.ResponsePlan, _ exchange: Exchange, close: Bool) {
        var status: Int
        var headers: [Header]
        var body: ByteBuffer?
        var contentLength: Int?
        switch plan.source {
        case .entry:
            guard let entry = exchange.entry else { return internalError("answer from an entry without one", exchange) }
            status = entry.meta.status
            headers = entry.meta.headers
            body = entry.body
            contentLength = entry.meta.bodyLength
        case .origin:
            guard let response = exchange.response else { return internalError("answer from the origin without one", exchange) }
            status = response.status
            headers = HeaderPolicy.responseHeaders(response.headers)
            body = response.body
            contentLength = response.bodyLength
            if exchange.fetchMethod == "HEAD" {
                // A HEAD went to the origin: its Content-Length describes the body it did not send.
                contentLength = response.headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) }
            }
        case .trove(let troveStatus, let message):
            status = troveStatus
            headers = [Header("Content-Type", "text/plain; charset=utf-8")]
            body = ByteBuffer(string: "\(troveStatus) \(HTTPResponseStatus(statusCode: troveStatus).reasonPhrase): \(message)\n")
            contentLength = body?.readableBytes
        }
        if let cacheStatus = plan.cacheStatus {
            let existing = headers.filter { $0.name.lowercased() == "cache-status" }.map(\.value).joined(separator: ", ")
            headers.removeAll { $0.name.lowercased() == "cache-status" || $0.name.lowercased() == "x-cache" }
            headers.append(Header("X-Cache", cacheStatus.outcome.rawValue))
            headers.append(Header("Cache-Status", cacheStatus.headerValue(appendingTo: existing.isEmpty ? nil : existing)))
        }
        if let age = plan.age { headers.append(Header("Age", String(age))) }

        var isError = false
        if case .trove(let troveStatus, _) = plan.source, troveStatus >= 500 || troveStatus == 400 || troveStatus == 413 { isError = true }
        environment.stats.record(exchange.counters, outcome: plan.cacheStatus?.outcome, stored: plan.cacheStatus?.stored ?? false,
            error: isError)

        write(status: status, headers: headers, body: plan.omitBody ? nil : body, contentLength: contentLength,
            request: exchange.head, close: close)
    }

    /// A step the state machine should never ask for: answer 500 rather than leave the client waiting.
    private func internalError(_ what: String, _ exchange: Exchange) {
        environment.logger.error("internal error: \(what)", metadata: ["route.name": "\(exchange.plan.route?.name ?? "")"])
        respond(.init(source: .trove(status: 500, message: "internal error (\(what)); see Trove's log"), cacheStatus: nil,
            age: nil, omitBody: false), exchange, close: true)
    }

    private func write(status: Int, headers: [Header], body: ByteBuffer?, contentLength: Int?, request: HTTPRequestHead, close: Bool) {
        guard let context, context.channel.isActive else { return }
        var fields = HTTPHeaders()
        fields.reserveCapacity(headers.count + 2)
        for header in headers { fields.add(name: header.name, value: header.value) }
        // 1xx, 204 and 304 answers have no body and no Content-Length.
        let bodiless = status < 200 || status == 204 || status == 304
        if !bodiless { fields.replaceOrAdd(name: "Content-Length", value: String(contentLength ?? body?.readableBytes ?? 0)) }
        let keepAlive = request.isKeepAlive && !close
        if !keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: HTTPResponseStatus(statusCode: status), headers: fields)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, !bodiless, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
