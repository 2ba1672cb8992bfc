import Foundation

/// A real Redis Cluster of `masters` servers (`--cluster-enabled yes`) on free loopback ports, set up by the
/// fixture itself (`CLUSTER MEET`, `CLUSTER ADDSLOTSRANGE`: the slots split evenly, in order), started for a test
/// and stopped by it: what `redis-cluster://` URLs point at.
public final class RedisClusterServers: Sendable {
    public let servers: [RedisServer]
    /// The slots each server was given, in `servers`' order.
    public let ranges: [ClosedRange<Int>]
    private let directory: String

    public init(masters: Int = 3) throws {
        precondition(masters >= 1)
        let directory = NSTemporaryDirectory() + "trove-cluster-\(UUID().uuidString)"
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var servers: [RedisServer] = []
        for index in 0..<masters {
            servers.append(try RedisServer(extraArguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", directory + "/nodes-\(index)-\(UUID().uuidString).conf",
                "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no",
            ]))
        }
        self.servers = servers
        let size = 16384 / masters
        ranges = (0..<masters).map { index in (index * size)...(index == masters - 1 ? 16383 : (index + 1) * size - 1) }
        for (server, range) in zip(servers, ranges) {
            let reply = try server.command(["CLUSTER", "ADDSLOTSRANGE", String(range.lowerBound), String(range.upperBound)])
            guard reply == "OK" else { throw TestSupportError("CLUSTER ADDSLOTSRANGE answered \(reply)") }
        }
        for server in servers.dropFirst() {
            _ = try servers[0].command(["CLUSTER", "MEET", "127.0.0.1", String(server.port)])
        }
        try wait(until: "every node of the cluster says it is ok", timeout: .seconds(30)) {
            servers.allSatisfy { ((try? $0.command(["CLUSTER", "INFO"])) ?? "").contains("cluster_state:ok") }
                && servers.allSatisfy { ((try? $0.command(["CLUSTER", "INFO"])) ?? "").contains("cluster_known_nodes:\(masters)") }
        }
    }

    deinit {
        for server in servers { server.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,…` with the servers given (all by default) as seeds.
    public func url(seeds: [Int]? = nil) -> String {
        "redis-cluster://" + (seeds ?? Array(servers.indices)).map { "127.0.0.1:\(servers[$0].port)" }.joined(separator: ",")
    }

    /// The server holding `slot`, as the fixture set it up.
    public func server(for slot: Int) -> RedisServer {
        servers[ranges.firstIndex { $0.contains(slot) }!]
    }

    /// The server holding `key`, as the cluster itself computes its slot (`CLUSTER KEYSLOT`).
    public func server(forKey key: String) throws -> RedisServer {
        guard let slot = Int(try servers[0].command(["CLUSTER", "KEYSLOT", key])) else { throw TestSupportError("CLUSTER KEYSLOT failed") }
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
