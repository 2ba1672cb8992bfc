internal import Foundation
internal import CompressNIO
internal import NIOCore
internal import NIOHTTP1
internal import Synchronization

/// The demo data: events that writes change, and products per user for the stats endpoint.
final class DemoData: Sendable {
    struct Event: Codable, Sendable {
        var id: Int
        var title: String
        var category: String
        var status: String
        var venue: String
        var startsAt: String
        var price: Double
        var ticketsLeft: Int
    }

    private struct State {
        var events: [Int: Event] = [:]
        var nextID = 1
        var products: [String: Int] = [:]
        /// Set by `POST /__break`: every request gets this status (with this `Retry-After` on 429 and 503).
        var broken: Int?
        var brokenRetryAfter = 2
        /// The leaky bucket's level, and when it was last drained.
        var level: Double = 0
        var drainedAt = ContinuousClock.now
    }

    private let state = Mutex(State())
    /// Requests held until enough have arrived (`X-Origin-Gather`), shared by every connection.
    let gathering = Gathering()
    private let rateLimit: (perSecond: Double, burst: Int)?

    init(events: Int, rateLimit: (perSecond: Double, burst: Int)? = nil) {
        self.rateLimit = rateLimit
        let categories = ["music", "theatre", "sports", "comedy"]
        let venues = ["Dubai Opera", "Coca-Cola Arena", "Etihad Park", "The Theatre", "Zabeel Hall"]
        state.withLock { state in
            for id in 1...max(1, events) {
                state.events[id] = Event(
                    id: id, title: "Event \(id): an evening of \(categories[id % categories.count])",
                    category: categories[id % categories.count], status: id % 7 == 0 ? "sold-out" : "active",
                    venue: venues[id % venues.count], startsAt: "2026-12-\(String(format: "%02d", id % 28 + 1))T20:00:00Z",
                    price: Double(50 + id * 5), ticketsLeft: (id * 37) % 500)
            }
            state.nextID = max(1, events) + 1
        }
    }

    func page(page: Int, limit: Int, category: String?, status: String?, search: String?) -> [Event] {
        state.withLock { state in
            state.events.values.sorted { $0.id < $1.id }.filter { event in
                (category == nil || event.category == category) && (status == nil || event.status == status)
                    && (search == nil || event.title.localizedCaseInsensitiveContains(search!))
            }.dropFirst(max(0, page - 1) * limit).prefix(limit).map { $0 }
        }
    }

    func event(_ id: Int) -> Event? { state.withLock { $0.events[id] } }

    /// How many events there are, and when each was last changed, for `/api/v1/summary`.
    var summary: (count: Int, titles: Int) { state.withLock { ($0.events.count, $0.events.values.reduce(0) { $0 &+ $1.title.utf8.count }) } }

    var broken: Int? {
        get { state.withLock { $0.broken } }
    }

    func breakWith(_ status: Int?, retryAfter: Int = 2) {
        state.withLock {
            $0.broken = status
            $0.brokenRetryAfter = retryAfter
        }
    }

    var brokenRetryAfter: Int { state.withLock { $0.brokenRetryAfter } }

    /// Pours one request into the leaky bucket: false (answer 429) when it is full.
    func admit() -> Bool {
        guard let rateLimit else { return true }
        return state.withLock { state in
            let now = ContinuousClock.now
            let elapsed = now - state.drainedAt
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.level = max(0, state.level - seconds * rateLimit.perSecond)
            state.drainedAt = now
            guard state.level + 1 <= Double(rateLimit.burst) else { return false }
            state.level += 1
            return true
        }
    }

    func create(title: String) -> Event {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let event = Event(id: id, title: title, category: "music", status: "active", venue: "Dubai Opera",
                startsAt: "2026-12-31T20:00:00Z", price: 100, ticketsLeft: 100)
            state.events[id] = event
            return event
        }
    }

    func update(_ id: Int, title: String?) -> Event? {
        state.withLock { state in
            guard var event = state.events[id] else { return nil }
            if let title { event.title = title }
            event.ticketsLeft = max(0, event.ticketsLeft - 1)
            state.events[id] = event
            return event
        }
    }

    func delete(_ id: Int) -> Bool { state.withLock { $0.events.removeValue(forKey: id) != nil } }

    func addProduct(user: String) -> Int { state.withLock { state in
        state.products[user, default: 0] += 1
        return state.products[user]!
    } }

    func products(user: String) -> Int { state.withLock { $0.products[user] ?? 0 } }
}

