import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TroveCore
import TroveRules
import TroveTestSupport
@testable import TroveServer

/// The proxy handler on an EmbeddedChannel: no socket, no thread; the memory store and a scripted origin.
@Suite struct ProxyHandlerTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        admin: {allow_unauthenticated: true}
        origins: {api: {url: "http://origin.internal:8000"}}
        routes:
          - {name: event, match: "GET /events/{id}", cache: {key: "event:{id}", ttl: 60s, tags: ["event:{id}"]}}
          - {name: change, match: "PUT /events/{id}", purge: {tags: ["event:{id}"]}}
          - {name: rest, match: ANY /**, pass: true}
        """, file: "embedded.yaml")

    let clock = ManualClock()

    private func channel(origin: ScriptedOrigin, maxRequestBody: Int = 1 << 20) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let environment = ProxyEnvironment(
            rules: RulesState(Self.rules, loadedAt: 0), origins: origin,
            stores: StoreDirectory(memory: InMemoryStore<ByteBuffer>(capacity: 1 << 20, clock: clock)), clock: clock,
            stats: ProxyStats(), coordinator: FetchCoordinator(clock: clock, notifications: nil),
            gates: OriginGates(rules: Self.rules, timerLoop: channel.eventLoop), logger: Logger(label: "test"),
            maxRequestBody: maxRequestBody)
        try channel.pipeline.syncOperations.addHandler(ProxyHandler(environment: environment))
        // An accepted connection is active, with a client address.
        try channel.connect(to: SocketAddress(ipAddress: "203.0.113.9", port: 51000)).wait()
        return channel
    }

    private struct Answer {
        var head: HTTPResponseHead
        var body: String

        func header(_ name: String) -> String? { head.headers.first(name: name) }
    }

    private func send(_ channel: EmbeddedChannel, _ method: HTTPMethod, _ uri: String, headers: HTTPHeaders = [:], body: String? = nil) throws {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        if let body { head.headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.embeddedEventLoop.run()
    }

    /// Reads one whole answer (head, body parts, end) that the handler wrote.
    private func answer(_ channel: EmbeddedChannel) throws -> Answer? {
        guard case .head(let head)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
        var body = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .body(.byteBuffer(let buffer)): body += String(buffer: buffer)
            case .end: return Answer(head: head, body: body)
            default: break
            }
        }
        return Answer(head: head, body: body)
    }

    /// A miss is fetched and stored; the same request is then answered from the store, with its age.
    @Test func missThenHit() throws {
        let origin = ScriptedOrigin(body: "{\"id\": 1}")
        let channel = try channel(origin: origin)
        try send(channel, .GET, "/events/1")
        let miss = try #require(try answer(channel))
        #expect(miss.head.status == .ok)
        #expect(miss.header("X-Cache") == "MISS")
        #expect(miss.header("Cache-Status") == "trove; fwd=uri-miss; fwd-status=200; stored")
        #expect(miss.body == "{\"id\": 1}")
        clock.advance(by: .seconds(7))
        try send(channel, .GET, "/events/1")
        let hit = try #require(try answer(channel))
        #expect(hit.header("X-Cache") == "HIT")
        #expect(hit.header("Cache-Status") == "trove; hit; ttl=53")
        #expect(hit.header("Age") == "7")
        #expect(hit.header("Content-Length") == "9")
        #expect(hit.body == "{\"id\": 1}")
        #expect(origin.requests.count == 1)
        // The origin was asked with its own Host, for an uncompressed answer.
        #expect(origin.requests[0].url == "http://origin.internal:8000/events/1")
        #expect(origin.requests[0].headers.contains(Header("Host", "origin.internal:8000")))
        #expect(origin.requests[0].headers.contains(Header("X-Forwarded-For", "203.0.113.9")))
    }

    /// HEAD is answered from the GET entry: the same headers and Content-Length, no body.
    @Test func headFromTheGetEntry() throws {
        let origin = ScriptedOrigin(body: "twelve bytes")
        let channel = try channel(origin: origin)
        try send(channel, .GET, "/events/2")
        _ = try answer(channel)
        try send(channel, .HEAD, "/events/2")
        let head = try #require(try answer(channel))
        #expect(head.header("X-Cache") == "HIT")
        #expect(head.header("Content-Length") == "12")
        #expect(head.body.isEmpty)
        #expect(origin.requests.count == 1)
    }

    /// A write that succeeds purges what its rule names before answering.
    @Test func writePurges() throws {
        let origin = ScriptedOrigin(body: "ok")
        let channel = try channel(origin: origin)
        try send(channel, .GET, "/events/3")
        _ = try answer(channel)
        try send(channel, .PUT, "/events/3", body: "{}")
        let write = try #require(try answer(channel))
        #expect(write.header("X-Cache") == "PASS")
        #expect(origin.requests.last?.body.map { String(buffer: $0) } == "{}")
        try send(channel, .GET, "/events/3")
        #expect(try answer(channel)?.header("Cache-Status") == "trove; fwd=miss; fwd-status=200; stored")
        #expect(origin.requests.count == 3)
    }

    /// An origin that cannot be reached is a 502 that says which origin and why.
    @Test func originFailures() throws {
        let origin = ScriptedOrigin { request in .failure(OriginError(kind: .unreachable, origin: request.origin, reason: "Connection refused")) }
        let channel = try channel(origin: origin)
        try send(channel, .GET, "/events/4")
        let failed = try #require(try answer(channel))
        #expect(failed.head.status == .badGateway)
        #expect(failed.body == "502 Bad Gateway: origin 'api' is unreachable: Connection refused\n")
        #expect(failed.header("X-Cache") == nil)
    }

    /// A body above the limit is refused with 413, and the connection is closed (the rest of it is unread).
    @Test func bodyTooLarge() throws {
        let origin = ScriptedOrigin(body: "ok")
        let channel = try channel(origin: origin, maxRequestBody: 8)
        try send(channel, .PUT, "/events/5", body: String(repeating: "x", count: 9))
        let refused = try #require(try answer(channel))
        #expect(refused.head.status == .payloadTooLarge)
        #expect(refused.header("Connection") == "close")
        #expect(origin.requests.isEmpty)
    }

    /// `Expect: 100-continue` gets its interim answer at once.
    @Test func expectContinue() throws {
        let channel = try channel(origin: ScriptedOrigin(body: "ok"))
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(
            version: .http1_1, method: .PUT, uri: "/events/6", headers: ["Expect": "100-continue", "Content-Length": "2"])))
        guard case .head(let interim)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("expected a 100 Continue"); return
        }
        #expect(interim.status == .continue)
    }

    /// Pipelined requests are answered in order, one at a time, however many arrive while the first waits.
    @Test func pipelining() throws {
        let origin = ScriptedOrigin { request in
            let body = String(request.url.split(separator: "/").last!)
            return .success(OriginResponse(status: 200, headers: [], body: ByteBuffer(string: body), bodyLength: body.utf8.count))
        }
        let channel = try channel(origin: origin)
        let names = (1...(ProxyHandler.maxQueued + 4)).map { "r\($0)" }
        for name in names {
            try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/other/\(name)")))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
        }
        var bodies: [String] = []
        for _ in names {
            channel.embeddedEventLoop.run()
            guard let answer = try answer(channel) else { break }
            bodies.append(answer.body)
        }
        #expect(bodies == names)
        #expect(channel.isActive)
    }

    /// A request that cannot be parsed behind one still being answered: the first gets its answer, then the
    /// 400, then the connection closes.
    @Test func malformedRequestAnsweredInItsTurn() throws {
        let channel = try channel(origin: ScriptedOrigin(body: "first"))
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/other/1")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidHeaderToken)
        channel.embeddedEventLoop.run()
        #expect(try answer(channel)?.body == "first")
        let refused = try #require(try answer(channel))
        #expect(refused.head.status == .badRequest)
        #expect(refused.header("Connection") == "close")
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    /// A client asking to close gets `Connection: close`, and the connection is closed after the answer.
    @Test func connectionClose() throws {
        let channel = try channel(origin: ScriptedOrigin(body: "bye"))
        try send(channel, .GET, "/other", headers: ["Connection": "close"])
        let answer = try #require(try answer(channel))
        #expect(answer.header("Connection") == "close")
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}
