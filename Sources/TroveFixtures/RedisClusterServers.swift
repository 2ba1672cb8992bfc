import Foundation

/// A real Redis Cluster on free loopback ports, started for a test and stopped by it: what `redis-cluster://`
/// URLs point at.
///
/// Without replicas the fixture sets it up itself (`CLUSTER MEET`, `CLUSTER ADDSLOTSRANGE`: the slots split
/// evenly, in order), which is quick. With replicas it is made the way operators make one,
/// `redis-cli --cluster create … --cluster-replicas N --cluster-yes`, and ready once every replica has synced.
/// Who serves what is read from the cluster itself (`CLUSTER NODES`), so it stays right after a failover or a
/// resharding.
public final class RedisClusterServers: Sendable {
    /// Every node, masters first as they were made.
    public let servers: [RedisServer]
    /// The slots each master was given at the start, in `servers`' order.
    public let ranges: [ClosedRange<Int>]
    private let directory: String

    public init(masters: Int = 3, replicas: Int = 0, nodeTimeout: Duration = .milliseconds(2000)) throws {
        precondition(masters >= 1 && replicas >= 0)
        let directory = NSTemporaryDirectory() + "trove-cluster-\(UUID().uuidString)"
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var servers: [RedisServer] = []
        for index in 0..<masters * (1 + replicas) {
            servers.append(try RedisServer(extraArguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", directory + "/nodes-\(index)-\(UUID().uuidString).conf",
                "--cluster-node-timeout", String(nodeTimeout.components.seconds * 1000 + nodeTimeout.components.attoseconds / 1_000_000_000_000_000), "--cluster-require-full-coverage", "no",
            ]) {
                // The bus port is the client port + 10000 unless given: past 55535 (most free ports) that is no port.
                ["--cluster-port", String(try Sockets.freePort())]
            })
        }
        self.servers = servers
        let size = 16384 / masters
        ranges = (0..<masters).map { index in (index * size)...(index == masters - 1 ? 16383 : (index + 1) * size - 1) }
        if replicas > 0 {
            let cli = try ChildProcess(executable: try Self.redisCLI(), arguments:
                ["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", String(replicas), "--cluster-yes"])
            let status = cli.waitForExit()
            guard status == 0 else { throw TestSupportError("redis-cli --cluster create exited with \(status)") }
        } else {
            for (server, range) in zip(servers, ranges) {
                let reply = try server.command(["CLUSTER", "ADDSLOTSRANGE", String(range.lowerBound), String(range.upperBound)])
                guard reply == "OK" else { throw TestSupportError("CLUSTER ADDSLOTSRANGE answered \(reply)") }
            }
            for server in servers.dropFirst() {
                _ = try servers[0].command(["CLUSTER", "MEET", "127.0.0.1", String(server.port), String(server.clusterPort!)])
            }
        }
        let everyone = servers.count
        try wait(until: "every node of the cluster says it is ok, and every replica has synced", timeout: .seconds(30)) {
            servers.allSatisfy { server in
                let info = (try? server.command(["CLUSTER", "INFO"])) ?? ""
                let replication = (try? server.command(["INFO", "replication"])) ?? ""
                return info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:\(everyone)")
                    && (replication.contains("role:master") || replication.contains("master_link_status:up"))
            }
        }
        if replicas > 0 {
            try wait(until: "the cluster has \(masters) masters with \(replicas) replicas each") {
                let nodes = (try? self.nodes()) ?? []
                return nodes.filter(\.isMaster).count == masters && nodes.filter { !$0.isMaster }.count == masters * replicas
            }
        }
    }

    /// `redis-cli`, which comes with `redis-server` (Debian's redis-tools).
    static func redisCLI() throws -> String {
        let server = try RedisServer.executable()
        let cli = (server as NSString).deletingLastPathComponent + "/redis-cli"
        guard FileManager.default.isExecutableFile(atPath: cli) else {
            throw TestSupportError("redis-cli is not installed beside \(server): run scripts/install-deps.sh (or `apt-get install redis-tools`)")
        }
        return cli
    }

    /// One line of `CLUSTER NODES`, as a live node sees the cluster.
    public struct Node: Sendable {
        public let id: String
        public let port: Int
        public let isMaster: Bool
        /// The master's id, for a replica.
        public let master: String?
        public let failed: Bool
        /// The slots it serves (a master).
        public let slots: [ClosedRange<Int>]
    }

    /// The cluster as the first live node describes it.
    public func nodes() throws -> [Node] {
        var lastError: (any Error)?
        for server in servers {
            do {
                let text = try server.command(["CLUSTER", "NODES"])
                guard !text.hasPrefix("ERR") else { throw TestSupportError(text) }
                return text.split(separator: "\n").compactMap { line in
                    let fields = line.split(separator: " ").map(String.init)
                    guard fields.count >= 8, let colon = fields[1].lastIndex(of: ":") else { return nil }
                    let port = Int(fields[1][fields[1].index(after: colon)...].prefix { $0.isNumber }) ?? 0
                    let flags = fields[2].split(separator: ",")
                    let slots: [ClosedRange<Int>] = fields.dropFirst(8).compactMap { field in
                        guard !field.hasPrefix("[") else { return nil }  // a slot being migrated or imported
                        let bounds = field.split(separator: "-").compactMap { Int($0) }
                        return bounds.count == 2 ? bounds[0]...bounds[1] : bounds.first.map { $0...$0 }
                    }
                    return Node(id: fields[0], port: port, isMaster: flags.contains("master"), master: fields[3] == "-" ? nil : fields[3],
                        failed: flags.contains("fail") || flags.contains("fail?"), slots: slots)
                }
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestSupportError("no node of the cluster answers")
    }

    /// The server serving `slot` now, as the cluster says.
    public func server(for slot: Int) -> RedisServer {
        let node = (try? nodes())?.first { $0.isMaster && !$0.failed && $0.slots.contains { $0.contains(slot) } }
        return servers.first { $0.port == node?.port } ?? servers[ranges.firstIndex { $0.contains(slot) } ?? 0]
    }

    /// The masters now, as the cluster says.
    public func masters() throws -> [RedisServer] {
        let ports = Set(try nodes().filter { $0.isMaster && !$0.failed && !$0.slots.isEmpty }.map(\.port))
        return servers.filter { ports.contains($0.port) }
    }

    /// The replicas of `master` now.
    public func replicas(of master: RedisServer) throws -> [RedisServer] {
        let nodes = try nodes()
        guard let id = nodes.first(where: { $0.port == master.port })?.id else { return [] }
        let ports = Set(nodes.filter { $0.master == id }.map(\.port))
        return servers.filter { ports.contains($0.port) }
    }

    /// Moves `count` slots from one master to another with `redis-cli --cluster reshard` (the slots it picks are
    /// the source's lowest), waiting until it is done. Blocks: run it beside the load a test keeps up.
    public func reshard(slots count: Int, from source: RedisServer, to target: RedisServer) throws {
        let cli = try ChildProcess(executable: try Self.redisCLI(), arguments: [
            "--cluster", "reshard", "127.0.0.1:\(source.port)", "--cluster-from", try id(of: source), "--cluster-to", try id(of: target),
            "--cluster-slots", String(count), "--cluster-yes",
        ])
        let status = cli.waitForExit()
        guard status == 0 else { throw TestSupportError("redis-cli --cluster reshard exited with \(status)") }
    }

    deinit {
        for server in servers { server.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,…` with the servers given (all by default) as seeds.
    public func url(seeds: [Int]? = nil) -> String {
        "redis-cluster://" + (seeds ?? Array(servers.indices)).map { "127.0.0.1:\(servers[$0].port)" }.joined(separator: ",")
    }

    /// The server holding `key`, as the cluster itself computes its slot (`CLUSTER KEYSLOT`).
    public func server(forKey key: String) throws -> RedisServer {
        let answers = servers.lazy.compactMap { try? $0.command(["CLUSTER", "KEYSLOT", key]) }.compactMap { Int($0) }
        guard let slot = answers.first else { throw TestSupportError("CLUSTER KEYSLOT failed on every node") }
        return server(for: slot)
    }

    /// The node id of a server (`CLUSTER MYID`).
    public func id(of server: RedisServer) throws -> String {
        try server.command(["CLUSTER", "MYID"])
    }

    /// Moves `slot` with its keys from one server to another, the way `redis-cli --cluster reshard` does
    /// (`IMPORTING`, `MIGRATING`, `MIGRATE` each key, `SETSLOT NODE` everywhere). `pause` is called once the slot
    /// is migrating and before any key moves, with the keys that will: a test can then see `ASK` replies.
    public func move(
        slot: Int, from source: RedisServer, to target: RedisServer, beforeKeysMove pause: () async throws -> Void = {}
    ) async throws {
        let sourceID = try id(of: source)
        let targetID = try id(of: target)
        _ = try target.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID])
        _ = try source.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID])
        try await pause()
        while true {
            let keys = try source.command(["CLUSTER", "GETKEYSINSLOT", String(slot), "100"])
            if keys.isEmpty || keys == "nil" { break }
            for key in keys.split(separator: " ") {
                _ = try source.command(["MIGRATE", "127.0.0.1", String(target.port), String(key), "0", "5000"])
            }
        }
        for server in servers {
            _ = try server.command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID])
        }
    }

    /// Moves one key of a migrating slot (between `CLUSTER SETSLOT … MIGRATING` and the end of `move`).
    public func migrate(key: String, from source: RedisServer, to target: RedisServer) throws {
        _ = try source.command(["MIGRATE", "127.0.0.1", String(target.port), key, "0", "5000"])
    }
}
