internal import Logging
internal import NIOCore
internal import TroveCore
internal import TroveHTTP

/// One event loop's way into a Redis Cluster: a pipelined `RedisConnection` per master, made when first needed,
/// and a batch of commands split among them by each command's first key's slot, sent in parallel and answered
/// in the batch's order.
///
/// Redirections are followed per command: `MOVED` (the slot has a new master: the topology learns it, the command
/// goes there), `ASK` (the slot is being migrated and this key already moved: `ASKING` then the command, there,
/// once), `TRYAGAIN` and `CLUSTERDOWN` (wait 25 ms, 50 ms, …, then try again). After `maxAttempts` the last reply
/// is the answer. A command whose slot no master serves, or whose master cannot be reached, fails at once: the
/// request goes to the origin, as when a single Redis is down, and only the keys of that node are affected.
///
/// Lives on its event loop only.
final class RedisClusterConnection {
    let eventLoop: any EventLoop
    private let settings: RedisConnectionSettings
    private let topology: RedisClusterTopology
    private let logger: Logger
    private let metrics: RedisMetrics
    private var nodes: [ServerAddress: RedisConnection] = [:]
    private var stopped = false
    /// Called on the loop each time the cluster becomes ready (every master connected): the store replays queued
    /// purges then.
    var onReady: (() -> Void)?

    /// Whether fetch notices go out as sharded messages (`SPUBLISH`): until a server refuses it.
    var shardedPubSub: Bool { topology.shardedPubSub }

    func shardedPubSubRefused() { topology.shardedPubSubRefused() }

    /// Sends of one command, redirections included.
    static let maxAttempts = 5

    init(
        eventLoop: any EventLoop, settings: RedisConnectionSettings, topology: RedisClusterTopology, metrics: RedisMetrics = RedisMetrics(),
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.topology = topology
        self.metrics = metrics
        self.logger = logger
    }

    /// Ready when every master the map names has a connection that is up and the map serves every slot.
    var isReady: Bool {
        let map = topology.map
        guard map.coveredSlots == RedisSlot.count else { return false }
        return map.nodes.allSatisfy { nodes[$0]?.isReady == true }
    }

    /// The topology, and each master's connection: for `/readyz`.
    var status: String {
        let map = topology.map
        let nodeStatus = map.nodes.map { node in
            guard let connection = nodes[node] else { return "\(node): not connected yet" }
            return "\(node): \(connection.isReady ? "connected" : connection.status)"
        }
        return ([topology.status] + nodeStatus).joined(separator: "; ")
    }

    /// Connects to every master the map names, now and whenever the map is read again.
    func start() {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        topology.follow(on: eventLoop) { bound.value.connectToEveryMaster() }
        connectToEveryMaster()
    }

    private func connectToEveryMaster() {
        guard !stopped else { return }
        for node in topology.map.nodes { _ = connection(to: node) }
        // Purges queued again for a promoted master are replayed now if every connection is already up (new
        // connections replay them when they come up).
        if isReady { onReady?() }
    }

    func stop() {
        stopped = true
        for connection in nodes.values { connection.stop() }
    }

    /// The connection to `node`, made (and started) the first time it is needed.
    private func connection(to node: ServerAddress) -> RedisConnection {
        if let existing = nodes[node] { return existing }
        var nodeSettings = settings
        nodeSettings.host = node.host
        nodeSettings.port = node.port
        nodeSettings.database = 0  // a cluster has one database
        nodeSettings.cluster = nil  // this connection is to one node
        let connection = RedisConnection(eventLoop: eventLoop, settings: nodeSettings, metrics: metrics, logger: logger)
        connection.onReady = { [weak self] in
            guard let self, self.isReady else { return }
            self.onReady?()
        }
        nodes[node] = connection
        if !stopped { connection.start() }
        return connection
    }

    /// Sends `commands`, each to the master of its first key's slot; `completion` gets every reply in order, or
    /// the first failure (a node that cannot be reached, a slot no master serves).
    func send(_ commands: [[RESPArgument]], completion: @escaping RedisChannelHandler.Completion) {
        var replies = [RESPValue?](repeating: nil, count: commands.count)
        var failure: StoreError?
        var waiting = commands.count
        guard waiting > 0 else { return completion(.success([])) }
        func finished(_ index: Int, _ result: Result<RESPValue, StoreError>) {
            switch result {
            case .success(let reply): replies[index] = reply
            case .failure(let error): failure = failure ?? error
            }
            waiting -= 1
            guard waiting == 0 else { return }
            if let failure { return completion(.failure(failure)) }
            completion(.success(replies.map { $0 ?? .null }))
        }
        // Commands for one master leave together, in order, as one batch.
        let map = topology.map
        var batches: [ServerAddress: [Int]] = [:]
        for (index, command) in commands.enumerated() {
            let slot = Self.slot(of: command)
            guard let node = slot.map({ map.node(for: $0) }) ?? map.nodes.first else {
                topology.refresh()
                finished(index, .failure(.unavailable(slot.map { "no Redis Cluster master serves slot \($0) (\(topology.status))" }
                    ?? "no Redis Cluster master is known (\(topology.status))")))
                continue
            }
            batches[node, default: []].append(index)
        }
        for (node, indices) in batches {
            connection(to: node).send(indices.map { commands[$0] }) { result in
                switch result {
                case .failure(let error):
                    self.topology.refresh()  // a master that went may have been replaced
                    for index in indices { finished(index, .failure(error)) }
                case .success(let nodeReplies):
                    for (index, reply) in zip(indices, nodeReplies) {
                        self.settle(commands[index], reply: reply, from: node, attempt: 1) { finished(index, $0) }
                    }
                }
            }
        }
    }

