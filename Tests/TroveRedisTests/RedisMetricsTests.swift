import TroveHTTP
import Testing
@testable import TroveRedis

/// Per-node connection counts go up and down with connections, and the node labels are bounded.
@Suite struct RedisMetricsTests {
    @Test func connectionsPerNodeFollowConnects() {
        let metrics = RedisMetrics()
        let node = ServerAddress(host: "127.0.0.1", port: 7000)
        metrics.connected(node)
        metrics.connected(node)
        #expect(metrics.connections(to: node) == 2)
        metrics.disconnected(node)
        metrics.disconnected(node)
        metrics.disconnected(node)  // never below zero
        #expect(metrics.connections(to: node) == 0)
    }

    @Test func nodesPastTheBoundShareOneLabel() {
        let metrics = RedisMetrics()
        let nodes = (0..<(RedisMetrics.maxNodes + 10)).map { ServerAddress(host: "10.0.0.1", port: 7000 + $0) }
        for node in nodes { metrics.connected(node) }
        #expect(metrics.connections(to: nodes[0]) == 1)
        #expect(metrics.connections(to: nodes[RedisMetrics.maxNodes - 1]) == 1)
        #expect(metrics.connections(to: nodes[RedisMetrics.maxNodes]) == 0, "past the bound, a node has no series of its own")
        #expect(metrics.labels == RedisMetrics.maxNodes + 1, "the first \(RedisMetrics.maxNodes) and `other`")
        #expect(metrics.connections(toLabel: "other") == 10)
    }
}
