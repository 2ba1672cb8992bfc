internal import TroveHTTP
public import Histogram
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix

/// What one run measured.
public struct RunResult: Sendable {
    /// Latencies in microseconds, measured requests only (after the warm-up).
    public var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    /// Latencies of the successful (2xx, 3xx) answers only: a fast 429 is not a fast answer.
    public var successLatency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    public var statuses: [Int: Int] = [:]
    /// `X-Cache` values of the answers (none when the target does not send it).
    public var xCache: [String: Int] = [:]
    /// Requests without an answer: connection refused or closed, timeout.
    public var failures: [String: Int] = [:]
    /// Measured requests that were answered.
    public var answered = 0
    /// Seconds the measured part lasted, backlog included.
    public var seconds: Double = 0
    /// Connections that could not be opened, by reason (not requests: those wait, or count as never sent).
    public var connectErrors: [String: Int] = [:]
    /// Requests waiting for a connection, at most (rate mode: a sign the target could not keep up).
    public var maxBacklog = 0
    /// Each second of the measured part, by when requests were due: what a failover looks like over time.
    public var timeline: [TimelineSecond] = []

    public init() {}

    /// One second of the measured part.
    public struct TimelineSecond: Sendable {
        public var answered = 0
        /// 5xx answers, and requests without an answer.
        public var errors = 0
        public var hits = 0
        public var misses = 0
        public var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .two)

        public var hitRatio: Double? { hits + misses == 0 ? nil : Double(hits) / Double(hits + misses) }
    }

    /// At most an hour of seconds: a timeline is bounded whatever the run's length.
    static let timelineLimit = 3600

    /// The second `offset` seconds into the measured part, made when first needed; nil past the limit.
    mutating func second(at offset: Double) -> Int? {
        guard offset >= 0, offset < Double(Self.timelineLimit) else { return nil }
        let index = Int(offset)
        while timeline.count <= index { timeline.append(TimelineSecond()) }
        return index
    }

    public var failed: Int { failures.values.reduce(0, +) }
    public var serverErrors: Int { statuses.filter { $0.key >= 500 }.values.reduce(0, +) }
    public var requestsPerSecond: Double { seconds > 0 ? Double(answered) / seconds : 0 }

    /// Hits (HIT, STALE) over hits and misses, when the target says; nil otherwise.
    public var hitRatio: Double? {
        let hits = (xCache["HIT"] ?? 0) + (xCache["STALE"] ?? 0)
        let misses = xCache["MISS"] ?? 0
        return hits + misses == 0 ? nil : Double(hits) / Double(hits + misses)
    }
}

/// A progress report, once a second.
public struct LoadProgress: Sendable {
    public var elapsed: Double
    public var warmingUp: Bool
    public var answered: Int
    public var perSecond: Double
    public var p50: Double
    public var p99: Double
    public var failed: Int
    public var backlog: Int
}

/// Sends a request mix to one HTTP target and measures the answers: an open-loop constant-arrival mode that
/// does not hide queueing delay, and a closed-loop mode for peak throughput.
///
/// Runs on one event loop of its own; every connection is keep-alive HTTP/1.1, one request at a time.
public enum LoadGenerator {
    public static func run(
        host: String, port: Int, load: Scenario.Load, mix: RequestMix,
        chaos: (@Sendable (Double) -> Void)? = nil,
        progress: @escaping @Sendable (LoadProgress) -> Void
    ) async throws -> RunResult {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let promise = loop.makePromise(of: RunResult.self)
        let result: Result<RunResult, any Error>
        do {
            try await loop.submit {
                let runner = Runner(host: host, port: port, load: load, mix: mix, loop: loop, chaos: chaos,
                    progress: progress, promise: promise)
                runner.begin()
            }.get()
            result = .success(try await promise.futureResult.get())
        } catch {
            result = .failure(error)
        }
        try? await group.shutdownGracefully()
        return try result.get()
    }
}

/// The state of one run; lives on the generator's loop.
private final class Runner {
    struct Pending {
        let intended: NIODeadline
        let request: RequestMix.Request
    }

    let host: String
    let port: Int
    let load: Scenario.Load
    var mix: RequestMix
    let loop: any EventLoop
    let chaos: (@Sendable (Double) -> Void)?
    let progress: @Sendable (LoadProgress) -> Void
    let promise: EventLoopPromise<RunResult>

