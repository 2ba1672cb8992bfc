import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveRules
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Trove in front of a real Redis Cluster (`redis-cluster://`, three masters): entries spread over the masters by
/// their keys' slots, every kind of purge (tag, key, route, everything, soft) invalidates them on every node, two
/// instances share them, a write purges across nodes, and a master that is down costs only its own keys.
@Suite(.serialized) struct ClusterTests {
    private func trove(_ scenario: Scenario, _ cluster: RedisClusterServers, seeds: [Int]? = nil) async throws -> TroveApplication {
        let store = "store: {redis: \"\(cluster.url(seeds: seeds))\", namespace: cl, command_timeout: 300ms, connect_timeout: 500ms}"
        let rules = try RulesLoader.parse(scenario.yaml(settings: store), file: "cluster.yaml", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        return try await scenario.trove(rules)
    }

    private func ready(_ scenario: Scenario, _ trove: TroveApplication) async throws {
        try await eventually("connected to every master") {
            let ready = try await scenario.admin(trove, "/readyz")
            return ready.status == 200 && ready.body.contains("3 masters, every slot served") && !ready.body.contains("degraded")
        }
    }

    /// The master holding the entry of cache key `key` (namespace `cl`).
    private func server(_ cluster: RedisClusterServers, entry key: String) -> RedisServer {
        (try? cluster.server(forKey: "cl:e:{\(key)}")) ?? cluster.servers[0]
    }

    @Test func entriesSpreadAndEveryPurgeReachesThem() async throws {
        let cluster = try RedisClusterServers(masters: 3)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, cluster, seeds: [1])
        try await ready(scenario, trove)
        let ids = Array(1...12)
        for id in ids { #expect(try await scenario.request(trove, "/api/v1/events/\(id)").xCache == "MISS") }
        for id in ids {
            try await eventually("a hit for \(id)") { try await scenario.request(trove, "/api/v1/events/\(id)").xCache == "HIT" }
            // The entry lives on the master of its cache key's slot, beside its key counter's slot.
            #expect(try server(cluster, entry: "events:full:\(id)").command(["EXISTS", "cl:e:{events:full:\(id)}"]) == "1")
        }
        #expect(Set(ids.map { server(cluster, entry: "events:full:\($0)").port }).count > 1, "the entries spread over the masters")

        // A tag, on the shared counters' master: only that entry.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:1"]}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        #expect(try await scenario.request(trove, "/api/v1/events/2").xCache == "HIT")
        // A key, on its entry's master.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"keys": ["events:full:2"]}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/2").xCache == "MISS")
        #expect(try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT")
        // A write rule.
        _ = try await scenario.request(trove, "PUT", "/api/v1/events/3", body: #"{"title": "x"}"#)
        #expect(try await scenario.request(trove, "/api/v1/events/3").xCache == "MISS")
        // Soft: stale, refreshed.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:4"], "soft": true, "stale": "1m"}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/4").xCache == "STALE")
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"keys": ["events:full:5"], "soft": true, "stale": "1m"}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/5").xCache == "STALE")
        // A route, then everything.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"routes": ["event"]}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/6").xCache == "MISS")
        try await eventually("a hit for 7 after the route purge") {
            try await scenario.request(trove, "/api/v1/events/7").xCache == "HIT"
        }
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"all": true}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/7").xCache == "MISS")
        await scenario.stop(trove)
    }

    @Test func twoInstancesShareEntriesAndPurges() async throws {
        let cluster = try RedisClusterServers(masters: 3)
        let scenario = try await Scenario(redis: false)
        let first = try await trove(scenario, cluster)
        let second = try await trove(scenario, cluster, seeds: [2])
        try await ready(scenario, first)
        try await ready(scenario, second)
        #expect(try await scenario.request(first, "/api/v1/events/8").xCache == "MISS")
        try await eventually("the other instance hits") { try await scenario.request(second, "/api/v1/events/8").xCache == "HIT" }
        _ = try await scenario.request(first, "PUT", "/api/v1/events/8", body: #"{"title": "y"}"#)
        #expect(try await scenario.request(second, "/api/v1/events/8").xCache == "MISS", "a write on one purges for both")
        await scenario.stop(first, second)
    }

    @Test func aMasterThatIsDownCostsOnlyItsKeys() async throws {
        let cluster = try RedisClusterServers(masters: 3)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, cluster)
        try await ready(scenario, trove)
        // The shared counters' master must stay up for any hit (every lookup reads them).
        let shared = try cluster.server(forKey: "cl:g:{cl}:all")
        let down = cluster.servers.first { $0 !== shared }!
        let ids = Array(1...40)
        let lost = ids.first { server(cluster, entry: "events:full:\($0)") === down }!
        let kept = ids.first { server(cluster, entry: "events:full:\($0)") !== down }!
        for id in [lost, kept] {
            _ = try await scenario.request(trove, "/api/v1/events/\(id)")
            try await eventually("a hit for \(id)") { try await scenario.request(trove, "/api/v1/events/\(id)").xCache == "HIT" }
        }
        down.kill()
        try await eventually("the down master's entry goes to the origin, the other is still a hit") {
            let gone = try await scenario.request(trove, "/api/v1/events/\(lost)")
            let hit = try await scenario.request(trove, "/api/v1/events/\(kept)")
            #expect(gone.status == 200 && hit.status == 200, "no request fails")
            return gone.cacheStatus?.contains("detail=STORE-UNAVAILABLE") == true && hit.xCache == "HIT"
        }
        let ready = try await scenario.admin(trove, "/readyz")
        #expect(ready.body.contains("127.0.0.1:\(down.port): not connected"), "\(ready.body)")
        await scenario.stop(trove)
    }
}
