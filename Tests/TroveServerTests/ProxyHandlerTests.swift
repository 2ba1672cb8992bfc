import TroveHTTP
import Foundation
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
    /// The rules of these tests (and `HitFastPathTests`'), with `limits:` and more top-level lines (`extra`) added.
    static func yaml(limits: String = "", extra: String = "") -> String {
        """
        version: 1
        admin: {allow_unauthenticated: true}
        \(limits.isEmpty ? "" : "limits: {\(limits)}")
        \(extra)
        origins: {api: {url: "http://origin.internal:8000"}}
        routes:
          - {name: event, match: "GET /events/{id}", cache: {key: "event:{id}", ttl: 60s, tags: ["event:{id}"]}}
          - {name: change, match: "PUT /events/{id}", purge: {tags: ["event:{id}"]}}
          - {name: rest, match: ANY /**, pass: true}
        """
    }

    static func rules(limits: String = "") -> RuleSet {
        try! RulesLoader.parse(yaml(limits: limits), file: "embedded.yaml")
    }

    let clock = ManualClock()

    private func channel(origin: ScriptedOrigin, limits: String = "") throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let rules = Self.rules(limits: limits)
        let environment = ProxyEnvironment(
            rules: RulesState(rules, loadedAt: 0), origins: origin,
            stores: StoreDirectory(memory: InMemoryStore<ByteBuffer>(capacity: 1 << 20, clock: clock)), clock: clock,
            stats: ProxyStats(), coalescer: Coalescer(clock: clock, notifications: nil),
            gates: OriginGates(rules: rules, timerLoop: channel.eventLoop), logger: Logger(label: "test"))
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
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: "trove.test") }
        if let body { head.headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.embeddedEventLoop.run()
    }

    /// Reads one whole answer that the handler wrote: it writes each head as one buffer of bytes (status line
    /// and headers) and the body, if any, as the next. `toHead` says the request was a HEAD: no body follows,
    /// whatever Content-Length says.
    private func answer(_ channel: EmbeddedChannel, toHead: Bool = false) throws -> Answer? {
        guard let headBytes = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        let text = String(buffer: headBytes)
        #expect(text.hasSuffix("\r\n\r\n"), "a head ends with an empty line")
        // ("\r\n" is one Character: cut by bytes, not characters.)
        let lines = String(decoding: text.utf8.dropLast(4), as: UTF8.self).components(separatedBy: "\r\n")
        let words = lines[0].split(separator: " ", maxSplits: 2)
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            let colon = try #require(line.firstIndex(of: ":"))
            headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let status = try #require(Int(words[1]))
        var body = ""
        if headers.first(name: "Transfer-Encoding") == "chunked" && !toHead {
            // A streamed answer: chunks, each written as its size line, its bytes and its CRLF, then "0\r\n\r\n".
            while true {
                let sizeLine = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
                let size = try #require(Int(sizeLine.prefix { $0.isHexDigit }, radix: 16))
                if size == 0 {
                    #expect(sizeLine == "0\r\n\r\n", "the last chunk ends the answer")
                    break
                }
                let piece = try #require(try channel.readOutbound(as: ByteBuffer.self))
                #expect(piece.readableBytes == size, "a chunk is as long as its size line says")
                body += String(buffer: piece)
                #expect(String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self))) == "\r\n")
            }
        } else {
            let length = toHead || [204, 304].contains(status) || status < 200 ? 0 : Int(headers.first(name: "Content-Length") ?? "0") ?? 0
            if length > 0 {
                let bytes = try #require(try channel.readOutbound(as: ByteBuffer.self))
                #expect(bytes.readableBytes == length, "the body is as long as Content-Length says")
                body = String(buffer: bytes)
            }
        }
        let version: HTTPVersion = words[0] == "HTTP/1.0" ? .http1_0 : .http1_1
        return Answer(head: HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers), body: body)
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
        let head = try #require(try answer(channel, toHead: true))
        #expect(head.header("X-Cache") == "HIT")
        #expect(head.header("Content-Length") == "12")
        #expect(head.body.isEmpty)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "no body follows the head")
        #expect(origin.requests.count == 1)
    }

    /// A write that succeeds purges what its rule names, and the entry of its own target, before answering.
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
        // The same target's key was purged too, which drops the entry itself: nothing is stored under it.
        #expect(try answer(channel)?.header("Cache-Status") == "trove; fwd=uri-miss; fwd-status=200; stored")
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
        let channel = try channel(origin: origin, limits: "max_request_body: 8")
        try send(channel, .PUT, "/events/5", body: String(repeating: "x", count: 9))
        let refused = try #require(try answer(channel))
        #expect(refused.head.status == .payloadTooLarge)
        #expect(refused.header("Connection") == "close")
        #expect(origin.requests.isEmpty)
    }

    /// A chunked body streaming to the origin that passes the limit ends the connection (its answer may already
    /// be under way), the origin's transfer is cancelled, and the limit is counted.
    @Test func streamedBodyPastTheLimitClosesTheConnection() throws {
        let origin = ScriptedOrigin(body: "ok")
        let channel = try channel(origin: origin, limits: "max_request_body: 8")
        var head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/events/5", headers: ["Host": "trove.test", "Transfer-Encoding": "chunked"])
        head.headers.add(name: "Content-Type", value: "text/plain")
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "12345")))
        #expect(channel.isActive, "5 bytes are within the limit")
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "6789")))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive, "9 bytes are not")
        #expect(origin.requests.isEmpty, "the origin never got a whole body")
    }

    /// `Expect: 100-continue` gets its interim answer at once.
    @Test func expectContinue() throws {
        let channel = try channel(origin: ScriptedOrigin(body: "ok"))
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(
            version: .http1_1, method: .PUT, uri: "/events/6", headers: ["Host": "trove.test", "Expect": "100-continue", "Content-Length": "2"])))
        let interim = try #require(try answer(channel))
        #expect(interim.head.status == .continue)
        #expect(interim.head.headers.isEmpty)
    }

    /// Pipelined requests are answered in order, one at a time, however many arrive while the first waits.
    @Test func pipelining() throws {
        let origin = ScriptedOrigin { request in
            let body = String(request.url.split(separator: "/").last!)
            return .success(OriginResponse(status: 200, headers: [], body: ByteBuffer(string: body), bodyLength: body.utf8.count))
        }
        let channel = try channel(origin: origin)
        let names = (1...(Limits().maxPipelined + 4)).map { "r\($0)" }
        for name in names {
            try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/other/\(name)", headers: ["Host": "trove.test"])))
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
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/other/1", headers: ["Host": "trove.test"])))
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
