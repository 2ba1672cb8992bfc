public import Logging
public import NIOCore
public import TroveHTTP
internal import Synchronization
internal import TroveCore

/// Knows which master serves each slot of a Redis Cluster, and keeps knowing: reads `CLUSTER SLOTS` from the
/// seeds (or any node it learned of) at start, every 10 s, and soon after a connection is redirected (`MOVED`)
/// or a node fails; a `MOVED` reply corrects its slot at once.
///
/// One per store, shared by every event loop's `RedisClusterConnection`; its queries run on one event loop.
public final class RedisClusterTopology: Sendable {
    private struct Shared {
        var map = RedisClusterMap()
        var problem = "asking the cluster for its slots"
        var refreshes = 0
        var followers: [(eventLoop: any EventLoop, learned: @Sendable () -> Void)] = []
        var beforeNewMaster: [@Sendable () -> Void] = []
    }

    private let shared = Mutex(Shared())
    private let sharded = Atomic<Bool>(true)
    private let machinery: NIOLoopBound<Machinery>
    let settings: RedisConnectionSettings
    let metrics: RedisMetrics
    private let logger: Logger

    static let pollInterval: TimeAmount = .seconds(10)

    /// Starts asking on `eventLoop`; call on that loop. `seeds` are any of the cluster's nodes.
    public init(
        seeds: [ServerAddress], settings: RedisConnectionSettings, metrics: RedisMetrics = RedisMetrics(), eventLoop: any EventLoop, logger: Logger
    ) {
        precondition(!seeds.isEmpty, "at least one seed")
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        let machinery = Machinery(eventLoop: eventLoop, seeds: seeds, settings: settings, logger: logger)
        self.machinery = NIOLoopBound(machinery, eventLoop: eventLoop)
        machinery.topology = self
        machinery.refresh()
    }

    /// The slot map as last read (and corrected).
    public var map: RedisClusterMap { shared.withLock { $0.map } }

    /// Whether the cluster's servers take sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`: Redis 7): assumed until one
    /// refuses it, then never again for this process.
    var shardedPubSub: Bool { sharded.load(ordering: .relaxed) }

    func shardedPubSubRefused() {
        if sharded.exchange(false, ordering: .relaxed) {
            logger.info("the Redis Cluster has no sharded pub/sub (Redis 7); fetch notices use PUBLISH")
        }
    }

    /// How many times the map was read whole (tests and `/readyz`).
    public var refreshes: Int { shared.withLock { $0.refreshes } }

    /// The masters and how much of the cluster they cover, or why nothing is known: for `/readyz`.
    public var status: String {
        shared.withLock { state in
            guard !state.map.nodes.isEmpty else { return state.problem }
            let covered = state.map.coveredSlots
            return "\(state.map.nodes.count) masters, \(covered == RedisSlot.count ? "every slot" : "\(covered) of \(RedisSlot.count) slots") served"
        }
    }

    /// A node answered `MOVED slot node`: record it now, and read the whole map again soon (a failover or a
    /// resharding usually moves more than one slot).
    func moved(_ slot: Int, to node: ServerAddress) {
        let (newMaster, hooks) = shared.withLock { state in
            (!state.map.nodes.isEmpty && !state.map.nodes.contains(node), state.beforeNewMaster)
        }
        // A master not seen before is most likely a promoted replica: it may lack the last purges.
        if newMaster { for hook in hooks { hook() } }
        shared.withLock { $0.map.assign(slot, to: node) }
        refresh()
    }

    /// Calls `hook` when a master not seen before starts serving slots (a replica promoted by a failover, as a
    /// `MOVED` reply or a read of the map tells), before any command is sent to it: the store queues its recent
    /// purges again there, since replication is asynchronous and the promoted replica may have missed them.
    func beforeNewMaster(_ hook: @escaping @Sendable () -> Void) {
        shared.withLock { $0.beforeNewMaster.append(hook) }
    }

