internal import TroveHTTP
internal import CompressNIO
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import Synchronization
internal import TroveCore
internal import TroveRules

/// Serves one client connection: plans each request with the rules, runs the read-through state machine
/// (lookup, fetch, store, purge) and writes the answer with `X-Cache`, `Cache-Status` and `Age`.
///
/// One request is answered at a time per connection; pipelined requests wait in a short queue, in order
/// (NIO's pipelining handler would do the same, but it stops reading from the socket while any answer is
/// pending, which costs two `epoll_ctl` calls per request whenever the answer waits for Redis). Only past
/// `limits.max_pipelined` waiting requests are reads held back, and the next answer starts only once the client
/// has read the last one (back-pressure). Store callbacks arrive on this loop; origin answers are hopped back to
/// it. Errors become statuses here and only here: origin unreachable 502, origin too slow 504, origin at its
/// limit 503, bad request 400, request timeout 408, body too large 413, headers too large 431.
///
/// What a client may cost is bounded by `limits:`: the timeouts (`ClientDeadlines`), the body size, and the
/// process-wide budget of request bodies held (`ByteBudget`).
///
/// A cacheable miss goes through the `Coalescer`: the first request for a key fetches, the others wait
/// for it. Across instances, the first also takes the store's fetch lock; an instance that finds the lock
/// taken waits for the holder's notice (and looks the key up now and then), then answers from the stored
/// entry.
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    /// Answers leave as bytes this handler encodes itself (`ResponseEncoding`): a hit is a status line, its
    /// stored headers and Trove's, and the body, with no `HTTPHeaders` or encoder in between.
    typealias OutboundOut = ByteBuffer

    private let environment: ProxyEnvironment
    private let drain: ConnectionDrain?
    /// This loop's stores (set when the channel is registered).
    private var stores: LoopStores?
    private var store: (any CacheStore<ByteBuffer>)? { stores?.store }
    private var plans: PlanCache?
    private var context: ChannelHandlerContext?
    /// The limits and client settings in force when the connection opened (a reload applies to new connections).
    private var limits = Limits()
    /// The hosts answered, when the rules name them (nil: any host; read for every request, so nothing to copy).
    private var hostCheck: ClientSettings?
    /// How the origin learns the host (`clients.hosts`).
    private var forwarding = ClientSettings.ForwardedHost.none
    /// The client is a trusted proxy, whose forwarding headers are kept (`clients.trusted_proxies`).
    private var clientTrusted = false
    /// When the client must take its next step (`limits:` timeouts), and the timer that checks.
    // Unchecked: touched on every request, only on this handler's event loop, never through an inout that another
    // access could overlap (the handler is not Sendable and never leaves its loop), so the dynamic exclusivity
    // check the compiler adds for a class's stored property finds nothing to catch.
    @exclusivity(unchecked) private var deadlines = ClientDeadlines(settings: .init(Limits()), now: 0)
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?
    /// The exchange whose answer is being passed on as it arrives, if any.
    private var streamingExchange: Exchange?
    /// The body being read goes to the origin as it arrives (see `channelRead`).
    private var uploading: OriginUpload? {
        // An upload that ends (finished, cancelled, refused) no longer waits for the origin.
        didSet { if uploading == nil { uploadPause.resume() } }
    }
    /// How long the client of the upload has not been read because the origin had not taken its window.
    private lazy var uploadPause = PauseMeter(environment.metrics, waitingFor: .origin)
    private var uploadedBytes = 0
    /// The exchange the body being uploaded belongs to.
    private var uploadExchange: Exchange?

    /// The origin took half of a full upload window: read from the client again.
    private func uploadHasRoom() {
        uploadPause.resume()
        guard let context, connection.uploadHasRoom() else { return }
        context.read()
    }
    /// A request part was decoded since the last read completed (else the read held part of a head only).
    private var decodedThisRead = false
    /// The time of the current read, taken once for every part it holds (a clock read costs as much as the rest
    /// of the bookkeeping).
    private var readTime: Int64?

    private func timeOfRead() -> Int64 {
        if let readTime { return readTime }
        let now = Self.now()
        readTime = now
        return now
    }
    private var head: HTTPRequestHead?
    /// What the head being read said (`check(_:limits:hosts:)`).
    private var headCheck = HeadCheck()
    private var body: ByteBuffer?
    /// The body's share of the process-wide budget of request bodies, given back when the request is done.
    private var bodyReservation: BudgetReservation?
    /// Which request is answered now, which wait, when reads are held and when the connection closes.
    // Unchecked for the reason `deadlines` is: touched on every request, on this handler's loop only.
    @exclusivity(unchecked) private var connection = ProxyConnectionStateMachine<Queued>(maxPipelined: Limits().maxPipelined)

    private enum Queued {
        case request(HTTPRequestHead, ByteBuffer?, BudgetReservation?, endsConnection: Bool, upload: OriginUpload? = nil)
        /// A request Trove answers itself, in its turn, before closing the connection.
        case refused(HTTPRequestHead?, Refusal)
        /// A plain read the fast path took, whose store must be asked (Redis): see `answerAtOnce`.
        case plainRead(PlainRead)
    }

    /// A plain read waiting for its store: what the fast path needs to answer it, and the request's bytes, should
    /// the full path have to (a copy: the receive buffer is not held while Redis answers).
    private struct PlainRead {
        let read: RequestFraming.PlainRead
        let bytes: ByteBuffer
        let remembered: PlanCache.Remembered
        let started: NIODeadline
    }

    /// Why a request is answered by Trove without being run; the connection closes after the answer.
    enum Refusal: Equatable {
        /// The request could not be parsed (400), or its head is too large (431).
        case malformed(status: Int)
        /// The head is well-formed but not a request Trove can take (400, 405, 417), in words.
        case badRequest(status: Int, String)
        /// Its body is larger than `limits.max_request_body` (413).
        case tooLarge
        /// Bodies being received fill `limits.request_body_budget` (503).
        case overBudget
        /// Part of the request arrived, too slowly (408), in words.
        case timedOut(String)

        var status: Int {
            switch self {
            case .malformed(let status), .badRequest(let status, _): status
            case .tooLarge: 413
            case .overBudget: 503
            case .timedOut: 408
            }
        }
    }

    /// What the head of a request says before any of its body is read, from one pass over its headers.
    struct HeadCheck: Equatable {
        var refusal: Refusal?
        /// `Expect: 100-continue`: an interim answer invites the body.
        var expectsContinue = false
        /// After an upgrade (`Upgrade`, `CONNECT`) NIO's decoder reads nothing more from the connection: it must
        /// close after this answer, or the next request on it would wait forever.
        var endsConnection = false
        /// The body's declared length (`Content-Length`), and whether it comes chunked instead.
        var bodyLength: Int?
        var chunkedBody = false

        /// A body follows the head.
        var hasBody: Bool { chunkedBody || (bodyLength ?? 0) > 0 }
    }

    init(environment: ProxyEnvironment, drain: ConnectionDrain? = nil) {
        self.environment = environment
        self.drain = drain
    }

    /// One request from the moment it is complete to the moment its answer is written.
    private final class Exchange {
        let head: HTTPRequestHead
        let body: ByteBuffer?
        /// Held while the body is (the origin's transfer copies it), and given back with the exchange.
        let bodyReservation: BudgetReservation?
        let plan: RequestPlan
        let headers: [Header]
        var machine: ReadThroughStateMachine
        let counters: RouteCounters
        /// What a purge needs from the rules this request started under.
        let purgeSettings: PurgeSettings
        /// The host the origin is told (`clients.hosts`).
        let forwardedHost: String?
        /// The connection closes after this answer (see `HeadCheck.endsConnection`).
        let endsConnection: Bool
        var entry: (meta: EntryMeta, body: ByteBuffer)?
        /// The entry was read from this process's memory (counted as a tier hit if it is served as a hit).
        var entryIsLocal = false
        /// In shadow: the comparison was made (or found impossible), once.
        var shadowCompared = false
        var response: OriginResponse<ByteBuffer>?
        var fetchMethod = "GET"
        /// Set while this request leads the fetch of its key (in process, and maybe across instances).
        var lead: Lead?
        /// Set while this request waits for another's fetch.
        var waiting: Scheduled<Void>?
        /// Set while this request, leading, takes the key's fetch lock or waits for another instance's fetch.
        var lockMachine: FetchLockStateMachine<ByteBuffer>?
        /// While waiting for another instance: the notices watched, and the next tick.
        var noticeWatch: Int?
        var lockTick: Scheduled<Void>?
        /// Set when the answer is written as it arrives: the origin's, not stored, or one being stored.
        var streamed: StreamedAnswer?
        /// Set when this request fetches an answer that may be stored: received into this fill, which this
        /// request and those coalesced on it read (read-while-write).
        var fill: EntryFill<ByteBuffer>?
        var fillHeadSeen = false
        /// The fill's answer is being stored once whole (`respondWhileStoring`).
        var storesFill = false
        /// The answer's status, for recording an outcome known only after it went out.
        var answerStatus = 0
        /// The outcome of an answer that was stored (or not) before its head went out.
        var finalPlan: ReadThroughStateMachine.ResponsePlan?
        var fillError: OriginError?
        /// This request reads the answer another request fetches, as it arrives (`streamed` reads it).
        var readsFill = false
        /// Set when the request's body goes to the origin as it arrives.
        var upload: OriginUpload?
        var answered = false
        /// When the request was complete, and how long the origin took (for the access log).
        let started = NIODeadline.now()
        var originNanoseconds: Int64?

        struct Lead {
            let address: EntryAddress
            /// The store's fetch lock, when this instance holds it.
            var lock: FetchLock?
        }

        init(head: HTTPRequestHead, body: ByteBuffer?, bodyReservation: BudgetReservation?, plan: RequestPlan, headers: [Header],
             machine: ReadThroughStateMachine, counters: RouteCounters, purgeSettings: PurgeSettings, forwardedHost: String?,
             endsConnection: Bool) {
            self.head = head
            self.forwardedHost = forwardedHost
            self.endsConnection = endsConnection
            self.body = body
            self.bodyReservation = bodyReservation
            self.plan = plan
            self.headers = headers
            self.machine = machine
            self.counters = counters
            self.purgeSettings = purgeSettings
        }

    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        stores = environment.stores.stores(for: context.eventLoop)
        plans = environment.plans.cache(for: context.eventLoop)
        let rules = environment.rules.current.rules
        limits = rules.limits
        hostCheck = rules.clients.hosts.isEmpty ? nil : rules.clients
        forwarding = rules.clients.forwardedHost
        clientTrusted = rules.clients.trusts(context.channel.remoteAddress?.ipAddress)
        deadlines = ClientDeadlines(settings: .init(limits), now: Self.now())
        connection = ProxyConnectionStateMachine(maxPipelined: limits.maxPipelined)
        armTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decodedThisRead = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            deadlines.headReceived(now: timeOfRead())
            guard !connection.isIgnoringInput else { return }
            self.head = head
            body = nil
            bodyReservation = nil
            headCheck = Self.check(head, limits: limits, hosts: hostCheck)
            // A write on an idle connection goes to the origin at once, its body following as it arrives (a window
            // at a time, whatever its size); pipelined requests and reads with bodies are held whole.
            // (Not a webhook: its signature covers the whole body, which is read first.)
            let streams = headCheck.hasBody && !connection.isAnswering && connection.waiting == 0 && MethodSet.invalidates(head.method.token)
                && WebhookEndpoint.rule(on: .public, in: environment.rules.current, method: head.method.token, uri: head.uri) == nil
            if let refusal = headCheck.refusal {
                return refuse(head, refusal)
            }
            if streams {
                let loop = context.eventLoop
                let bound = NIOLoopBound(self, eventLoop: loop)
                let upload = OriginUpload(window: limits.streamWindow, length: headCheck.chunkedBody ? nil : headCheck.bodyLength) {
                    loop.execute { bound.value.uploadHasRoom() }
                }
                uploading = upload
                uploadedBytes = 0
                self.head = nil
                if headCheck.expectsContinue {
                    context.writeAndFlush(wrapOutboundOut(ResponseEncoding.interimContinue(version: head.version, allocator: context.channel.allocator)),
                        promise: nil)
                }
                // The request is complete, for the deadlines, only once its body is (`.end`): until then a client
                // that stops sending is told 408, as for a body Trove holds.
                return enqueue(.request(head, nil, nil, endsConnection: headCheck.endsConnection, upload: upload), context: context,
                    complete: false)
            }
            // An interim answer cannot go out in the middle of another answer; a client that waits for it
            // sends its body after a while anyway (RFC 9110 §10.1.1).
            if !connection.isAnswering, headCheck.expectsContinue {
                context.writeAndFlush(wrapOutboundOut(ResponseEncoding.interimContinue(version: head.version, allocator: context.channel.allocator)),
                    promise: nil)
            }
        case .body(var chunk):
            deadlines.bodyReceived(now: timeOfRead())
            if let uploading {
                uploadedBytes += chunk.readableBytes
                guard uploadedBytes <= limits.maxRequestBody else {
                    // Chunked, and past the limit: the answer is already under way, so the connection ends.
                    environment.metrics.recordLimit(.maxRequestBody)
                    uploading.cancel()
                    self.uploading = nil
                    uploadExchange = nil
                    connection.closed()
                    return context.close(promise: nil)
                }
                if !uploading.append(Array(chunk.readableBytesView)) {
                    connection.uploadFull()
                    uploadPause.pause()
                }
                return
            }
            guard !connection.isIgnoringInput, let head else { return }
            guard (body?.readableBytes ?? 0) + chunk.readableBytes <= limits.maxRequestBody else {
                return refuse(head, .tooLarge)
            }
            let reservation = bodyReservation ?? BudgetReservation(budget: environment.requestBodies, capacity: limits.requestBodyBudget)
            bodyReservation = reservation
            guard reservation.grow(by: chunk.readableBytes) else {
                return refuse(head, .overBudget)
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            if let uploading {
                // Cleared first: finishing may let the origin answer at once, and the answer must see the body whole.
                self.uploading = nil
                uploadExchange = nil
                deadlines.requestReceived(now: timeOfRead())
                uploading.finish()
                return
            }
            guard !connection.isIgnoringInput, let head else { return }
            self.head = nil
            let request = Queued.request(head, body, bodyReservation, endsConnection: headCheck.endsConnection)
            body = nil
            bodyReservation = nil
            enqueue(request, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes arrived that made no request part: the first bytes of a head (or more of one).
        if !decodedThisRead { deadlines.bytesArrived(now: timeOfRead()) }
        decodedThisRead = false
        readTime = nil
        armTimer()
        context.fireChannelReadComplete()
    }

    /// A request that cannot be parsed is answered 400 (431 when its head is too large) in its turn, and the
    /// connection closed: nothing after it can be read.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError {
            head = nil
            let status = error == .headerOverflow ? 431 : 400
            if status == 431 { environment.metrics.recordLimit(.maxHeaderSize) }
            refuse(nil, .malformed(status: status))
        } else {
            context.close(promise: nil)
        }
    }

    /// Draining for shutdown: an idle connection closes now; a busy one after its answer (see `write`).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ConnectionDrain.Event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        perform(connection.drainStarted(), context: context)
    }

    func read(context: ChannelHandlerContext) {
        if connection.readRequested() { context.read() }
    }

    /// The client read (or stopped reading) what was written: the next pipelined answer starts only once it
    /// has caught up, so one connection holds at most one answer beyond NIO's write buffer.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        deadlines.writabilityChanged(writable, now: Self.now())
        armTimer()
        perform(connection.writabilityChanged(writable: writable), context: context)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed()
        // An answer being passed on has nobody to go to, a body being passed on will not end: the origin's
        // transfer stops.
        streamingExchange?.streamed?.leave()
        streamingExchange = nil
        drainFinished()
        uploading?.cancel()
        uploading = nil
        uploadExchange = nil
        bodyReservation = nil
        body = nil
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    // MARK: Refusing a request

    /// What a request's head says before any of its body is read: why it is refused, if it is, whether it
    /// expects 100 Continue, whether the connection ends after it. One pass over the headers, with no allocation
    /// on the common path: it runs for every request. `hosts`: the hosts answered, nil when any is.
    static func check(_ head: HTTPRequestHead, limits: Limits, hosts clients: ClientSettings?) -> HeadCheck {
        var check = HeadCheck(endsConnection: head.method == .CONNECT)
        var hostCount = 0
        var host: String?
        var unmetExpectation = false
        var declaredLength: Int?
        for (name, value) in head.headers {
            if HTTPSyntax.name(name, is: "host") {
                hostCount += 1
                host = value
            } else if HTTPSyntax.name(name, is: "expect") {
                if value.trimmingWhitespace().lowercased() == "100-continue" {
                    check.expectsContinue = true
                } else {
                    unmetExpectation = true
                }
            } else if HTTPSyntax.name(name, is: "content-length") {
                declaredLength = Int(value.trimmingWhitespace())
            } else if HTTPSyntax.name(name, is: "transfer-encoding") {
                check.chunkedBody = true
            } else if HTTPSyntax.name(name, is: "upgrade") {
                check.endsConnection = true
            }
        }
        if head.version == .http1_1 && hostCount != 1 || hostCount > 1 {
            // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request with no Host or more than one.
            check.refusal = .badRequest(status: 400, "an HTTP/1.1 request needs exactly one Host header")
        } else if let clients, !clients.answers(host: host) {
            // RFC 9110 §15.5.20: not a host this server answers for. Never forwarded, never stored.
            check.refusal = .badRequest(status: 421, "this Trove answers for \(clients.hosts.map(\.description).joined(separator: ", ")), "
                + "not for '\(host ?? "")'")
        } else if head.method == .CONNECT {
            check.refusal = .badRequest(status: 405, "Trove is a reverse proxy and does not tunnel CONNECT requests")
        } else if unmetExpectation {
            check.refusal = .badRequest(status: 417, "the only expectation Trove meets is 100-continue")
        } else if let declaredLength, declaredLength > limits.maxRequestBody {
            // Refused before the body is read, and before a 100 Continue invites the client to send it (unless
            // the body streams to the origin: see `channelRead`).
            check.refusal = .tooLarge
        }
        check.bodyLength = declaredLength
        return check
    }

    /// Answers `refusal` in this request's turn and closes the connection after it; nothing more is read.
    private func refuse(_ head: HTTPRequestHead?, _ refusal: Refusal) {
        switch refusal {
        case .tooLarge: environment.metrics.recordLimit(.maxRequestBody)
        case .overBudget: environment.metrics.recordLimit(.requestBodyBudget)
        case .malformed, .badRequest, .timedOut: break
        }
        self.head = nil
        body = nil
        bodyReservation = nil
        guard let context else { return }
        deadlines.requestReceived(now: readTime ?? Self.now())
        perform(connection.refused(.refused(head, refusal), writable: context.channel.isWritable), context: context)
    }

    // MARK: Deadlines

    /// The streamed answer waits for this client (or no longer does): part of the send timeout.
    private func answerStalled(_ stalled: Bool) {
        deadlines.answerStalled(stalled, now: Self.now())
        armTimer()
    }

    private static func now() -> Int64 {
        Int64(NIODeadline.now().uptimeNanoseconds)
    }

    /// Makes sure a timer fires no later than the current deadline. Moving a deadline later leaves the timer
    /// where it is (it looks again when it fires), so the common path schedules nothing.
    private func armTimer() {
        guard let context, let deadline = deadlines.deadlineAt else { return }
        let at = NIODeadline.uptimeNanoseconds(UInt64(max(0, deadline.at)))
        if let timerAt, timerAt <= at { return }
        timer?.cancel()
        timerAt = at
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { self.deadlinePassed() }
    }

    private func deadlinePassed() {
        timer = nil
        timerAt = nil
        guard let context, context.channel.isActive, !connection.isClosing else { return }
        guard let expiry = deadlines.expired(now: Self.now()) else { return armTimer() }
        switch expiry.timeout {
        case .header: environment.metrics.recordLimit(.headerTimeout)
        case .body: environment.metrics.recordLimit(.bodyTimeout)
        case .keepAlive: environment.metrics.recordLimit(.keepAliveTimeout)
        case .send: environment.metrics.recordLimit(.sendTimeout)
        }
        environment.logger.debug("client connection closed", metadata: [
            "reason": "\(expiry.reason)", "client": "\(context.channel.remoteAddress?.ipAddress ?? "")",
        ])
        if expiry.answers408, let upload = uploading, let exchange = uploadExchange, !exchange.answered {
            // A body going to the origin stopped arriving before anything was answered: the client is told why, as
            // for a body Trove holds, and the origin's transfer (and any answer it makes) is dropped.
            uploading = nil
            uploadExchange = nil
            upload.cancel()
            exchange.answered = true
            exchange.streamed?.leave()
            environment.stats.record(exchange.counters, outcome: nil, stored: false, error: true)
            return writeTroveAnswer(status: 408, message: expiry.reason, version: exchange.head.version)
        }
        switch connection.deadlinePassed(answers408: expiry.answers408) {
        case .refuse: refuse(nil, .timedOut(expiry.reason))
        case .close: context.close(promise: nil)
        }
    }

    // MARK: One request at a time

    private func enqueue(_ request: Queued, context: ChannelHandlerContext, complete: Bool = true) {
        guard !connection.isClosing else { return }
        if complete { deadlines.requestReceived(now: readTime ?? Self.now()) }
        perform(connection.requestComplete(request, writable: context.channel.isWritable), context: context)
    }

    /// Does what the connection machine said.
    private func perform(_ action: ProxyConnectionStateMachine<Queued>.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .begin(let request):
            begin(request, context: context)
        case .read:
            context.read()
        case .readAndBegin(let request):
            context.read()
            begin(request, context: context)
        case .close:
            context.close(promise: nil)
        }
    }

    /// True from `begin` until the drain was told the request is done: once, whichever way it ends.
    private var drainCounted = false

    /// The begun request is answered, or never will be (its connection is gone): counted once for the drain, so
    /// that a shutdown never waits its whole grace period for a request that died with its client.
    private func drainFinished() {
        guard drainCounted else { return }
        drainCounted = false
        drain?.finished()
    }

    private func begin(_ request: Queued, context: ChannelHandlerContext) {
        // One answer at a time per connection: one still counted is over once the next begins.
        drainFinished()
        drain?.started()
        drainCounted = true
        switch request {
        case .request(let head, let body, let reservation, let endsConnection, let upload):
            start(head, body: body, bodyReservation: reservation, endsConnection: endsConnection, upload: upload)
        case .plainRead(let request):
            lookUp(request)
        case .refused(let head, let refusal):
            environment.stats.record(environment.stats.counters(route: nil), outcome: nil, stored: false, error: true)
            let message: String
            switch refusal {
            case .malformed(let status):
                message = status == 431 ? "the request's headers are larger than Trove reads" : "the request could not be parsed"
            case .badRequest(_, let text):
                message = text
            case .tooLarge:
                message = "the request body is larger than \(Units.format(bytes: limits.maxRequestBody))"
            case .overBudget:
                message = "Trove is holding as many request bodies as it may; try again shortly"
            case .timedOut(let reason):
                message = reason
            }
            writeTroveAnswer(status: refusal.status, message: message, version: head?.version ?? .http1_1,
                retryAfter: refusal == .overBudget ? 1 : nil)
        }
    }

    /// An answer of Trove's own (an error), after which the connection closes.
    private func writeTroveAnswer(status: Int, message: String, version: HTTPVersion, retryAfter: Int? = nil) {
        let text = "\(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase): \(message)\n"
        write(status: status, headers: [Header("Content-Type", "text/plain; charset=utf-8")],
            trove: .init(cacheStatus: nil, age: nil, retryAfter: retryAfter), body: ByteBuffer(string: text), contentLength: text.utf8.count,
            request: HTTPRequestHead(version: version, method: .GET, uri: "/"), close: true)
    }

    /// The answer being written is out: start the next queued request (once the client has read enough of
    /// what was written), and read again if reads were held.
    private func answered(context: ChannelHandlerContext) {
        // Answered within the read that brought the request (a hit on the memory store): that read's time will do.
        deadlines.answered(now: readTime ?? Self.now())
        armTimer()
        guard context.channel.isActive else { return connection.answerAbandoned() }
        perform(connection.answerWritten(writable: context.channel.isWritable), context: context)
    }

    // MARK: Running a request

    private func start(
        _ head: HTTPRequestHead, body: ByteBuffer?, bodyReservation: BudgetReservation?, endsConnection: Bool, upload: OriginUpload? = nil
    ) {
        let version = environment.rules.version  // before `current` (see PlanCache.remembered)
        let loaded = environment.rules.current
        let received = head.headers.map { Header($0.name, $0.value) }
        // What a client says about where it came from is dropped before anything reads the request, but for what
        // a trusted proxy says of the client's address and scheme.
        let headers = HeaderPolicy.withoutForwarding(received, trustedProxy: clientTrusted)
        if let webhook = WebhookEndpoint.rule(on: .public, in: loaded, method: head.method.token, uri: head.uri) {
            return answerWebhook(webhook, loaded: loaded, head: head, headers: headers, body: body)
        }
        let clock = environment.clock
        let plan = plans?.plan(for: head, headers: headers, loaded: loaded, version: version, now: clock.nowMilliseconds)
            ?? loaded.rules.plan(for: RequestHead(method: head.method.token, target: head.uri, headers: headers,
                receivedAt: clock.nowMilliseconds()))
        // Writes also purge what their answer's Location names; reads never need the rules again.
        var invalidationKey: (@Sendable (String) -> String?)?
        if MethodSet.invalidates(plan.method) {
            invalidationKey = { @Sendable target in loaded.rules.invalidationKey(for: target, headers: headers) }
        }
        let machine = ReadThroughStateMachine(
            plan: plan, requestHeaders: headers, clock: environment.clock, invalidationKey: invalidationKey)
        let exchange = Exchange(head: head, body: body, bodyReservation: bodyReservation, plan: plan, headers: headers, machine: machine,
            counters: environment.stats.counters(route: plan.route?.name), purgeSettings: loaded.purgeSettings,
            forwardedHost: forwarding.host(for: head.headers.first(name: "host")), endsConnection: endsConnection)
        exchange.upload = upload
        if upload != nil, upload === uploading { uploadExchange = exchange }
        execute(exchange.machine.start(), exchange)
    }

    private func execute(_ action: ReadThroughStateMachine.Action, _ exchange: Exchange) {
        guard let store else { return }
        switch action {
        case .lookup(let address):
            if let lookedUp, lookedUp.key == address.key {
                // The fast path read this entry a moment ago and left the request to this path: the same outcome
                // (a second lookup would count the key twice for admission).
                self.lookedUp = nil
                return lookupCompleted(lookedUp.outcome, exchange)
            }
            lookUp(address, in: store) { outcome in self.lookupCompleted(outcome, exchange) }
        case .fetch(let fetch):
            exchange.fetchMethod = fetch.method
            if exchange.readsFill {
                // The answer shared with us varies on what this request does not match: fetch our own.
                exchange.readsFill = false
                exchange.streamed?.leave()
                exchange.streamed = nil
            }
            if fetch.coalesce, let address = exchange.machine.fetchingAddress {
                coordinate(fetch, address, exchange)
            } else {
                send(fetch, exchange)
            }
        case .store(let pending, _):
            // A revalidated entry keeps the body that was looked up; otherwise the origin's answer is stored.
            let body: ByteBuffer
            if pending.reusesStoredBody {
                guard let entry = exchange.entry else { return internalError("revalidation without an entry", exchange) }
                body = entry.body
                exchange.entry = (pending.meta, entry.body)
            } else {
                guard let response = exchange.response else { return internalError("store without an origin answer", exchange) }
                body = response.body
            }
            environment.write(pending, body: body, to: store) { result in
                if case .failure(let error) = result {
                    self.environment.logger.debug("store write failed", metadata: ["store.error": "\(error)"])
                }
                // The answer is shareable whether or not the store took it: waiters here get it either way,
                // other instances only when it is stored.
                self.endLead(exchange, .entry(pending.meta, body), notice: (try? result.get()) != nil ? .stored : .released)
                self.execute(exchange.machine.storeCompleted(result), exchange)
            }
        case .respondWhileStoring(let pending, let plan):
            guard let fill = exchange.fill, case .cache(let target) = exchange.plan.decision else {
                return internalError("an answer to store without its fill", exchange)
            }
            exchange.storesFill = true
            // What is kept for the store counts against the response body budget until the fill is gone.
            let reservation = BudgetReservation(budget: environment.responseBodies, capacity: limits.responseBodyBudget)
            fill.decide(.keep(limit: target.policy.maxBodyBytes, grow: { reservation.grow(by: $0) }))
            if let lead = exchange.lead { environment.coalescer.share(lead.address.key, pending.meta, fill) }
            respond(plan, exchange, close: false)
        case .finished(let plan):
            exchange.fill?.seal()
            if exchange.answerStatus != 0 {
                record(plan, exchange, status: exchange.answerStatus, bytes: plan.omitBody ? 0 : exchange.fill?.received ?? 0,
                    isError: exchange.fillError != nil)
            } else {
                exchange.finalPlan = plan  // the answer waits for the whole body (to decode it): recorded then
            }
        case .purge(let purges, _):
            environment.purger.purge(purges, from: .writeRule, context: ["route.name": exchange.plan.route?.name ?? ""],
                settings: exchange.purgeSettings, in: store) { result in
                self.execute(exchange.machine.purgeCompleted(result), exchange)
            }
        case .respond(let plan):
            // A fetch this request led ends here when its answer was not stored: the waiters fetch alone.
            endLead(exchange, .released, notice: .released)
            respond(plan, exchange, close: false)
        case .respondAndRefresh(let plan, let refresh):
            respond(plan, exchange, close: false)
            if let loop = context?.eventLoop, let stores {
                BackgroundRefresh.start(refresh, entryBody: exchange.entry?.body, plan: exchange.plan, headers: exchange.headers,
                    forwardedHost: exchange.forwardedHost, limits: limits,
                    environment: environment, stores: stores, loop: loop)
            }
        }
    }

    /// Asks the store, timing the lookup for `trove_store_duration_seconds` and logging a store that cannot answer:
    /// the full path's lookups and the fast path's that wait for Redis alike.
    private func lookUp(_ address: EntryAddress, in store: any CacheStore<ByteBuffer>, then: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        let started = NIODeadline.now()
        store.lookup(address) { outcome in
            var failed = false
            if case .unavailable(let error) = outcome {
                failed = true
                self.environment.logger.debug("store unavailable for a lookup", metadata: ["store.error": "\(error)"])
            }
            self.environment.metrics.recordLookup(nanoseconds: (NIODeadline.now() - started).nanoseconds, failed: failed)
            then(outcome)
        }
    }

    private func lookupCompleted(_ outcome: LookupOutcome<ByteBuffer>, _ exchange: Exchange) {
        if case .found(let meta, let body, _, let local) = outcome {
            exchange.entry = (meta, body)
            exchange.entryIsLocal = local
        }
        let action = exchange.machine.lookupCompleted(outcome.result)
        if exchange.machine.isShadow, case .fetch = action, exchange.machine.shadowServed == nil, let route = exchange.plan.route {
            environment.shadow.recordMiss(route: route.name)
        }
        execute(action, exchange)
    }

    /// In shadow, once the origin's answer is whole (or known not to be kept): compares it with the entry that would
    /// have been served, if one would have been.
    private func shadowCompare(_ exchange: Exchange, body: ByteBuffer?, why: @autoclosure () -> String) {
        guard exchange.machine.shadowServed != nil, let route = exchange.plan.route, case .cache(let target) = exchange.plan.decision else {
            return
        }
        exchange.shadowCompared = true
        guard let body, let entry = exchange.entry, let response = exchange.response else {
            return environment.shadow.recordNotCompared(route: route.name, why: why())
        }
        if ShadowCheck.compare(entry: entry, origin: (response.status, response.headers, body), target: target, route: route.name,
            requestTarget: exchange.head.uri, report: environment.shadow)
        {
            exchange.machine.shadowFoundStale()
        }
    }

    // MARK: The hit fast path

    /// What the fast path looked up for the request it is handing to the full path (see `execute(.lookup)`).
    private var lookedUp: (key: String, outcome: LookupOutcome<ByteBuffer>)?

    /// The request the fast path handed over has been through the decoder: its lookup, if it was not used, is
    /// stale from now on.
    func forgetLookup() {
        lookedUp = nil
    }

    /// Takes `read` (framed by `HitFastPath` at the start of `bytes`) if it can be answered without the full path's
    /// objects: its plan remembered, nothing else pending on the connection. When the store knows the outcome at once
    /// (memory), answers it now if the entry is served as it is (a fresh hit with no variant, no gzip to decode, no
    /// chunks); when the store must be asked (Redis), queues it (`lookUp`). Returns false, having changed nothing
    /// the full path would notice, when the full path must take the request; an outcome looked up is then handed to
    /// it with the request.
    func answerAtOnce(_ read: RequestFraming.PlainRead, in bytes: ByteBuffer) -> Bool {
        guard let context, let plans, let store, uploading == nil, head == nil, !connection.isIgnoringInput,
            connection.answersAtOnce(writable: context.channel.isWritable), !(drain?.isDraining ?? false)
        else { return false }
        if let hostCheck {
            let host = bytes.getString(at: bytes.readerIndex + read.host.lowerBound, length: read.host.count)
            guard hostCheck.answers(host: host) else { return false }
        }
        let started = environment.accessLog == nil ? nil : NIODeadline.now()
        guard let target = bytes.getSlice(at: bytes.readerIndex + read.target.lowerBound, length: read.target.count),
            let remembered = plans.remembered(isHead: read.isHead, target: target, version: environment.rules.version),
            let policy = remembered.plan.route?.cachePolicy, policy.tagsFrom == nil, policy.sendTags == nil
        else { return false }
        decodedThisRead = true
        let time = timeOfRead()
        deadlines.headReceived(now: time)
        guard let outcome = store.lookupAtOnce(remembered.address) else {
            // The store must be asked (Redis, or the strict tier's counters): the request takes its turn like any
            // other, and is answered when the store is, still without the full path's objects.
            let copy = ByteBuffer(bytes: bytes.readableBytesView.prefix(read.length))
            enqueue(.plainRead(PlainRead(read: read, bytes: copy, remembered: remembered, started: started ?? NIODeadline.now())),
                context: context)
            return true
        }
        guard answerHit(outcome, read: read, remembered: remembered, target: target, started: started, context: context) else {
            lookedUp = (remembered.address.key, outcome)
            return false
        }
        deadlines.requestReceived(now: time)
        drainFinished()
        deadlines.answered(now: time)
        return true
    }

    /// Asks the store for a plain read's entry (its turn has come), then answers it as `answerAtOnce` does, or, when
    /// the entry is not a plain fresh hit, runs the full path on the request with the outcome found.
    private func lookUp(_ request: PlainRead) {
        guard let store else { return }
        lookUp(request.remembered.address, in: store) { outcome in
            guard let context = self.context, context.channel.isActive else {
                self.drainFinished()
                return self.connection.answerAbandoned()
            }
            // (The copy holds the whole head, so the target is in it.)
            let target = request.bytes.getSlice(
                at: request.bytes.readerIndex + request.read.target.lowerBound, length: request.read.target.count)!
            // Draining: the full path says whether this answer closes the connection.
            if !(self.drain?.isDraining ?? false),
                self.answerHit(outcome, read: request.read, remembered: request.remembered, target: target,
                    started: self.environment.accessLog == nil ? nil : request.started, context: context)
            {
                self.drainFinished()
                return self.answered(context: context)
            }
            self.lookedUp = (request.remembered.address.key, outcome)
            var headers = HTTPHeaders()
            for (name, value) in request.bytes.withUnsafeReadableBytes({ RequestFraming.fields(of: request.read, in: $0) }) {
                headers.add(name: name, value: value)
            }
            let head = HTTPRequestHead(version: .http1_1, method: request.read.isHead ? .HEAD : .GET, uri: String(buffer: target),
                headers: headers)
            self.start(head, body: nil, bodyReservation: nil, endsConnection: false)
            self.lookedUp = nil
        }
    }

    /// Writes the answer to a plain read from `outcome` if it is a plain fresh hit that needs nothing but its bytes
    /// (no chunks, no gzip to decode, within the answer budget), and counts it; false, having done nothing, if not.
    private func answerHit(
        _ outcome: LookupOutcome<ByteBuffer>, read: RequestFraming.PlainRead, remembered: PlanCache.Remembered, target: ByteBuffer,
        started: NIODeadline?, context: ChannelHandlerContext
    ) -> Bool {
        let now = environment.clock.nowMilliseconds()
        guard case .found(let meta, let body, let generations, let local) = outcome,
            let (status, age) = ReadThroughStateMachine.freshHit(meta, address: remembered.address, generations: generations, now: now),
            meta.chunks == nil, body.readableBytes == meta.bodyLength, !ContentCoding.isGzip(meta.headers),
            environment.stores.sharesBodies || body.readableBytes < Self.budgetedAnswer
        else { return false }
        _ = connection.answerStarts(keepAliveAsked: true)
        let bodiless = ResponseEncoding.isBodiless(meta.status)
        let copies = !read.isHead && !bodiless && body.readableBytes <= Self.copiedBody
        var answer = ResponseEncoding.head(version: .http1_1, status: meta.status, headers: meta.headers,
            trove: .init(cacheStatus: status, age: age, retryAfter: nil), contentLength: bodiless ? nil : meta.bodyLength, keepAlive: true,
            allocator: context.channel.allocator, reserving: copies ? body.readableBytes : 0)
        if read.isHead || bodiless || body.readableBytes == 0 {
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
        } else if copies {
            // One buffer, one write: a small body costs less to copy than a second buffer and an iovec.
            answer.writeImmutableBuffer(body)
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
        } else {
            context.write(wrapOutboundOut(answer), promise: nil)
            context.writeAndFlush(wrapOutboundOut(body), promise: nil)
        }
        remembered.counters.record(outcome: .hit, stored: false, storedBytes: 0, coalesced: false, error: false, local: local)
        environment.metrics.recordFastHit()
        if let accessLog = environment.accessLog {
            accessLog.record(route: remembered.plan.route?.name, method: read.isHead ? "HEAD" : "GET",
                path: String(buffer: target), status: meta.status, outcome: "hit", key: remembered.address.key, originNanoseconds: nil,
                totalNanoseconds: started.map { (NIODeadline.now() - $0).nanoseconds } ?? 0, bytes: read.isHead ? 0 : body.readableBytes,
                client: context.channel.remoteAddress?.ipAddress)
        }
        return true
    }

    /// Bodies up to this size are copied behind the head, into one buffer.
    static let copiedBody = 16 << 10

    // MARK: Coalescing

    private func coordinate(_ fetch: ReadThroughStateMachine.Fetch, _ address: EntryAddress, _ exchange: Exchange) {
        guard let context else { return }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, exchange), eventLoop: loop)
        // Pieces of a shared answer may come before the outcome that says so: they wait in `pending`.
        exchange.streamed = StreamedAnswer(consumed: { _ in }, leave: {})
        let join = environment.coalescer.join(address.key, on: loop, deliver: { outcome in
            let (handler, exchange) = bound.value
            handler.deliver(outcome, to: exchange)
        }, read: { event in
            loop.execute {
                let (handler, exchange) = bound.value
                handler.fillEvent(event, exchange)
            }
        })
        if case .shared = join {} else if case .wait = join {} else { exchange.streamed = nil }
        switch join {
        case .shared(let meta, let fill, let reader):
            readShared(meta, fill, reader: reader, exchange)
        case .alone:
            send(fetch, exchange)
        case .wait:
            // Bounded: if the fetch we wait for never ends, fetch on our own.
            let limit = TimeAmount.milliseconds(Coalescer.fetchWindow(exchange.plan))
            exchange.waiting = loop.assumeIsolated().scheduleTask(in: limit) {
                self.deliver(.released, to: exchange)
            }
        case .lead:
            exchange.lead = Exchange.Lead(address: address, lock: nil)
            lockAcrossInstances(fetch, address, exchange)
        }
    }

    /// The fetch this request waited for has ended (or the wait did).
    private func deliver(_ outcome: Coalescer.Outcome, to exchange: Exchange) {
        guard let waiting = exchange.waiting else {
            // Already delivered, or never waiting: a shared answer joined meanwhile is left.
            if case .filling(_, let fill, let reader) = outcome { fill.leave(reader) }
            return
        }
        waiting.cancel()
        exchange.waiting = nil
        if case .filling = outcome {} else { exchange.streamed = nil }
        switch outcome {
        case .filling(let meta, let fill, let reader):
            readShared(meta, fill, reader: reader, exchange)
        case .entry(let meta, let body):
            exchange.entry = (meta, body)
            exchange.entryIsLocal = false
            execute(exchange.machine.coalesced(.entry(meta)), exchange)
        case .released:
            execute(exchange.machine.coalesced(.released), exchange)
        case .failed(let error):
            execute(exchange.machine.coalesced(.failed(error)), exchange)
        }
    }

    /// The answer this request waited for is being stored as it arrives: it is answered from the fill, as
    /// reader `reader` (left again if the machine finds the entry does not fit this request).
    private func readShared(_ meta: EntryMeta, _ fill: EntryFill<ByteBuffer>, reader: Int, _ exchange: Exchange) {
        exchange.entry = (meta, ByteBuffer())
        exchange.streamed?.read(fill, as: reader)
        exchange.readsFill = true
        streamingExchange = exchange
        execute(exchange.machine.coalesced(.entry(meta)), exchange)
    }

    /// Takes the key's fetch lock, or waits for the instance that holds it (`FetchLockStateMachine`).
    private func lockAcrossInstances(_ fetch: ReadThroughStateMachine.Fetch, _ address: EntryAddress, _ exchange: Exchange) {
        exchange.lockMachine = FetchLockStateMachine(address: address, window: Coalescer.fetchWindow(exchange.plan))
        perform(exchange.lockMachine!.start(), fetch, exchange)
    }

    /// Performs what the exchange's fetch-lock machine asks for, feeding the results back to it.
    private func perform(_ action: FetchLockStateMachine<ByteBuffer>.Action, _ fetch: ReadThroughStateMachine.Fetch, _ exchange: Exchange) {
        guard let context, let store, let address = exchange.lockMachine?.address else { return }
        switch action {
        case .lock:
            stores?.fetchLocks.lockFetch(address.key, ttl: Coalescer.fetchWindow(exchange.plan)) { result in
                guard let next = exchange.lockMachine?.lockCompleted(result) else { return }
                self.perform(next, fetch, exchange)
            }
        case .startWaiting:
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, exchange), eventLoop: loop)
            if let notifications = environment.coalescer.notifications {
                exchange.noticeWatch = notifications.watch(address.key) { _ in
                    loop.execute {
                        let (handler, exchange) = bound.value
                        guard let next = exchange.lockMachine?.notice() else { return }
                        handler.perform(next, fetch, exchange)
                    }
                }
            }
            scheduleTick(fetch, exchange)
        case .lookup:
            store.lookup(address) { outcome in
                guard let next = exchange.lockMachine?.lookupCompleted(outcome, now: self.environment.clock.nowMilliseconds()) else { return }
                self.perform(next, fetch, exchange)
            }
        case .fetch(let lock, let stopWaiting):
            if stopWaiting { self.stopWaiting(exchange) }
            exchange.lockMachine = nil
            if let lock { exchange.lead?.lock = lock }
            send(fetch, exchange)
        case .answer(let meta, let body):
            stopWaiting(exchange)
            exchange.lockMachine = nil
            exchange.entry = (meta, body)
            exchange.entryIsLocal = false
            // Our own waiters share what the other instance stored; there is no lock of ours to release.
            endLead(exchange, .entry(meta, body), notice: .released)
            execute(exchange.machine.coalesced(.entry(meta)), exchange)
        case .none:
            break
        }
    }

    private func scheduleTick(_ fetch: ReadThroughStateMachine.Fetch, _ exchange: Exchange) {
        guard let context else { return }
        exchange.lockTick = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(FetchLockStateMachine<ByteBuffer>.tickInterval)) {
            guard let next = exchange.lockMachine?.tick() else { return }
            self.scheduleTick(fetch, exchange)
            self.perform(next, fetch, exchange)
        }
    }

    /// Stops watching the key's notices and ticking.
    private func stopWaiting(_ exchange: Exchange) {
        exchange.lockTick?.cancel()
        exchange.lockTick = nil
        if let id = exchange.noticeWatch, let key = exchange.lockMachine?.address.key {
            environment.coalescer.notifications?.unwatch(key, id: id)
        }
        exchange.noticeWatch = nil
    }

    /// Ends the fetch this request led, if it led one: local waiters get `outcome`, other instances `notice`.
    private func endLead(_ exchange: Exchange, _ outcome: Coalescer.Outcome, notice: FetchNotice) {
        guard let lead = exchange.lead else { return }
        exchange.lead = nil
        environment.coalescer.finish(lead.address.key, outcome)
        if let lock = lead.lock { stores?.fetchLocks.unlockFetch(lead.address.key, lock: lock, notice: notice) }
    }

    // MARK: The origin

    private func send(_ fetch: ReadThroughStateMachine.Fetch, _ exchange: Exchange) {
        guard let context, var request = OriginRequests.make(
            plan: exchange.plan, fetch: fetch, headers: exchange.headers, clientAddress: context.channel.remoteAddress?.ipAddress,
            body: exchange.body, forwardedHost: exchange.forwardedHost, limits: limits, budget: environment.responseBodies)
        else {
            endLead(exchange, .released, notice: .released)
            execute(exchange.machine.originFailed(OriginError(kind: .failed, origin: "?", reason: "no origin for this request")), exchange)
            return
        }
        exchange.fetchMethod = fetch.method
        if fetch.sendsBody, let upload = exchange.upload {
            request.upload = upload
            request.body = nil
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, exchange), eventLoop: loop)
        let meter = PauseMeter(environment.metrics, waitingFor: .client)
        let paused: @Sendable (Bool) -> Void = { meter.set($0) }
        if !fetch.forStorage {
            // Not stored: passed on as it arrives, a window at a time, whatever its size.
            let inbox = LoopInbox<OriginStream<ByteBuffer>.Event>(on: loop) { events in
                let (handler, exchange) = bound.value
                handler.streamEvents(events, exchange)
            }
            // Only this connection takes this stream's window: a stall is this client not reading, and counts
            // toward its send timeout. (A fill's window waits on its slowest reader, maybe another client's.)
            let stream = OriginStream<ByteBuffer>(window: limits.streamWindow, deliver: { inbox.post($0) }, paused: { stalled in
                paused(stalled)
                loop.execute { bound.value.0.answerStalled(stalled) }
            })
            request.stream = stream
            exchange.streamed = StreamedAnswer(stream)
            streamingExchange = exchange
        } else {
            // Maybe stored: received into a fill that this request, and those coalesced on it, read as it arrives
            // (see `EntryFill`); the head is judged on this loop, the pieces go into the fill on the origin's thread.
            let fill = EntryFill<ByteBuffer>(window: limits.streamWindow)
            let stream = OriginStream<ByteBuffer>(window: limits.streamWindow, deliver: { event in
                switch event {
                case .head(let status, let headers):
                    loop.execute {
                        let (handler, exchange) = bound.value
                        handler.fillHead(status: status, headers: headers, exchange)
                    }
                case .body(let piece):
                    fill.append(piece)
                }
            }, paused: paused)
            fill.connect(release: { stream.consumed($0) }, abort: { stream.cancel() })
            request.stream = stream
            exchange.fill = fill
        }
        let started = NIODeadline.now()
        environment.call(request, on: context.eventLoop).assumeIsolated().whenSuccess { result in
            exchange.originNanoseconds = (NIODeadline.now() - started).nanoseconds
            switch result {
            case .response(let response):
                if let fill = exchange.fill {
                    // The head normally came first; an origin client that does not stream (a test's) hands
                    // everything over at the end.
                    if !exchange.fillHeadSeen {
                        self.fillHead(status: response.status, headers: response.headers, exchange, whole: response.body.readableBytes)
                    }
                    if response.body.readableBytes > 0 { fill.append(response.body) }
                    fill.finish(.success(()))
                    return self.fillEnded(nil, exchange)
                }
                if let streamed = exchange.streamed {
                    // The head normally came first; an answer whose head was not handed over gets it now.
                    var events: [OriginStream<ByteBuffer>.Event] = []
                    if !streamed.headReceived { events.append(.head(status: response.status, headers: response.headers)) }
                    // An origin client that does not stream (a test's) hands the body over whole.
                    if response.body.readableBytes > 0 { events.append(.body(response.body)) }
                    self.streamEvents(events, exchange)
                    return self.streamEnded(nil, exchange)
                }
                exchange.response = response
                if exchange.machine.isShadow { self.shadowCompare(exchange, body: response.body, why: "") }
                self.execute(exchange.machine.originResponded(
                    status: response.status, headers: response.headers, bodyLength: response.bodyLength), exchange)
            case .failed(let error) where exchange.fill != nil && exchange.fillHeadSeen:
                exchange.fill?.finish(.failure(error))
                self.fillEnded(error, exchange)
            case .failed(let error) where exchange.streamed?.headReceived == true:
                // Part of the answer may be out: the client can only be told by the connection closing.
                self.environment.logger.warning("origin failed in the middle of an answer", metadata: [
                    "origin.name": "\(error.origin)", "origin.error": "\(error.reason)",
                    "route.name": "\(exchange.plan.route?.name ?? "")",
                ])
                self.streamEnded(error, exchange)
            case .failed(let error):
                self.environment.logger.warning("origin failed", metadata: [
                    "origin.name": "\(error.origin)", "origin.error": "\(error.reason)",
                    "route.name": "\(exchange.plan.route?.name ?? "")",
                ])
                self.endLead(exchange, .failed(error), notice: .released)
                self.execute(exchange.machine.originFailed(error), exchange)
            case .busy(let retryAfter, let reason):
                self.endLead(exchange, .released, notice: .released)
                self.execute(exchange.machine.originBusy(retryAfter: retryAfter, reason: reason), exchange)
            }
        }
    }

    // MARK: Answering

    /// A cacheable route's answer with its tag headers as the route says: the origin's tags header (`tags_from`)
    /// taken off unless kept (an entry's was taken off when it was stored), and the entry's tags sent on to a
    /// CDN in front (`send_tags`).
    private static func withTagHeaders(
        _ headers: [Header], target: RequestPlan.CacheTarget, plan: ReadThroughStateMachine.ResponsePlan, exchange: Exchange
    ) -> [Header] {
        let policy = target.policy
        var originTags: [String] = []
        var out = headers
        switch plan.source {
        case .entry:
            originTags = exchange.entry?.meta.originTags ?? []
        case .origin:
            if let from = policy.tagsFrom, let response = exchange.response {
                originTags = from.tags(in: response.headers) ?? []
                out = from.strip(out)
            }
        case .trove:
            return headers
        }
        guard let send = policy.sendTags else { return out }
        return send.apply(target.tags + originTags.filter { !target.tags.contains($0) }, to: out)
    }

    private func respond(_ plan: ReadThroughStateMachine.ResponsePlan, _ exchange: Exchange, close: Bool) {
        guard !exchange.answered else { return }
        exchange.answered = true
        var status: Int
        var headers: [Header]
        var body: ByteBuffer?
        var contentLength: Int?
        switch plan.source {
        case .entry:
            guard let entry = exchange.entry else {
                exchange.answered = false
                return internalError("answer from an entry without one", exchange)
            }
            // A 304's headers are cut down below, after the content coding has had its say on them.
            status = plan.notModified ? 304 : entry.meta.status
            headers = entry.meta.headers
            if !plan.notModified {
                body = entry.body
                contentLength = entry.meta.bodyLength
            }
        case .origin:
            guard let response = exchange.response else {
                exchange.answered = false
                return internalError("answer from the origin without one", exchange)
            }
            status = response.status
            headers = HeaderPolicy.responseHeaders(response.headers)
            body = response.body
            contentLength = response.bodyLength
            if plan.notModified {
                status = 304
                body = nil
                contentLength = nil
            } else if exchange.fetchMethod == "HEAD" {
                // A HEAD went to the origin: its Content-Length describes the body it did not send.
                contentLength = response.headers.first { $0.name.lowercased() == "content-length" }
                    .flatMap { Int($0.value.trimmingWhitespace()) }.flatMap { $0 >= 0 ? $0 : nil }
            }
        case .trove(let troveStatus, let message):
            status = troveStatus
            headers = [Header("Content-Type", "text/plain; charset=utf-8")]
            body = ByteBuffer(string: "\(troveStatus) \(HTTPResponseStatus(statusCode: troveStatus).reasonPhrase): \(message)\n")
            contentLength = body?.readableBytes
        }
        // Checked on the route's policy first: binding the cache target costs a copy on every hit.
        if let policy = exchange.plan.route?.cachePolicy, policy.tagsFrom != nil || policy.sendTags != nil,
            case .cache(let target) = exchange.plan.decision, !exchange.plan.inShadow
        {
            headers = Self.withTagHeaders(headers, target: target, plan: plan, exchange: exchange)
        }
        // A chunked entry (the Redis store keeps large bodies apart from their heads) is served a chunk at a time.
        if plan.source == .entry, !exchange.readsFill, !plan.notModified, let meta = exchange.entry?.meta, let chunks = meta.chunks {
            if !plan.omitBody { readChunks(meta, chunks, exchange) }
            body = nil
            contentLength = meta.bodyLength
        }
        // Read from a fill (this request's own fetch of an answer that may be stored, or the one it was coalesced
        // on): the body streams as it arrives, unless it is not wanted.
        let fromFill = exchange.readsFill || (plan.source == .origin && exchange.fill != nil)
        if fromFill {
            let wantsBody = !plan.notModified && !plan.omitBody && !ResponseEncoding.isBodiless(status)
            if let fill = exchange.fill, !exchange.readsFill {
                if fill.isUndecided { fill.decide(.pass) }
                if wantsBody, let reader = fill.join(fillReader(exchange)) {
                    exchange.streamed = StreamedAnswer(fill, reader: reader)
                    streamingExchange = exchange
                } else if !exchange.storesFill {
                    // Passed on, and this request does not read it (a HEAD, a 304): nobody needs the transfer.
                    fill.cancel(OriginError(kind: .failed, origin: exchange.plan.origin?.name ?? "", reason: "its body is not needed"))
                }
            } else if !wantsBody {
                exchange.streamed?.leave()
                exchange.streamed = nil
                exchange.readsFill = false
            }
            body = nil
            contentLength = plan.notModified ? nil : exchange.fill?.declaredLength ?? exchange.streamed?.declaredLength
        }
        if case .cache = exchange.plan.decision, plan.source == .entry || plan.source == .origin, ContentCoding.isGzip(headers) {
            // Stored gzip is sent as it is to clients that take gzip, decoded for the others; either way
            // `Vary: Accept-Encoding` tells caches after Trove that the coding depends on the request.
            if ContentCoding.acceptsGzip(exchange.headers) {
                headers = ContentCoding.varyingOnEncoding(headers)
            } else {
                headers = ContentCoding.varyingOnEncoding(ContentCoding.decodedHeaders(headers))
                let decodedHeaders = headers
                func decodeAndFinish(_ coded: ByteBuffer) {
                    decode(coded, exchange) { decoded in
                        switch decoded {
                        case .success(let decoded):
                            self.finish(plan, exchange, status: status, headers: decodedHeaders, body: decoded, contentLength: decoded.readableBytes,
                                close: close)
                        case .failure(let problem):
                            self.failAnswer(plan, exchange, "\(problem)", close: close)
                        }
                    }
                }
                if let coded = body {  // not a 304, which has headers only
                    return decodeAndFinish(coded)
                }
                if let streamed = exchange.streamed, fromFill || exchange.entry?.meta.chunks != nil {
                    // Decoded whole: gathered first, within the most Trove holds of one answer.
                    return gather(streamed, exchange, limit: limits.maxResponseBody) { gathered in
                        switch gathered {
                        case .success(let coded): decodeAndFinish(coded)
                        case .failure(let error): self.failAnswer(plan, exchange, error.description, close: close)
                        }
                    }
                }
            }
        }
        // A memory-store entry's body is the store's own: this answer holds no copy of it.
        let shared = plan.source == .entry && environment.stores.sharesBodies
        finish(plan, exchange, status: status, headers: headers, body: body, contentLength: contentLength, close: close,
            bodyIsShared: shared)
    }

    /// Answers of at least this many bytes count against `limits.response_body_budget` until they are written
    /// to the socket: fifty clients that never read once held fifty copies of a 40 MB entry read from Redis. Smaller
    /// ones cost no promise on the hit path, and are bounded by the connection count and NIO's write buffer. A
    /// body the memory store shares with every reader (`bodyIsShared`) costs nothing more per answer, so it is not
    /// counted: fifty clients reading one 50 MB entry from memory hold one body, not fifty.
    static let budgetedAnswer = 256 << 10

    /// Records the answer (statistics, access log) and writes it.
    private func finish(
        _ plan: ReadThroughStateMachine.ResponsePlan, _ exchange: Exchange, status: Int, headers: [Header], body: ByteBuffer?,
        contentLength: Int?, close: Bool, isError: Bool = false, bodyIsShared: Bool = false
    ) {
        var writing: BudgetReservation?
        if let body, !plan.omitBody, !bodyIsShared, body.readableBytes >= Self.budgetedAnswer {
            let reservation = BudgetReservation(budget: environment.responseBodies, capacity: limits.responseBodyBudget)
            guard reservation.grow(by: body.readableBytes) else {
                environment.metrics.recordLimit(.responseBodyBudget)
                let text = "503 Service Unavailable: Trove is holding as many answers as it may "
                    + "(limits.response_body_budget); try again shortly\n"
                var busy = plan
                busy.cacheStatus = nil
                busy.retryAfter = 1
                return finish(busy, exchange, status: 503, headers: [Header("Content-Type", "text/plain; charset=utf-8")],
                    body: ByteBuffer(string: text), contentLength: text.utf8.count, close: close, isError: true)
            }
            writing = reservation
        }
        var headers = headers
        if plan.notModified && status == 304 { headers = ConditionalRequest.notModifiedHeaders(headers) }
        // In shadow the client gets the origin's answer as it came: none of Trove's headers.
        let trove = exchange.plan.inShadow ? .none : ResponseEncoding.TroveHeaders(cacheStatus: plan.cacheStatus, age: plan.age, retryAfter: plan.retryAfter)

        var isError = isError
        if case .trove(let troveStatus, _) = plan.source, troveStatus >= 500 || troveStatus == 400 || troveStatus == 413 { isError = true }
        if exchange.storesFill {
            // Stored (or not) once the body is whole: recorded then (`.finished`).
            exchange.answerStatus = status
        } else {
            record(exchange.finalPlan ?? plan, exchange, status: status, bytes: plan.omitBody ? 0 : body?.readableBytes ?? 0, isError: isError)
        }

        if let streamed = exchange.streamed, plan.source == .origin || plan.source == .entry {
            return startStream(streamed, exchange, status: status, headers: headers, trove: trove, omitBody: plan.omitBody,
                close: close || exchange.endsConnection)
        }
        write(status: status, headers: headers, trove: trove, body: plan.omitBody ? nil : body, contentLength: contentLength,
            request: exchange.head, close: close || exchange.endsConnection, reservation: writing)
    }

    /// Counts the answer in the statistics and the access log.
    private func record(_ plan: ReadThroughStateMachine.ResponsePlan, _ exchange: Exchange, status: Int, bytes: Int, isError: Bool) {
        // Every write the origin accepted, with what it purged: the evidence the shadow report's diagnosis reads.
        if plan.source == .origin, (200..<400).contains(status), MethodSet.invalidates(exchange.plan.method) {
            var purged = PurgeSet()
            if case .write(let purges) = exchange.plan.decision { purged = purges }
            environment.shadow.recordWrite(route: exchange.plan.route?.name ?? "(unmatched)", method: exchange.plan.method,
                target: exchange.head.uri, purged: purged)
        }
        let stored = plan.cacheStatus?.stored ?? false
        // What was stored, not the answer as this client gets it (decoded from gzip, or a 304 without a body).
        let storedBytes = stored ? (plan.source == .entry ? exchange.entry?.meta.bodyLength : exchange.response?.bodyLength) ?? 0 : 0
        environment.stats.record(exchange.counters, outcome: plan.cacheStatus?.outcome, stored: stored, storedBytes: storedBytes,
            coalesced: plan.cacheStatus?.collapsed ?? false, error: isError, local: plan.source == .entry && exchange.entryIsLocal)
        if let accessLog = environment.accessLog {
            var key: String?
            if case .cache(let target) = exchange.plan.decision { key = target.key }
            accessLog.record(route: exchange.plan.route?.name, method: exchange.head.method.token, path: exchange.head.uri,
                status: status, outcome: isError ? "error" : plan.cacheStatus?.outcome.rawValue.lowercased() ?? "none", key: key,
                originNanoseconds: exchange.originNanoseconds, totalNanoseconds: (NIODeadline.now() - exchange.started).nanoseconds,
                bytes: bytes, client: context?.channel.remoteAddress?.ipAddress)
        }
    }

    /// Gzip bodies up to this size (coded) are decoded on the event loop: a few hundred microseconds at most.
    /// Larger ones are decoded on NIO's thread pool, so one client's large answer never stalls the loop's
    /// other connections.
    static let inlineDecodeLimit = 256 << 10

    /// Decodes a stored gzip body for a client that does not take gzip, never past `limits.max_decoded_body`
    /// (a 1 MiB entry can inflate to 1 GiB: a gzip bomb). The size the gzip trailer declares is checked first,
    /// so an announced bomb costs nothing; the decoder stops at the limit whatever the trailer said.
    private func decode(_ coded: ByteBuffer, _ exchange: Exchange, then: @escaping (Result<ByteBuffer, DecodeProblem>) -> Void) {
        guard let context else { return }
        let limit = limits.maxDecodedBody
        let metrics = environment.metrics
        let route = exchange.plan.route?.name ?? ""
        let logger = environment.logger
        @Sendable func run(_ coded: ByteBuffer) -> Result<ByteBuffer, DecodeProblem> {
            if let declared = ContentCoding.declaredGzipSize(coded.readableBytesView), declared > limit {
                metrics.recordLimit(.maxDecodedBody)
                return .failure(.tooLarge(limit))
            }
            var input = coded
            do {
                return .success(try input.decompress(with: .gzip(), maxSize: limit))
            } catch let error as CompressNIOError where error == .bufferOverflow {
                metrics.recordLimit(.maxDecodedBody)
                return .failure(.tooLarge(limit))
            } catch {
                logger.warning("a gzip body could not be decoded", metadata: ["route.name": "\(route)"])
                return .failure(.corrupt)
            }
        }
        if coded.readableBytes <= Self.inlineDecodeLimit {
            return then(run(coded))
        }
        let loop = context.eventLoop
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) { run(coded) }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let decoded): then(decoded)
            case .failure: then(.failure(.corrupt))
            }
        }
    }

    /// Why a stored gzip body was not decoded for a client.
    enum DecodeProblem: Error, CustomStringConvertible {
        case corrupt
        case tooLarge(Int)

        var description: String {
            switch self {
            case .corrupt: "the origin's gzip body could not be decoded"
            case .tooLarge(let limit):
                "the origin's gzip body decodes to more than \(Units.format(bytes: limit)) (limits.max_decoded_body); ask with Accept-Encoding: gzip"
            }
        }
    }

    // MARK: Streamed answers

    /// Events of a streamed answer that arrived together: the pieces are written with one flush.
    private func streamEvents(_ events: [OriginStream<ByteBuffer>.Event], _ exchange: Exchange) {
        guard let streamed = exchange.streamed else { return }
        var pieces: [ByteBuffer] = []
        for event in events {
            switch event {
            case .head(let status, let headers):
                guard !streamed.headReceived else { continue }
                streamed.headReceived = true
                let response = OriginResponse(status: status, headers: headers, body: ByteBuffer(), bodyLength: 0)
                exchange.response = response
                execute(exchange.machine.originResponded(status: status, headers: headers, bodyLength: 0), exchange)
            case .body(let piece):
                if streamed.started {
                    pieces.append(piece)
                } else {
                    streamed.pending.append(piece)
                }
            }
        }
        writePieces(pieces, streamed)
    }

    /// Writes the head of a streamed answer, and whatever of its body arrived meanwhile. Framed by the origin's
    /// `Content-Length` when it gave one, else chunked (HTTP/1.1) or by closing the connection (HTTP/1.0).
    private func startStream(
        _ streamed: StreamedAnswer, _ exchange: Exchange, status: Int, headers: [Header], trove: ResponseEncoding.TroveHeaders,
        omitBody: Bool, close: Bool
    ) {
        guard let context, context.channel.isActive else {
            drainFinished()
            connection.answerAbandoned()
            streamed.leave()
            return
        }
        if drain?.isDraining ?? false { _ = connection.drainStarted() }
        let bodiless = ResponseEncoding.isBodiless(status) || omitBody || exchange.fetchMethod == "HEAD"
        let declared = streamed.declaredLength ?? Self.declaredLength(exchange.response?.headers ?? [])
        var headers = headers
        var contentLength: Int?
        if bodiless {
            contentLength = exchange.fetchMethod == "HEAD" ? declared : nil
        } else if let declared {
            contentLength = declared
        } else if exchange.head.version.minor >= 1 {
            streamed.chunked = true
            headers.append(Header("Transfer-Encoding", "chunked"))
        }
        let delimitedByClose = !bodiless && contentLength == nil && !streamed.chunked
        streamed.keepAlive = connection.answerStarts(
            keepAliveAsked: exchange.head.isKeepAlive && !close && !delimitedByClose && uploading == nil)
        streamed.omitBody = bodiless
        streamed.started = true
        streamed.lastWrite = context.writeAndFlush(wrapOutboundOut(ResponseEncoding.head(
            version: exchange.head.version, status: status, headers: headers, trove: trove,
            contentLength: contentLength, keepAlive: streamed.keepAlive, allocator: context.channel.allocator)))
        let pending = streamed.pending
        streamed.pending = []
        writePieces(pending, streamed)
        if let ended = streamed.ended { streamEnded(ended, exchange) }
    }

    /// Writes pieces of a streamed answer with one flush; the stream learns they were consumed once the socket took
    /// them.
    private func writePieces(_ pieces: [ByteBuffer], _ streamed: StreamedAnswer) {
        guard let context, !pieces.isEmpty else { return }
        let count = pieces.reduce(0) { $0 + $1.readableBytes }
        streamed.bytes += count
        guard !streamed.omitBody, context.channel.isActive else {
            streamed.consumed(count)
            return
        }
        var buffers: [ByteBuffer] = []
        buffers.reserveCapacity(streamed.chunked ? pieces.count * 3 : pieces.count)
        for piece in pieces {
            if streamed.chunked {
                var size = context.channel.allocator.buffer(capacity: 12)
                size.writeString(String(piece.readableBytes, radix: 16))
                size.writeStaticString("\r\n")
                buffers.append(size)
                buffers.append(piece)
                var end = context.channel.allocator.buffer(capacity: 2)
                end.writeStaticString("\r\n")
                buffers.append(end)
            } else {
                buffers.append(piece)
            }
        }
        for buffer in buffers.dropLast() { context.write(wrapOutboundOut(buffer), promise: nil) }
        // Writes complete in order: the last one's promise completes once every piece before it was written.
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(buffers[buffers.count - 1]), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in streamed.consumed(count) }
        streamed.lastWrite = promise.futureResult
    }

    /// The origin's transfer ended: whole (`error` nil), or broken. A whole answer ends (its last chunk); a
    /// broken one closes the connection, the only way left to tell the client.
    private func streamEnded(_ error: OriginError?, _ exchange: Exchange) {
        guard let streamed = exchange.streamed, let context else { return }
        guard streamed.started else {
            streamed.ended = .some(error)
            return
        }
        exchange.streamed = nil
        if streamingExchange === exchange { streamingExchange = nil }
        endLead(exchange, .released, notice: .released)
        guard context.channel.isActive else {
            drainFinished()
            connection.answerAbandoned()
            return
        }
        if error != nil || !streamed.keepAlive {
            if error == nil && streamed.chunked {
                var last = context.channel.allocator.buffer(capacity: 5)
                last.writeStaticString("0\r\n\r\n")
                streamed.lastWrite = context.writeAndFlush(wrapOutboundOut(last))
            }
            connection.closed()
            let out = streamed.lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
            out.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
                self.drainFinished()
            }
            return answered(context: context)
        }
        if streamed.chunked {
            var last = context.channel.allocator.buffer(capacity: 5)
            last.writeStaticString("0\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(last), promise: nil)
        }
        drainFinished()
        answered(context: context)
    }

    /// The body length a head declares (`Content-Length`), if it is a number.
    static func declaredLength(_ headers: [Header]) -> Int? {
        headers.first { HTTPSyntax.name($0.name, is: "content-length") }
            .flatMap { Int($0.value.trimmingWhitespace()) }.flatMap { $0 >= 0 ? $0 : nil }
    }

    // MARK: Answers read while they are stored

    /// How a fill hands this exchange its pieces: hopped to this loop.
    private func fillReader(_ exchange: Exchange) -> @Sendable (EntryFill<ByteBuffer>.Event) -> Void {
        guard let loop = context?.eventLoop else { return { _ in } }
        let bound = NIOLoopBound((self, exchange), eventLoop: loop)
        return { event in
            loop.execute {
                let (handler, exchange) = bound.value
                handler.fillEvent(event, exchange)
            }
        }
    }

    /// The head of an answer that may be stored: the machine judges it, and the fill then keeps it for the
    /// store or passes it on (`respond`); one nobody wants (a stale entry answered instead, a 304 that refreshed
    /// the entry) is aborted.
    /// `whole`: the body's length, when an origin client that does not stream handed it over with the head.
    private func fillHead(status: Int, headers: [Header], _ exchange: Exchange, whole: Int? = nil) {
        guard !exchange.fillHeadSeen, let fill = exchange.fill else { return }
        exchange.fillHeadSeen = true
        fill.declaredLength = Self.declaredLength(headers) ?? whole
        exchange.response = OriginResponse(status: status, headers: headers, body: ByteBuffer(), bodyLength: 0)
        execute(exchange.machine.originStarted(status: status, headers: headers, declaredLength: fill.declaredLength), exchange)
        if fill.isUndecided {
            fill.cancel(OriginError(kind: .failed, origin: exchange.plan.origin?.name ?? "", reason: "its answer was not needed"))
        }
    }

    /// The origin's transfer into the fill ended. An answer being stored is stored now if it is whole and within
    /// its limits; its readers get their last piece once the store answered (`.finished` seals the fill).
    private func fillEnded(_ error: OriginError?, _ exchange: Exchange) {
        if exchange.machine.isShadow, !exchange.shadowCompared {
            let kept = error == nil && exchange.storesFill && exchange.fill?.isKept == true
            shadowCompare(exchange, body: kept ? exchange.fill?.wholeBody() : nil,
                why: error != nil ? "the origin's answer broke off" : exchange.storesFill ? "the origin's answer was too large to keep"
                    : "the origin's answer would not be stored (\(exchange.response?.status ?? 0))")
        }
        guard exchange.storesFill, let fill = exchange.fill else { return }
        exchange.storesFill = false
        if let error {
            exchange.fillError = error
            environment.logger.warning("origin failed in the middle of an answer", metadata: [
                "origin.name": "\(error.origin)", "origin.error": "\(error.reason)", "route.name": "\(exchange.plan.route?.name ?? "")",
            ])
            endLead(exchange, .failed(error), notice: .released)
            return execute(exchange.machine.bodyFailed(error), exchange)
        }
        let action = exchange.machine.bodyReceived(length: fill.received, kept: fill.isKept)
        if case .store = action {
            guard let body = fill.wholeBody() else { return internalError("a kept answer without its body", exchange) }
            exchange.response?.body = body
            exchange.response?.bodyLength = body.readableBytes
        } else {
            endLead(exchange, .released, notice: .released)
        }
        execute(action, exchange)
    }

    /// A piece, or the end, of an answer read from a fill.
    private func fillEvent(_ event: EntryFill<ByteBuffer>.Event, _ exchange: Exchange) {
        switch event {
        case .pieces(let pieces):
            if let streamed = exchange.streamed, streamed.gathering == nil {
                streamEvents(pieces.map { .body($0) }, exchange)  // one flush for the lot
            } else {
                for piece in pieces { bodyPiece(piece, exchange) }
            }
        case .end(let result):
            var error: OriginError?
            if case .failure(let failure) = result { error = failure }
            bodyEnded(error, exchange)
        }
    }

    /// A piece of a body read from a fill or from chunks: written as it comes, or gathered.
    private func bodyPiece(_ piece: ByteBuffer, _ exchange: Exchange) {
        guard let streamed = exchange.streamed else { return }
        if streamed.gathering != nil {
            gatherPiece(piece, streamed)
        } else {
            streamEvents([.body(piece)], exchange)
        }
    }

    /// The end of a body read from a fill or from chunks: whole (`error` nil), or broken off.
    private func bodyEnded(_ error: OriginError?, _ exchange: Exchange) {
        guard let streamed = exchange.streamed else { return }
        if let gathering = streamed.gathering {
            streamed.gathering = nil
            return gathering.then(error.map { .failure($0) } ?? .success(gathering.body))
        }
        streamEnded(error, exchange)
    }

    /// Starts reading a chunked entry's body for this exchange (`ChunkedEntryRead`).
    private func readChunks(_ meta: EntryMeta, _ chunks: EntryChunks, _ exchange: Exchange) {
        guard let store, case .cache(let target) = exchange.plan.decision else { return }
        let streamed = StreamedAnswer(consumed: { _ in }, leave: {})
        streamed.declaredLength = meta.bodyLength
        streamed.headReceived = true
        let key = target.key
        let logger = environment.logger
        let reading = ChunkedEntryRead(chunks: chunks, bodyLength: meta.bodyLength, read: { index, done in
            store.readChunk(key, chunks, index: index, completion: done)
        }, deliver: { piece in
            self.bodyPiece(piece, exchange)
        }, end: { error in
            if let error {
                logger.warning("a stored answer broke off", metadata: ["cache.key": "\(key)", "store.error": "\(error.reason)"])
            }
            self.bodyEnded(error, exchange)
        })
        streamed.consumed = { reading.consumed($0) }
        streamed.leave = { reading.stop() }
        exchange.streamed = streamed
        streamingExchange = exchange
        reading.start()
    }

    /// Gathers a fill's answer whole (to decode it), within `limit` bytes, then calls `then` on this loop.
    private func gather(
        _ streamed: StreamedAnswer, _ exchange: Exchange, limit: Int, then: @escaping (Result<ByteBuffer, OriginError>) -> Void
    ) {
        exchange.streamed = streamed
        streamed.gathering = (ByteBuffer(), limit, { result in
            exchange.streamed = nil
            if self.streamingExchange === exchange { self.streamingExchange = nil }
            then(result)
        })
        let pending = streamed.pending
        streamed.pending = []
        for piece in pending { gatherPiece(piece, streamed) }
        if let ended = streamed.ended, let gathering = streamed.gathering {
            streamed.gathering = nil
            gathering.then(ended.map { .failure($0) } ?? .success(gathering.body))
        }
    }

    private func gatherPiece(_ piece: ByteBuffer, _ streamed: StreamedAnswer) {
        guard var gathering = streamed.gathering else { return }
        streamed.gathering = nil  // so the body below is not shared, and grows in place
        streamed.consumed(piece.readableBytes)
        guard gathering.body.readableBytes + piece.readableBytes <= gathering.limit else {
            streamed.leave()
            let limit = Units.format(bytes: gathering.limit)
            return gathering.then(.failure(OriginError(kind: .tooLarge, origin: "", reason: "more than \(limit) to decode")))
        }
        var piece = piece
        gathering.body.writeBuffer(&piece)
        streamed.gathering = gathering
    }

    /// Answers 502 instead: the answer could not be made (`problem` says why).
    private func failAnswer(_ plan: ReadThroughStateMachine.ResponsePlan, _ exchange: Exchange, _ problem: String, close: Bool) {
        var plan = plan
        plan.cacheStatus = nil
        let text = "502 Bad Gateway: \(problem)\n"
        finish(plan, exchange, status: 502, headers: [Header("Content-Type", "text/plain; charset=utf-8")],
            body: ByteBuffer(string: text), contentLength: text.utf8.count, close: close, isError: true)
    }

    /// A Shopify webhook on the public listener: answered by Trove, never forwarded.
    private func answerWebhook(
        _ webhook: ShopifyWebhookRule, loaded: RulesState.Loaded, head: HTTPRequestHead, headers: [Header], body: ByteBuffer?
    ) {
        guard let stores, let context else { return }
        WebhookEndpoint.handle(webhook, loaded: loaded, headers: headers, body: body.map { Array($0.readableBytesView) } ?? [],
            client: context.channel.remoteAddress?.ipAddress, environment: environment, stores: stores
        ) { answer in
            self.write(status: answer.status, headers: answer.headers.map { Header($0.0, $0.1) }, trove: .none, body: answer.body,
                contentLength: answer.body.readableBytes, request: head, close: false)
        }
    }

    /// A step the state machine should never ask for: answer 500 rather than leave the client waiting.
    private func internalError(_ what: String, _ exchange: Exchange) {
        environment.logger.error("internal error: \(what)", metadata: ["route.name": "\(exchange.plan.route?.name ?? "")"])
        endLead(exchange, .released, notice: .released)
        respond(.init(source: .trove(status: 500, message: "internal error (\(what)); see Trove's log"), cacheStatus: nil,
            age: nil, omitBody: false), exchange, close: true)
    }

    private func write(
        status: Int, headers: [Header], trove: ResponseEncoding.TroveHeaders, body: ByteBuffer?, contentLength: Int?,
        request: HTTPRequestHead, close: Bool, reservation: BudgetReservation? = nil
    ) {
        guard let context, context.channel.isActive else {
            drainFinished()
            connection.answerAbandoned()
            return
        }
        // While Trove drains for shutdown, the last answer on a connection closes it (requests already queued
        // behind it are answered first; no more are read).
        if drain?.isDraining ?? false { _ = connection.drainStarted() }
        // An answer before the body it answers has all arrived (the origin refused it early): the rest of the body
        // would be read as the next request, so the connection closes instead.
        let keepAlive = connection.answerStarts(keepAliveAsked: request.isKeepAlive && !close && uploading == nil)
        let bodiless = ResponseEncoding.isBodiless(status)
        let head = ResponseEncoding.head(
            version: request.version, status: status, headers: headers, trove: trove,
            contentLength: bodiless ? nil : contentLength ?? body?.readableBytes ?? 0, keepAlive: keepAlive,
            allocator: context.channel.allocator)
        let last: ByteBuffer
        if let body, !bodiless, body.readableBytes > 0 {
            context.write(wrapOutboundOut(head), promise: nil)
            last = body
        } else {
            last = head
        }
        if keepAlive, let reservation {
            // Held until the socket took the answer (or the connection closed): then it is given back.
            context.writeAndFlush(wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in withExtendedLifetime(reservation) {} }
            drainFinished()
        } else if keepAlive {
            // No promise to allocate and complete on the common path: the drain only needs to know the answer
            // is written (a close waits for pending writes only through `closing` below).
            context.writeAndFlush(wrapOutboundOut(last), promise: nil)
            drainFinished()
        } else {
            context.writeAndFlush(wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in
                withExtendedLifetime(reservation) {}
                context.close(promise: nil)
                self.drainFinished()
            }
        }
        answered(context: context)
    }
}