    var result = RunResult()
    var idle: [Connection] = []
    var connections = 0
    var opening = 0
    var backlog: [Pending] = []
    var backlogStart = 0
    var inFlight = 0
    var scheduled = 0
    var began = NIODeadline.now()
    var measureFrom = NIODeadline.now()
    var end = NIODeadline.now()
    var ticker: Repeater?
    var reporter: Repeater?
    var done = false
    /// After a failed connect, no new connection for a moment: a target that is down is not hammered.
    var connectPauseUntil = NIODeadline.uptimeNanoseconds(0)
    /// Answers (warm-up included) since the last progress report.
    var answeredInWindow = 0
    var window = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .two)

    init(host: String, port: Int, load: Scenario.Load, mix: RequestMix, loop: any EventLoop,
         chaos: (@Sendable (Double) -> Void)?, progress: @escaping @Sendable (LoadProgress) -> Void, promise: EventLoopPromise<RunResult>) {
        self.host = host
        self.port = port
        self.load = load
        self.mix = mix
        self.loop = loop
        self.chaos = chaos
        self.progress = progress
        self.promise = promise
    }

    func begin() {
        began = .now()
        measureFrom = began + .nanoseconds(load.warmup.nanoseconds)
        end = measureFrom + .nanoseconds(load.duration.nanoseconds)
        switch load.mode {
        case .rate:
            ticker = repeating(every: .milliseconds(1), after: .zero) { self.tick() }
        case .closed:
            for _ in 0..<load.connections { open() }
        }
        reporter = repeating(every: .seconds(1), after: .seconds(1)) { self.report() }
        loop.assumeIsolated().scheduleTask(deadline: end) { self.finishIfDone() }
    }

    /// A task repeated on the loop until cancelled (NIO's `scheduleRepeatedTask` wants a Sendable closure; this
    /// one stays on the loop, where the runner lives).
    final class Repeater {
        var scheduled: Scheduled<Void>?
        var cancelled = false

        func cancel() {
            cancelled = true
            scheduled?.cancel()
        }
    }

    func repeating(every interval: TimeAmount, after initialDelay: TimeAmount, _ body: @escaping () -> Void) -> Repeater {
        let repeater = Repeater()
        let loop = self.loop
        func schedule(_ delay: TimeAmount) {
            repeater.scheduled = loop.assumeIsolated().scheduleTask(in: delay) {
                guard !repeater.cancelled else { return }
                body()
                if !repeater.cancelled { schedule(interval) }
            }
        }
        schedule(initialDelay)
        return repeater
    }

    // MARK: Arrivals

    /// Rate mode: every arrival due by now joins the backlog with the instant it should have started.
    func tick() {
        let now = NIODeadline.now()
        // Request k is due at k / rate (request 0 at once); the last is the last due before the end, so a run
        // sends exactly rate × (warm-up + duration) requests however late its final tick comes.
        let total = Int((Double((end - began).nanoseconds) / 1e9 * load.rate).rounded(.up))
        let due = min(total, Int(Double((now - began).nanoseconds) / 1e9 * load.rate) + 1)
        while scheduled < due {
            let intended = began + .nanoseconds(Int64(Double(scheduled) / load.rate * 1e9))
            backlog.append(Pending(intended: intended, request: mix.next()))
            scheduled += 1
        }
        result.maxBacklog = max(result.maxBacklog, backlog.count - backlogStart)
        dispatch()
        if scheduled == total {
            ticker?.cancel()
            ticker = nil
            finishIfDone()
        }
    }

    func dispatch() {
        while backlogStart < backlog.count, let connection = idle.popLast() {
            let pending = backlog[backlogStart]
            backlogStart += 1
            send(pending, on: connection)
        }
        if backlogStart > 4096 {
            backlog.removeFirst(backlogStart)
            backlogStart = 0
        }
        let waiting = backlog.count - backlogStart
        if load.mode == .rate, waiting > opening, connections + opening < load.connections, NIODeadline.now() >= connectPauseUntil {
            for _ in 0..<min(waiting - opening, load.connections - connections - opening) { open() }
        }
    }

    // MARK: Connections

    func open() {
        opening += 1
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port)
            .assumeIsolated()
            .whenComplete { result in
                self.opening -= 1
                switch result {
                case .success(let channel):
                    do {
                        let connection = Connection(channel: channel, runner: self)
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(connection)
                        self.connections += 1
                        self.ready(connection)
                    } catch {
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    // Not a request's failure: requests wait for a connection (their latency grows), and those
                    // never sent by the end count as failed, with this reason.
                    self.result.connectErrors[Self.describe(error), default: 0] += 1
                    self.connectPauseUntil = .now() + .milliseconds(50)
                    // Rate mode retries after the pause; closed mode reopens after it.
                    if self.load.mode == .closed, NIODeadline.now() < self.end {
                        self.loop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { self.open() }
                    }
                }
            }
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("refused") { return "connection refused" }
        return String(text.prefix(60))
    }

    func ready(_ connection: Connection) {
        guard !done else {
            connection.channel.close(promise: nil)
            return
        }
        switch load.mode {
        case .rate:
            idle.append(connection)
            dispatch()
        case .closed:
            let now = NIODeadline.now()
            if now < end {
                send(Pending(intended: now, request: mix.next()), on: connection)
            } else {
                connection.channel.close(promise: nil)
                finishIfDone()
            }
        }
    }

    func send(_ pending: Pending, on connection: Connection) {
        inFlight += 1
        connection.send(pending, host: host, port: port, timeout: load.timeout,
            measured: pending.intended >= measureFrom && pending.intended < end)
    }

    func completed(_ pending: Pending, status: Int, xCache: String?, connection: Connection) {
        inFlight -= 1
        let now = NIODeadline.now()
        let micros = UInt64(max(1, (now - pending.intended).nanoseconds / 1000))
        // The progress line shows the warm-up too, so a person sees at once whether the target answers.
        _ = window.record(micros)
        answeredInWindow += 1
        if pending.intended >= measureFrom && pending.intended < end {
            _ = result.latency.record(micros)
            if (200..<400).contains(status) { _ = result.successLatency.record(micros) }
            result.statuses[status, default: 0] += 1
            if let xCache { result.xCache[xCache, default: 0] += 1 }
            result.answered += 1
            if let second = result.second(at: Double((pending.intended - measureFrom).nanoseconds) / 1e9) {
                result.timeline[second].answered += 1
                _ = result.timeline[second].latency.record(micros)
                if status >= 500 { result.timeline[second].errors += 1 }
                switch xCache {
                case "HIT", "STALE": result.timeline[second].hits += 1
                case "MISS": result.timeline[second].misses += 1
                default: break
                }
            }
        }
        ready(connection)
        if now >= end { finishIfDone() }
    }

    func failed(_ pending: Pending, reason: String, connection: Connection) {
        inFlight -= 1
        connections -= 1
        fail(reason, measured: pending.intended >= measureFrom)
        if pending.intended >= measureFrom, let second = result.second(at: Double((pending.intended - measureFrom).nanoseconds) / 1e9) {
            result.timeline[second].errors += 1
        }
        if load.mode == .closed, NIODeadline.now() < end { open() }
        finishIfDone()
    }

    /// The server closed a connection that had nothing in flight (keep-alive timeout, shutdown).
    func closedWhileIdle(_ connection: Connection) {
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
            connections -= 1
            dispatch()
        }
    }

    func fail(_ reason: String, measured: Bool) {
        if measured { result.failures[reason, default: 0] += 1 }
    }

    // MARK: Reporting and the end

    func report() {
        let now = NIODeadline.now()
        let elapsed = Double((now - began).nanoseconds) / 1e9
        chaos?(Double((now - measureFrom).nanoseconds) / 1e9)
        progress(LoadProgress(
            elapsed: elapsed, warmingUp: now < measureFrom, answered: result.answered,
            perSecond: Double(answeredInWindow), p50: Double(window.valueAtPercentile(50)) / 1000,
            p99: Double(window.valueAtPercentile(99)) / 1000, failed: result.failed, backlog: backlog.count - backlogStart))
        answeredInWindow = 0
        window.reset()
        finishIfDone()
    }

    func finishIfDone() {
        guard !done, NIODeadline.now() >= end, ticker == nil || load.mode == .closed else { return }
        // Rate mode: arrivals that could not start yet still count: wait for the backlog, within the timeout.
        let backlogLeft = backlog.count - backlogStart
        let overdue = NIODeadline.now() > end + .nanoseconds(load.timeout.nanoseconds)
        guard (inFlight == 0 && backlogLeft == 0) || overdue else { return }
        done = true
        if backlogLeft > 0 {
            let reason = result.connectErrors.max { $0.value < $1.value }.map { "never sent (connect: \($0.key))" } ?? "never sent (no free connection by the end)"
            result.failures[reason, default: 0] += backlogLeft
        }
        if inFlight > 0 { result.failures["no answer by the end", default: 0] += inFlight }
        // Requests/s over the measured window: the requests due (rate mode) or started (closed mode) in it.
        result.seconds = Double((end - measureFrom).nanoseconds) / 1e9
        reporter?.cancel()
        for connection in idle { connection.channel.close(promise: nil) }
        idle.removeAll()
        promise.succeed(result)
    }
}

