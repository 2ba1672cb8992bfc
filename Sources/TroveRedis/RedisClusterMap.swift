public import TroveHTTP
internal import NIOCore

/// Which master serves each hash slot of a Redis Cluster, as `CLUSTER SLOTS` last described it (and as `MOVED`
/// replies corrected it since). A slot no master serves (a cluster being set up, a failed master without a
/// replica) has no node.
public struct RedisClusterMap: Sendable, Equatable {
    /// The masters, in the order first seen.
    public private(set) var nodes: [ServerAddress]
    /// For each slot, its master's index in `nodes`, or `none`.
    private var owners: [UInt16]
    private static let none = UInt16.max

    public init() {
        nodes = []
        owners = Array(repeating: Self.none, count: RedisSlot.count)
    }

    /// The master serving `slot`, if any.
    public func node(for slot: Int) -> ServerAddress? {
        guard (0..<RedisSlot.count).contains(slot) else { return nil }
        let owner = owners[slot]
        return owner == Self.none ? nil : nodes[Int(owner)]
    }

    /// How many slots have a master.
    public var coveredSlots: Int { owners.lazy.filter { $0 != Self.none }.count }

    /// Whether every slot has the same master in both maps (however the masters are numbered).
    public func sameOwners(as other: RedisClusterMap) -> Bool {
        (0..<RedisSlot.count).allSatisfy { node(for: $0) == other.node(for: $0) }
    }

    /// Records that `node` serves `slot` now (what a `MOVED` reply says).
    public mutating func assign(_ slot: Int, to node: ServerAddress) {
        guard (0..<RedisSlot.count).contains(slot) else { return }
        owners[slot] = index(of: node)
    }

    private mutating func index(of node: ServerAddress) -> UInt16 {
        if let index = nodes.firstIndex(of: node) { return UInt16(index) }
        nodes.append(node)
        return UInt16(nodes.count - 1)
    }

    /// Reads `CLUSTER SLOTS`: `[[start, end, [host, port, id, …], replicas…], …]`. A master given with an empty
    /// host (Redis 7's "unknown endpoint") is reached at `fallbackHost`, the node that answered.
    public static func parse(_ reply: RESPValue, fallbackHost: String) -> Result<RedisClusterMap, RedisClusterMapError> {
        guard case .array(let ranges) = reply else { return .failure(.init("CLUSTER SLOTS answered \(reply)")) }
        var map = RedisClusterMap()
        for range in ranges {
            guard case .array(let parts) = range, parts.count >= 3, case .integer(let start) = parts[0], case .integer(let end) = parts[1],
                start >= 0, end < RedisSlot.count, start <= end, case .array(let master) = parts[2], master.count >= 2,
                case .integer(let port) = master[1], (1...65535).contains(port)
            else { return .failure(.init("CLUSTER SLOTS answered a range that is not [start, end, [host, port, …]]: \(range)")) }
            var host = fallbackHost
            if case .bulkString(let text) = master[0], text.readableBytes > 0, String(buffer: text) != "?" {
                host = String(buffer: text)
            }
            let node = map.index(of: ServerAddress(host: host, port: Int(port)))
            for slot in Int(start)...Int(end) { map.owners[slot] = node }
        }
        return .success(map)
    }
}

public struct RedisClusterMapError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