    /// A reply that is an answer is the answer; a redirection is followed.
    private func settle(
        _ command: [RESPArgument], reply: RESPValue, from node: ServerAddress, attempt: Int, completion: @escaping (Result<RESPValue, StoreError>) -> Void
    ) {
        guard case .error(let message) = reply, attempt < Self.maxAttempts, let redirect = Redirect(message, from: node) else {
            return completion(.success(reply))
        }
        func resend(to target: ServerAddress, asking: Bool) {
            let batch: [[RESPArgument]] = asking ? [["ASKING"], command] : [command]
            connection(to: target).send(batch) { result in
                switch result {
                case .failure(let error): completion(.failure(error))
                case .success(let replies):
                    self.settle(command, reply: replies[replies.count - 1], from: target, attempt: attempt + 1, completion: completion)
                }
            }
        }
        metrics.followed(redirect.kind)
        switch redirect {
        case .moved(let slot, let target):
            topology.moved(slot, to: target)
            resend(to: target, asking: false)
        case .ask(let target):
            resend(to: target, asking: true)
        case .tryAgain, .clusterDown:
            let delay = TimeAmount.milliseconds(25 << (attempt - 1))
            eventLoop.assumeIsolated().scheduleTask(in: delay) {
                let target = Self.slot(of: command).flatMap { self.topology.map.node(for: $0) } ?? node
                resend(to: target, asking: false)
            }
        }
    }

    /// The slot of a command's first key; nil for a command without keys (it may go to any master).
    static func slot(of command: [RESPArgument]) -> Int? {
        guard let key = firstKey(of: command) else { return nil }
        switch key {
        case .string(var text): return text.withUTF8 { RedisSlot.of(bytes: UnsafeRawBufferPointer($0)) }
        case .bytes(let buffer): return buffer.withUnsafeReadableBytes { RedisSlot.of(bytes: $0) }
        }
    }

    /// `EVAL script numkeys key…`: the first key, if any; `PING`, `PUBLISH`, `ASKING`: none; otherwise the
    /// argument after the command's name (every other command Trove sends names its key first; `SPUBLISH` its
    /// shard channel, which hashes like a key).
    static func firstKey(of command: [RESPArgument]) -> RESPArgument? {
        guard case .string(let name)? = command.first else { return command.count > 1 ? command[1] : nil }
        switch name.uppercased() {
        case "EVAL", "EVALSHA", "FCALL":
            guard command.count > 3, case .string(let count) = command[2], let keys = Int(count), keys > 0 else { return nil }
            return command[3]
        case "PING", "PUBLISH", "ASKING", "CLUSTER", "INFO", "AUTH":
            return nil
        default:
            return command.count > 1 ? command[1] : nil
        }
    }

    /// What a cluster's error reply asks for.
    enum Redirect: Equatable {
        case moved(slot: Int, to: ServerAddress)
        case ask(to: ServerAddress)
        /// Both are waited out and tried again.
        case tryAgain, clusterDown

        var kind: RedisMetrics.Redirect {
            switch self {
            case .moved: .moved
            case .ask: .ask
            case .tryAgain: .tryagain
            case .clusterDown: .clusterdown
            }
        }

        /// `MOVED 3999 127.0.0.1:6381`, `ASK 3999 127.0.0.1:6381` (an empty host is the answering node's), `TRYAGAIN …`,
        /// `CLUSTERDOWN …`; nil for any other error.
        init?(_ message: String, from node: ServerAddress) {
            let parts = message.split(separator: " ")
            switch parts.first {
            case "TRYAGAIN":
                self = .tryAgain
            case "CLUSTERDOWN":
                self = .clusterDown
            case "MOVED", "ASK":
                guard parts.count >= 3, let slot = Int(parts[1]), (0..<RedisSlot.count).contains(slot),
                    let colon = parts[2].lastIndex(of: ":"), let port = Int(parts[2][parts[2].index(after: colon)...]), (1...65535).contains(port)
                else { return nil }
                var host = String(parts[2][..<colon])
                if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                let target = ServerAddress(host: host.isEmpty ? node.host : host, port: port)
                self = parts[0] == "MOVED" ? .moved(slot: slot, to: target) : .ask(to: target)
            default:
                return nil
            }
        }
    }
}