/// One keep-alive connection: sends one request, reads its answer, reports.
private final class Connection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let channel: any Channel
    unowned let runner: Runner
    private var current: Runner.Pending?
    private var status = 0
    private var xCache: String?
    private var timer: Scheduled<Void>?

    init(channel: any Channel, runner: Runner) {
        self.channel = channel
        self.runner = runner
    }

    func send(_ pending: Runner.Pending, host: String, port: Int, timeout: Duration, measured: Bool) {
        current = pending
        var headers = HTTPHeaders([("Host", "\(host):\(port)")])
        // The demo origin counts marked requests apart: its count of the measured part is then exact.
        if measured { headers.add(name: "X-Loadtest-Measured", value: "1") }
        for (name, value) in pending.request.headers { headers.add(name: name, value: value) }
        let body = pending.request.body.map { ByteBuffer(string: $0) }
        if let body { headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: pending.request.method), uri: pending.request.path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        timer = channel.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            self.abandon("timeout")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            xCache = head.headers.first(name: "X-Cache")
        case .body:
            break
        case .end:
            guard let pending = current else { return }
            current = nil
            timer?.cancel()
            runner.completed(pending, status: status, xCache: xCache, connection: self)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if current == nil {
            runner.closedWhileIdle(self)
        } else {
            abandon("connection closed")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        abandon(Runner.describe(error))
    }

    private func abandon(_ reason: String) {
        timer?.cancel()
        guard let pending = current else { return }
        current = nil
        channel.close(promise: nil)
        runner.failed(pending, reason: reason, connection: self)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
