public import CoreMetrics
internal import Synchronization
internal import TroveHTTP

/// What Trove's Redis connections report to `/metrics`, per node where it matters: how many event loops are
/// connected to each node now, how often connecting to (or keeping) each one failed, the cluster redirections
/// followed, and how often the sentinels named another master or the cluster's slot map changed.
///
/// Made through the application's metrics factory (see `ProxyMetrics`); by default through swift-metrics' no-op
/// one, so that stores made by tests need none. Node labels are `host:port` of the nodes the sentinels or the
/// cluster named, at most `maxNodes` of them per process (any further ones share the label `other`), so a
/// cluster resized many times over a process's life cannot grow the series without bound.
public final class RedisMetrics: Sendable {
    /// A reply that sent a command elsewhere (or later), as `RedisClusterConnection` follows it.
    enum Redirect: String, CaseIterable, Sendable {
        case moved, ask, tryagain, clusterdown
    }

    /// Something that changed where commands go.
    enum Change: String, CaseIterable, Sendable {
        /// The sentinels named another master.
        case master
        /// A full read of a cluster's slot map found a slot on another master than before.
        case slots
    }

    static let maxNodes = 64

    private let factory: any MetricsFactory
    private let redirects: [Redirect: Counter]
    private let changes: [Change: Counter]
    private let nodes = Mutex<[String: Node]>([:])

    private struct Node: Sendable {
        let connections: Gauge
        let failures: Counter
        var connected = 0
    }

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        redirects = Dictionary(uniqueKeysWithValues: Redirect.allCases.map {
            ($0, Counter(label: "trove_redis_redirects_total", dimensions: [("kind", $0.rawValue)], factory: factory))
        })
        changes = Dictionary(uniqueKeysWithValues: Change.allCases.map {
            ($0, Counter(label: "trove_redis_topology_changes_total", dimensions: [("change", $0.rawValue)], factory: factory))
        })
    }

    func followed(_ redirect: Redirect) {
        redirects[redirect]?.increment()
    }

    func changed(_ change: Change) {
        changes[change]?.increment()
    }

    /// A connection to `node` became ready.
    func connected(_ node: ServerAddress) {
        update(node) { node in
            node.connected += 1
            node.connections.record(node.connected)
        }
    }

    /// A connection to `node` that was ready is not any more (lost, closed, or moved to another master).
    func disconnected(_ node: ServerAddress) {
        update(node) { node in
            node.connected = max(0, node.connected - 1)
            node.connections.record(node.connected)
        }
    }

    /// Connecting to `node` failed, or its ready connection was lost.
    func failed(_ node: ServerAddress) {
        update(node) { $0.failures.increment() }
    }

    /// Connections to `node` up now, summed over every event loop (tests).
    func connections(to node: ServerAddress) -> Int {
        connections(toLabel: node.description)
    }

    func connections(toLabel label: String) -> Int {
        nodes.withLock { $0[label]?.connected ?? 0 }
    }

    /// How many node labels there are (tests).
    var labels: Int { nodes.withLock { $0.count } }

    /// Runs on connection changes only, never per command, so the lock is not on the hit path.
    private func update(_ address: ServerAddress, _ change: (inout Node) -> Void) {
        nodes.withLock { nodes in
            var label = address.description
            if nodes[label] == nil, nodes.count >= Self.maxNodes { label = "other" }
            var node = nodes[label] ?? Node(
                connections: Gauge(label: "trove_redis_connections", dimensions: [("node", label)], factory: factory),
                failures: Counter(label: "trove_redis_connection_failures_total", dimensions: [("node", label)], factory: factory))
            change(&node)
            nodes[label] = node
        }
    }
}
