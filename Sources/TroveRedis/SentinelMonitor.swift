public import TroveHTTP
public import Logging
public import NIOCore
internal import NIOPosix
internal import Synchronization
internal import TroveCore

/// Finds the master of a Sentinel-watched Redis and follows it through failovers: asks the sentinels in turn
/// (`SENTINEL get-master-addr-by-name`), listens to one of them for `+switch-master`, asks again every few
/// seconds and whenever a connection says the master it was given failed or is a replica, and tells every
/// connection that follows it when the master moves.
///
/// One per store, shared by every event loop's connections; its own connections run on one event loop.
public final class SentinelMonitor: Sendable {
    /// What any loop may read: the master as last named, why there is none, who follows.
    private struct Shared {
        var master: RedisAddress?
        /// The sentinel that named it, for `/readyz`.
        var namedBy: RedisAddress?
        var problem = "asking the sentinels for the master"
        var followers: [Int: Follower] = [:]
        var nextID = 0
        var beforeMoving: [@Sendable () -> Void] = []
    }

    private struct Follower {
        let eventLoop: any EventLoop
        let moved: @Sendable (RedisAddress) -> Void
    }

    private let shared = Mutex(Shared())
    private let machinery: NIOLoopBound<Machinery>
    let settings: RedisConnectionSettings
    let sentinel: RedisSentinelSettings
    let metrics: RedisMetrics

    /// How often the sentinels are asked even when none announced a switch: a `+switch-master` missed while the
    /// subscription was being re-made is caught within this.
    static let pollInterval: TimeAmount = .seconds(5)

    /// Starts asking and listening on `eventLoop`; call on that loop. `settings.sentinel` must be set.
    public init(settings: RedisConnectionSettings, metrics: RedisMetrics = RedisMetrics(), eventLoop: any EventLoop, logger: Logger) {
        guard let sentinel = settings.sentinel else { preconditionFailure("a SentinelMonitor needs settings.sentinel") }
        self.settings = settings
        self.metrics = metrics
        self.sentinel = sentinel
        let machinery = Machinery(eventLoop: eventLoop, settings: settings, sentinel: sentinel, logger: logger)
        self.machinery = NIOLoopBound(machinery, eventLoop: eventLoop)
        machinery.monitor = self
        machinery.start()
    }

    /// The master the sentinels named last; nil until one has.
    public var master: RedisAddress? { shared.withLock { $0.master } }

    /// Where the master is and who said so, or why it is not known: for `/readyz`.
    public var status: String {
        shared.withLock { state in
            guard let master = state.master else { return state.problem }
            return "master '\(sentinel.master)' at \(master)" + (state.namedBy.map { " (named by sentinel \($0))" } ?? "")
        }
    }

    /// Calls `moved` on `eventLoop` each time the sentinels name another master. Returns an id for `unfollow`.
    func follow(on eventLoop: any EventLoop, _ moved: @escaping @Sendable (RedisAddress) -> Void) -> Int {
        shared.withLock { state in
            state.nextID += 1
            state.followers[state.nextID] = Follower(eventLoop: eventLoop, moved: moved)
            return state.nextID
        }
    }

    /// Calls `hook` when the sentinels name a new master after another (a failover), before any connection can
    /// learn of it: the store queues its recent purges again there, so they reach the new master first.
    func beforeMoving(_ hook: @escaping @Sendable () -> Void) {
        shared.withLock { $0.beforeMoving.append(hook) }
    }

    func unfollow(_ id: Int) {
        _ = shared.withLock { $0.followers.removeValue(forKey: id) }
    }

    /// Asks the sentinels again soon: a connection found the master it was given down, or not a master.
    /// Bursts of calls (every loop's connection failing at once) make one query.
    func refresh() {
        machinery.eventLoop.execute { [machinery] in machinery.value.refresh() }
    }

    /// Stops asking and listening.
    public func stop() async throws {
        try await machinery.eventLoop.submit { [machinery] in machinery.value.stop() }.get()
    }

    /// Called on the monitor's loop with what a query or a `+switch-master` said.
    fileprivate func named(_ master: RedisAddress, by sentinel: RedisAddress?, logger: Logger) {
        let (previous, hooks) = shared.withLock { ($0.master, $0.beforeMoving) }
        if let previous, previous != master {
            for hook in hooks { hook() }
        }
        let (changed, followers) = shared.withLock { state -> (Bool, [Follower]) in
            let changed = state.master != master
            state.master = master
            state.namedBy = sentinel
            return (changed, Array(state.followers.values))
        }
        guard changed else { return }
        if previous != nil { metrics.changed(.master) }
        logger.info("the sentinels name the Redis master", metadata: [
            "redis.master": "\(master)", "redis.master_name": "\(self.sentinel.master)",
            "redis.sentinel": "\(sentinel.map(\.description) ?? "+switch-master")",
        ])
        for follower in followers {
            follower.eventLoop.execute { follower.moved(master) }
        }
    }

    fileprivate func failed(_ problem: String) {
        shared.withLock { $0.problem = problem }
    }
}

