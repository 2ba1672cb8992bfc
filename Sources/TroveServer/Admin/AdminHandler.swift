internal import TroveHTTP
internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import TroveCore
internal import TroveRules

/// Serves the admin API on its own listener: reads a request, checks the bearer token, and hands it to the
/// endpoint `AdminRoutes` names (404 and 405 come from that table too). Answers are JSON (`JSONAnswer`).
///
/// Every endpoint but `/healthz` needs `Authorization: Bearer TOKEN` when a token is configured; the token
/// is compared in constant time. A Shopify webhook whose rules put it on this listener is answered here too,
/// proven by its signature instead of the token.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let environment: ProxyEnvironment
    private let token: [UInt8]?
    private var stores: LoopStores?
    private var store: (any CacheStore<ByteBuffer>)? { stores?.store }
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
        stores = environment.stores.stores(for: context.eventLoop)
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
        if bodyTooLarge {
            return write(context: context, head: head, answer: .error(413, "the body is larger than \(Self.maxBody >> 20) MiB"))
        }
        let loaded = environment.rules.current
        // A webhook proves itself with its signature, not the admin token.
        if let webhook = WebhookEndpoint.rule(on: .admin, in: loaded, method: head.method.token, uri: head.uri), let stores {
            WebhookEndpoint.handle(webhook, loaded: loaded, headers: head.headers.map { Header($0.name, $0.value) },
                body: Array(body.readableBytesView), client: context.channel.remoteAddress?.ipAddress, environment: environment,
                stores: stores
            ) { answer in
                self.write(context: context, head: head, answer: answer)
            }
            return
        }
        let route: AdminRoutes.Route
        switch AdminRoutes.resolve(method: head.method, path: path) {
        case .route(let found): route = found
        case .methodNotAllowed(let allowed):
            guard AdminRoutes.isPublic(path) || authorized(head) else { return refuseToken(context: context, head: head) }
            return write(context: context, head: head, answer: AdminRoutes.methodNotAllowed(head.method, path: path, allowed: allowed))
        case .notFound:
            guard authorized(head) else { return refuseToken(context: context, head: head) }
            return write(context: context, head: head, answer: AdminRoutes.notFound(path))
        }
        if route.needsToken && !authorized(head) { return refuseToken(context: context, head: head) }
        let request = AdminRequest(head: head, path: path, query: components?.queryItems ?? [], body: body,
            environment: environment, store: store, eventLoop: context.eventLoop)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        route.endpoint(request) { answer in
            let (handler, context) = bound.value
            handler.write(context: context, head: head, answer: answer)
        }
    }

    private func refuseToken(context: ChannelHandlerContext, head: HTTPRequestHead) {
        var answer = JSONAnswer.error(401, "missing or wrong bearer token: send Authorization: Bearer $TROVE_ADMIN_TOKEN")
        answer.headers.append(("WWW-Authenticate", "Bearer realm=\"trove-admin\""))
        write(context: context, head: head, answer: answer)
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

    private func write(context: ChannelHandlerContext, head: HTTPRequestHead, answer: JSONAnswer) {
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