/// Answers one connection's requests for `DemoOrigin`, after the configured delay.
final class DemoOriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let delay: ClosedRange<Duration>
    private let stats: DemoOriginStats
    private let data: DemoData
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    /// Bytes of a `/sink` request's body so far (nil: not a sink).
    private var sunk: Int?
    /// A `/stream` answer being written: what is left, written whenever the client can take more.
    private var streaming: (remaining: Int, keepAlive: Bool, blocked: Bool)?
    /// `/stream?hold=GROUP`: the stream stops after its first `heldAfter` bytes until `POST /__release?group=GROUP`.
    private var hold: (group: String, after: Int, state: HoldState)?
    private enum HoldState { case before, waiting, released }
    private static let heldAfter = 256 << 10
    /// The bytes every `/stream` piece carries.
    private static let streamPiece = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)

    init(delay: ClosedRange<Duration>, stats: DemoOriginStats, data: DemoData) {
        self.delay = delay
        self.stats = stats
        self.data = data
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            sunk = head.uri.hasPrefix("/sink") ? 0 : nil
            if sunk != nil, let group = URLComponents(string: head.uri)?.queryItems?.first(where: { $0.name == "hold" })?.value {
                holdSink(group: group, context: context)
            }
        case .body(var chunk):
            // `/sink` counts what it receives and keeps none of it: uploads bigger than memory.
            if let sunk {
                self.sunk = sunk + chunk.readableBytes
                stats.sunk(chunk.readableBytes)
                return
            }
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            if let sunk {
                self.sunk = nil
                stats.started(method: head.method.rawValue, target: head.uri, measured: false)
                stats.finished(status: 200, measured: false)
                return write(context: context, head: head, answer: json(.ok, ["received": sunk]))
            }
            handle(context: context, head: head, body: body ?? ByteBuffer())
        }
    }

    /// `POST /sink?hold=GROUP`: the body is not read until `POST /__release?group=GROUP` (or 30 s), so the
    /// sender's writes back up, as with an origin that takes uploads slowly.
    private func holdSink(group: String, context: ChannelHandlerContext) {
        let channel = context.channel
        channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        data.gathering.join(group: "hold:" + group, count: 2, deadline: .seconds(30), on: context.eventLoop) { _ in
            channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    private struct Answer {
        var status: HTTPResponseStatus
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        var body: ByteBuffer
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        let components = URLComponents(string: head.uri)
        let path = components?.percentEncodedPath ?? head.uri
        let query = Dictionary((components?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        if path == "/stream" {
            return startStream(context: context, head: head, query: query)
        }
        if path.hasPrefix("/__") {
            if path == "/__close" {
                context.close(promise: nil)
                return
            }
            write(context: context, head: head, answer: control(path: path, method: head.method, query: query, on: context.eventLoop))
            return
        }
        let measured = head.headers.contains(name: "X-Loadtest-Measured")
        stats.started(method: head.method.rawValue, target: head.uri, measured: measured)
        // A request that is refused changes nothing, and a rate-limited one is refused at once, as Shopify does.
        var answer: Answer
        var limited = false
        if let status = data.broken {
            answer = json(HTTPResponseStatus(statusCode: status), ["error": "the demo origin was broken on purpose (POST /__heal)"])
            if status == 429 || status == 503 { answer.headers.append(("Retry-After", String(data.brokenRetryAfter))) }
        } else if !data.admit() {
            answer = json(.tooManyRequests, ["errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."])
            answer.headers.append(("Retry-After", "1"))
            limited = true
        } else {
            answer = self.answer(head: head, path: path, query: query, body: body)
        }
        var wait = limited ? .zero : delay.lowerBound == delay.upperBound
            ? delay.lowerBound
            : .nanoseconds(Int64.random(in: delay.lowerBound.nanoseconds...delay.upperBound.nanoseconds))
        if let override = head.headers.first(name: "X-Origin-Delay-Ms").flatMap(Int.init) ?? query["delay_ms"].flatMap(Int.init) {
            wait = .milliseconds(override)
        }
        if let count = head.headers.first(name: "X-Origin-Gather").flatMap(Int.init) {
            let group = head.headers.first(name: "X-Origin-Gather-Group") ?? ""
            let deadline = head.headers.first(name: "X-Origin-Gather-Ms").flatMap(Int64.init).map(TimeAmount.milliseconds) ?? .seconds(10)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            data.gathering.join(group: group, count: count, deadline: deadline, on: eventLoop) { [answer, wait] outcome in
                eventLoop.execute {
                    let (handler, context) = bound.value
                    var answer = answer
                    answer.headers.append(("X-Origin-Gathered", outcome.rawValue))
                    handler.send(answer, to: head, after: wait, measured: measured, context: context)
                }
            }
            return
        }
        send(answer, to: head, after: wait, measured: measured, context: context)
    }

    /// Writes the answer, after `wait` when there is one.
    private func send(_ answer: Answer, to head: HTTPRequestHead, after wait: Duration, measured: Bool, context: ChannelHandlerContext) {
        let status = Int(answer.status.code)
        if wait == .zero {
            stats.finished(status: status, measured: measured)
            write(context: context, head: head, answer: answer)
        } else {
            let nanoseconds = wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
                self.stats.finished(status: status, measured: measured)
                self.write(context: context, head: head, answer: answer)
            }
        }
    }

    private func answer(head: HTTPRequestHead, path: String, query: [String: String], body: ByteBuffer) -> Answer {
        let segments = path.split(separator: "/").map(String.init)
        let user = head.headers.first(name: "Authorization")
        let method = head.method
        let isRead = method == .GET || method == .HEAD
        if segments == ["api", "v1", "events"] {
            if isRead {
                let page = Int(query["page"] ?? "") ?? 1
                let limit = min(100, Int(query["limit"] ?? "") ?? 20)
                let events = data.page(page: page, limit: limit, category: query["category"], status: query["status"],
                    search: query["search"])
                return json(.ok, ["page": page, "limit": limit, "count": events.count, "events": events.map(encode)])
            }
            if method == .POST {
                let event = data.create(title: decodeTitle(body) ?? "New event")
                var answer = json(.created, encode(event))
                answer.headers.append(("Location", "/api/v1/events/\(event.id)"))
                return answer
            }
        }
        // A summary that embeds the time it was made: volatile on every request, whatever the data (shadow tests).
        if segments == ["api", "v1", "summary"], isRead {
            let (count, titles) = data.summary
            return json(.ok, ["events": count, "title_bytes": titles,
                              "generated_at": String(format: "%.6f", Date().timeIntervalSince1970)])
        }
        if segments.count == 4, Array(segments.prefix(3)) == ["api", "v1", "events"] {
            guard let id = Int(segments[3]) else { return json(.notFound, ["error": "no such event"]) }
            switch method {
            case .GET, .HEAD:
                guard let event = data.event(id) else { return json(.notFound, ["error": "no such event"]) }
                return json(.ok, encode(event))
            case .PUT, .PATCH:
                guard let event = data.update(id, title: decodeTitle(body)) else { return json(.notFound, ["error": "no such event"]) }
                return json(.ok, encode(event))
            case .DELETE:
                guard data.delete(id) else { return json(.notFound, ["error": "no such event"]) }
                return Answer(status: .noContent, headers: [], body: ByteBuffer())
            default:
                break
            }
        }
        if segments == ["api", "v1", "products", "stats", "asin-status"] && isRead {
            guard let user else { return json(.unauthorized, ["error": "log in first"]) }
            let count = data.products(user: user)
            return json(.ok, ["user": String(user.suffix(8)), "products": count, "active": count, "pending": 0])
        }
        if segments == ["api", "v1", "products"] && method == .POST {
            guard let user else { return json(.unauthorized, ["error": "log in first"]) }
            return json(.created, ["products": data.addProduct(user: user)])
        }
        if segments.first == "echo" {
            return json(.ok, [
                "method": method.rawValue, "uri": head.uri, "path": path,
                "headers": head.headers.map { [$0.name, $0.value] },
                "body": String(buffer: body),
            ])
        }
        if segments.first == "respond" && isRead {
            return respond(to: head, query: query)
        }
        if let (status, object) = DemoCatalog.answer(method: method.rawValue, segments: segments, query: query, user: user) {
            if status == 204 { return Answer(status: .noContent, headers: [], body: ByteBuffer()) }
            return json(HTTPResponseStatus(statusCode: status), object)
        }
        return json(.notFound, ["error": "no such endpoint: \(method.rawValue) \(path)"])
    }

    /// `/respond?status=201&header=Set-Cookie:a=1&header=Cache-Control:private&kb=64&body=text` (`random=1`: the
    /// `kb` bytes do not compress; `gzip=1`: compressed for clients that take gzip)
    ///
    /// Like a well-behaved origin, it answers 304 (the same headers, no body) to an `If-None-Match` that
    /// names the `ETag` it would send.
    private func respond(to head: HTTPRequestHead, query: [String: String]) -> Answer {
        let items = URLComponents(string: head.uri)?.queryItems ?? []
        let status = HTTPResponseStatus(statusCode: Int(query["status"] ?? "") ?? 200)
        var headers: [(String, String)] = [("Content-Type", "text/plain")]
        for item in items where item.name == "header" {
            guard let value = item.value, let colon = value.firstIndex(of: ":") else { continue }
            headers.append((String(value[..<colon]), String(value[value.index(after: colon)...])))
        }
        if status == .ok, let etag = headers.first(where: { $0.0.lowercased() == "etag" })?.1,
            head.headers["If-None-Match"].contains(where: { $0.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == etag } })
        {
            return Answer(status: .notModified, headers: headers.filter { $0.0.lowercased() != "content-type" }, body: ByteBuffer())
        }
        var body = ByteBuffer(string: query["body"] ?? "")
        if let kb = Int(query["kb"] ?? ""), (1...(1 << 20)).contains(kb) {
            body = ByteBuffer(repeating: UInt8(ascii: "x"), count: kb * 1024)
            if query["random"] == "1" {
                // Bytes that do not compress (a fixed xorshift sequence, so answers repeat exactly).
                var state: UInt64 = 0x9E37_79B9_7F4A_7C15
                body = ByteBuffer(bytes: (0..<(kb * 1024)).map { _ in
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    return UInt8(truncatingIfNeeded: state)
                })
            }
        }
        // `gzip=1`: compress, as origins do, for requests that accept it.
        if query["gzip"] == "1", head.headers["Accept-Encoding"].contains(where: { $0.lowercased().contains("gzip") }),
            let compressed = try? body.compress(with: .gzip())
        {
            body = compressed
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        }
        return Answer(status: status, headers: headers, body: body)
    }

    private func control(path: String, method: HTTPMethod, query: [String: String], on eventLoop: any EventLoop) -> Answer {
        switch (method, path) {
        case (.GET, "/__stats"):
            let data = (try? JSONEncoder().encode(stats.snapshot)) ?? Data()
            return Answer(status: .ok, body: ByteBuffer(bytes: data))
        case (.GET, "/__count"):
            return json(.ok, ["target": query["target"] ?? "", "count": stats.count(target: query["target"] ?? "")])
        case (.POST, "/__reset"):
            stats.reset()
            return json(.ok, ["reset": true])
        case (.POST, "/__break"):
            let status = Int(query["status"] ?? "") ?? 503
            // `retry_after` (seconds, 0...3600; default 2) for 429 and 503.
            data.breakWith(status, retryAfter: min(3600, max(0, Int(query["retry_after"] ?? "") ?? 2)))
            return json(.ok, ["broken": status])
        case (.POST, "/__heal"):
            data.breakWith(nil)
            return json(.ok, ["broken": false])
        case (.POST, "/__release"):
            // The second member of a held stream's group: both go on (see `/stream?hold=`).
            data.gathering.join(group: "hold:" + (query["group"] ?? ""), count: 2, deadline: .seconds(30), on: eventLoop) { _ in }
            return json(.ok, ["released": query["group"] ?? ""])
        default:
            return json(.notFound, ["error": "no such control endpoint"])
        }
    }

    private func write(context: ChannelHandlerContext, head: HTTPRequestHead, answer: Answer) {
        var headers = HTTPHeaders(answer.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(answer.body.readableBytes))
        headers.replaceOrAdd(name: "Server", value: "trove-demo-origin")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: answer.status, headers: headers))), promise: nil)
        if head.method != .HEAD && answer.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(answer.body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    // MARK: /stream

    /// `GET /stream?mb=N` (`&chunked=1`: no Content-Length; `&hold=GROUP`: the first 256 KiB, then the rest
    /// once `POST /__release?group=GROUP` came): N MiB of `x`, written only as fast as the client reads (the bytes are never held whole), for tests and load tests of answers bigger than memory. What it
    /// sent, how often it had to wait for the client and how many clients left early are in `DemoOriginStats`.
    private func startStream(context: ChannelHandlerContext, head: HTTPRequestHead, query: [String: String]) {
        let megabytes = min(max(0, Int(query["mb"] ?? "") ?? 1), 1 << 16)
        let total = megabytes << 20
        var headers = HTTPHeaders([("Content-Type", "application/octet-stream"), ("Server", "trove-demo-origin")])
        if query["chunked"] != "1" { headers.add(name: "Content-Length", value: String(total)) }
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        stats.started(method: head.method.rawValue, target: head.uri, measured: false)
        stats.streamStarted()
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        streaming = (head.method == .HEAD ? 0 : total, head.isKeepAlive, false)
        if let group = query["hold"] { hold = (group, max(0, total - Self.heldAfter), .before) }
        continueStream(context: context)
    }

    private func continueStream(context: ChannelHandlerContext) {
        guard var stream = streaming else { return }
        while stream.remaining > 0 && context.channel.isWritable {
            if let held = hold, held.state != .released, stream.remaining <= held.after {
                // Held until released: the client has the first bytes, the rest waits.
                streaming = stream
                context.flush()
                guard held.state == .before else { return }
                hold?.state = .waiting
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let eventLoop = context.eventLoop
                data.gathering.join(group: "hold:" + held.group, count: 2, deadline: .seconds(30), on: eventLoop) { _ in
                    eventLoop.execute {
                        let (handler, context) = bound.value
                        handler.hold?.state = .released
                        handler.continueStream(context: context)
                    }
                }
                return
            }
            let piece = Self.streamPiece.getSlice(at: 0, length: min(stream.remaining, Self.streamPiece.readableBytes))!
            stream.remaining -= piece.readableBytes
            stats.streamed(piece.readableBytes)
            context.write(wrapOutboundOut(.body(.byteBuffer(piece))), promise: nil)
        }
        if stream.remaining > 0 {
            // The client is not taking more: wait for it (channelWritabilityChanged).
            if !stream.blocked { stats.streamBlocked(true) }
            stream.blocked = true
            streaming = stream
            context.flush()
            return
        }
        if stream.blocked { stats.streamBlocked(false) }
        streaming = nil
        stats.finished(status: 200, measured: false)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !stream.keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, var stream = streaming, stream.blocked {
            stream.blocked = false
            streaming = stream
            stats.streamBlocked(false)
            continueStream(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let stream = streaming {
            if stream.blocked { stats.streamBlocked(false) }
            stats.streamAborted()
            stats.finished(status: 200, measured: false)
            streaming = nil
        }
        context.fireChannelInactive()
    }

    private func encode(_ event: DemoData.Event) -> [String: Any] {
        [
            "id": event.id, "title": event.title, "category": event.category, "status": event.status,
            "venue": event.venue, "starts_at": event.startsAt, "price": event.price, "tickets_left": event.ticketsLeft,
        ]
    }

    private func decodeTitle(_ body: ByteBuffer) -> String? {
        guard body.readableBytes > 0,
            let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        else { return nil }
        return object["title"] as? String
    }

    private func json(_ status: HTTPResponseStatus, _ object: Any) -> Answer {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Answer(status: status, body: ByteBuffer(bytes: data))
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