    /// Reads the map again soon; bursts of calls make one query (at most one per 100 ms).
    func refresh() {
        machinery.eventLoop.execute { [machinery] in machinery.value.refresh() }
    }

    public func stop() async throws {
        try await machinery.eventLoop.submit { [machinery] in machinery.value.stop() }.get()
    }

    /// Calls `learned` on `eventLoop` each time the whole map has been read (a loop's connection then connects
    /// to masters it did not know).
    func follow(on eventLoop: any EventLoop, _ learned: @escaping @Sendable () -> Void) {
        shared.withLock { $0.followers.append((eventLoop, learned)) }
    }

    fileprivate func learned(_ map: RedisClusterMap) {
        let (previous, hooks) = shared.withLock { ($0.map, $0.beforeNewMaster) }
        if !previous.nodes.isEmpty {
            if map.nodes.contains(where: { !previous.nodes.contains($0) }) {
                for hook in hooks { hook() }
            }
            if !map.sameOwners(as: previous) { metrics.changed(.slots) }
        }
        let followers = shared.withLock {
            $0.map = map
            $0.refreshes += 1
            return $0.followers
        }
        for follower in followers { follower.eventLoop.execute { follower.learned() } }
    }

    fileprivate func failed(_ problem: String) {
        shared.withLock { $0.problem = problem }
    }
}

/// The topology's queries and timer, on its event loop only.
private final class Machinery: PacedRefresher {
    let eventLoop: any EventLoop
    let seeds: [ServerAddress]
    let settings: RedisConnectionSettings
    let logger: Logger
    weak var topology: RedisClusterTopology?
    var pacing = RefreshPacing()
    var poll: Scheduled<Void>?
    var lastWarned: String?
    var stopped = false

    init(eventLoop: any EventLoop, seeds: [ServerAddress], settings: RedisConnectionSettings, logger: Logger) {
        self.eventLoop = eventLoop
        self.seeds = seeds
        self.settings = settings
        self.logger = logger
    }

    func stop() {
        stopped = true
        poll?.cancel()
    }

    /// Reads `CLUSTER SLOTS` from the first node that answers (started by `pacing` only).
    func query() {
        guard !stopped else { return }
        poll?.cancel()
        // The nodes known first (they are what serves now), then the seeds.
        var candidates = topology?.map.nodes ?? []
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        ask(candidates, from: 0, problems: [])
    }

    private func ask(_ candidates: [ServerAddress], from index: Int, problems: [String]) {
        guard !stopped else { return }
        guard index < candidates.count else {
            let problem = "no node of the cluster gave its slots: " + problems.joined(separator: "; ")
            topology?.failed(problem)
            if lastWarned != problem {
                lastWarned = problem
                logger.warning("cannot read the Redis Cluster's slots; requests go to the origin until a node answers",
                    metadata: ["redis.error": "\(problem)"])
            }
            return finish()
        }
        let node = candidates[index]
        let commands = settings.setupCommands(selectingDatabase: false) + [["CLUSTER", "SLOTS"]]
        RedisQuery.ask(node, commands, settings: settings, on: eventLoop) { result in
            switch result {
            case .failure(let error):
                self.ask(candidates, from: index + 1, problems: problems + ["\(node): \(error)"])
            case .success(let replies):
                if let refusal = replies.lazy.compactMap({ if case .error(let message) = $0 { message } else { nil } }).first {
                    return self.ask(candidates, from: index + 1, problems: problems + ["\(node): \(refusal)"])
                }
                switch RedisClusterMap.parse(replies[replies.count - 1], fallbackHost: node.host) {
                case .failure(let error):
                    self.ask(candidates, from: index + 1, problems: problems + ["\(node): \(error)"])
                case .success(let map):
                    self.lastWarned = nil
                    self.topology?.learned(map)
                    self.finish()
                }
            }
        }
    }

    private func finish() {
        poll = eventLoop.assumeIsolated().scheduleTask(in: RedisClusterTopology.pollInterval) { self.refresh() }
        queryEnded()
    }
}