/// The monitor's queries, subscription and timers, on its event loop only.
private final class Machinery: PacedRefresher {
    let eventLoop: any EventLoop
    let settings: RedisConnectionSettings
    let sentinel: RedisSentinelSettings
    let logger: Logger
    weak var monitor: SentinelMonitor?
    /// The sentinels, the one that answered last first (as Redis' client guidelines ask).
    var sentinels: [RedisAddress]
    var pacing = RefreshPacing()
    var poll: Scheduled<Void>?
    var subscription: (any Channel)?
    /// The sentinel the next subscription attempt goes to.
    var subscribeIndex = 0
    var subscribeBackoff = Backoff()
    var lastWarned: String?
    var stopped = false

    init(eventLoop: any EventLoop, settings: RedisConnectionSettings, sentinel: RedisSentinelSettings, logger: Logger) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.sentinel = sentinel
        self.logger = logger
        self.sentinels = sentinel.sentinels
    }

    func start() {
        refresh()
        subscribe()
    }

    func stop() {
        stopped = true
        poll?.cancel()
        subscription?.close(promise: nil)
    }

    /// Asks each sentinel in turn until one names the master (started by `pacing` only).
    func query() {
        guard !stopped else { return }
        poll?.cancel()
        ask(from: 0, problems: [])
    }

    private func ask(from index: Int, problems: [String]) {
        guard !stopped else { return }
        guard index < sentinels.count else {
            let problem = "no sentinel named master '\(sentinel.master)': " + problems.joined(separator: "; ")
            monitor?.failed(problem)
            if lastWarned != problem {
                lastWarned = problem
                logger.warning("cannot find the Redis master; requests go to the origin until a sentinel names it",
                    metadata: ["redis.error": "\(problem)"])
            }
            finishQuery()
            return
        }
        let server = sentinels[index]
        askOne(server) { result in
            switch result {
            case .success(let master):
                if index > 0 { self.sentinels.insert(self.sentinels.remove(at: index), at: 0) }
                self.lastWarned = nil
                self.monitor?.named(master, by: server, logger: self.logger)
                self.finishQuery()
            case .failure(let problem):
                self.ask(from: index + 1, problems: problems + ["\(server): \(problem)"])
            }
        }
    }

    private func finishQuery() {
        poll = eventLoop.assumeIsolated().scheduleTask(in: SentinelMonitor.pollInterval) { self.refresh() }
        queryEnded()
    }

    /// One sentinel's answer: the master's address, or what went wrong.
    private func askOne(_ server: RedisAddress, completion: @escaping (Result<RedisAddress, SentinelProblem>) -> Void) {
        let commands = sentinel.setupCommands + [["SENTINEL", "get-master-addr-by-name", .string(sentinel.master)]]
        RedisQuery.ask(server, commands, settings: settings, on: eventLoop) { result in
            switch result {
            case .failure(let error): completion(.failure(SentinelProblem("\(error)")))
            case .success(let replies): completion(Self.master(from: replies, name: self.sentinel.master))
            }
        }
    }

    /// The address in `get-master-addr-by-name`'s reply (after AUTH's, if any).
    static func master(from replies: [RESPValue], name: String) -> Result<RedisAddress, SentinelProblem> {
        for reply in replies.dropLast() {
            if case .error(let message) = reply { return .failure(SentinelProblem("refused: \(message) (check store.sentinel)")) }
        }
        switch replies.last {
        case .array(let parts) where parts.count == 2:
            guard case .bulkString(let hostBuffer) = parts[0], case .bulkString(let portBuffer) = parts[1],
                let port = Int(String(buffer: portBuffer)), (1...65535).contains(port)
            else { return .failure(SentinelProblem("answered something that is not host and port")) }
            return .success(RedisAddress(host: String(buffer: hostBuffer), port: port))
        case .null, .array:
            return .failure(SentinelProblem("watches no master named '\(name)'"))
        case .error(let message):
            return .failure(SentinelProblem("refused: \(message)"))
        default:
            return .failure(SentinelProblem("answered something that is not host and port"))
        }
    }

    /// Listens to one sentinel for `+switch-master`; another one when it goes.
    private func subscribe() {
        guard !stopped else { return }
        let server = sentinels[subscribeIndex % sentinels.count]
        let commands = sentinel.setupCommands + [["SUBSCRIBE", "+switch-master"]]
        let handler = RedisPushHandler(commands: commands, onRefused: { [logger] message in
            logger.warning("a sentinel refused the +switch-master subscription", metadata: [
                "redis.sentinel": "\(server)", "redis.error": "\(message)",
            ])
        }) { [weak self] payload in self?.switched(payload) }
        handler.onSubscribed = { [weak self] in
            // Anything announced before the subscription took is caught by asking now.
            self?.subscribeBackoff.reset()
            self?.refresh()
        }
        settings.connect(to: server, on: eventLoop, handler: handler)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    if self.stopped {
                        channel.close(promise: nil)
                        return
                    }
                    self.subscription = channel
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        self.subscription = nil
                        self.resubscribe()
                    }
                case .failure:
                    self.resubscribe()
                }
            }
    }

    private func resubscribe() {
        guard !stopped else { return }
        subscribeIndex += 1
        let delay = subscribeBackoff.next()
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay.milliseconds)) { self.subscribe() }
    }

    /// `+switch-master`'s payload: `NAME OLD-IP OLD-PORT NEW-IP NEW-PORT`.
    private func switched(_ payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 5, parts[0] == sentinel.master, let port = Int(parts[4]), (1...65535).contains(port) else { return }
        monitor?.named(RedisAddress(host: String(parts[3]), port: port), by: nil, logger: logger)
    }
}

/// Why one sentinel did not name the master.
struct SentinelProblem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
