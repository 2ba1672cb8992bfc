import TroveHTTP
import Foundation
import Synchronization
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
    private func trove(
        _ scenario: Scenario, _ cluster: RedisClusterServers, seeds: [Int]? = nil, timeout: String = "2s"
    ) async throws -> TroveApplication {
        let store = "store: {redis: \"\(cluster.url(seeds: seeds))\", namespace: cl, command_timeout: 300ms, connect_timeout: 500ms}"
        let rules = try RulesLoader.parse(scenario.yaml(timeout: timeout, settings: store), file: "cluster.yaml",
            environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
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

    /// The race, across masters: a purge of a tag (its counter on the shared counters' master) that lands while a
    /// fetch of an entry held by another master runs invalidates what that fetch stores.
    @Test func purgeDuringAFetch() async throws {
        let cluster = try RedisClusterServers(masters: 3)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, cluster, timeout: "30s")
        try await ready(scenario, trove)
        let shared = try cluster.server(forKey: "cl:g:{cl}:all")
        let id = try #require((1...40).first { server(cluster, entry: "events:full:\($0)") !== shared }, "an entry on another master")
        let hold = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "cluster-purge"), Header("X-Origin-Gather-Ms", "20000")]
        let slow = Task { try await scenario.request(trove, "/api/v1/events/\(id)", headers: hold) }
        try await eventually("the origin is answering the slow GET") { scenario.origin.stats.count(path: "/api/v1/events/\(id)") == 1 }
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"tags\": [\"event:\(id)\"]}").status == 200)
        #expect(try await scenario.request(url: scenario.origin.url + "/api/v1/events/\(id == 1 ? 2 : 1)", headers: hold).status == 200)
        #expect(try await slow.value.xCache == "MISS")
        // What the slow fetch stored began before the purge: it must not be served.
        let next = try await scenario.request(trove, "/api/v1/events/\(id)")
        #expect(next.xCache == "MISS")
        #expect(next.cacheStatus == "trove; fwd=miss; fwd-status=200; stored")
        try await eventually("a hit once stored again") { try await scenario.request(trove, "/api/v1/events/\(id)").xCache == "HIT" }
        await scenario.stop(trove)
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
        // Listed, and not connected (between two attempts, or in one).
        #expect(ready.body.contains("127.0.0.1:\(down.port): ") && !ready.body.contains("127.0.0.1:\(down.port): connected"), "\(ready.body)")
        await scenario.stop(trove)
    }
}

/// Trove in front of a Redis Cluster of three masters with a replica each, made with `redis-cli --cluster create`,
/// while requests keep coming: a master killed and replaced by its replica, slots resharded with `redis-cli
/// --cluster reshard`, and a purge the promoted replica never received. No client request fails in any of them.
@Suite(.serialized) struct ClusterChangeTests {
    private func trove(_ scenario: Scenario, _ cluster: RedisClusterServers) async throws -> TroveApplication {
        let store = "store: {redis: \"\(cluster.url())\", namespace: cl, command_timeout: 300ms, connect_timeout: 500ms}"
        let rules = try RulesLoader.parse(scenario.yaml(settings: store), file: "cluster.yaml", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        let trove = try await scenario.trove(rules)
        try await eventually("connected to every master") {
            let ready = try await scenario.admin(trove, "/readyz")
            return ready.status == 200 && ready.body.contains("3 masters, every slot served") && !ready.body.contains("degraded")
        }
        return trove
    }

    private func warm(_ scenario: Scenario, _ trove: TroveApplication, _ ids: [Int]) async throws {
        for id in ids {
            _ = try await scenario.request(trove, "/api/v1/events/\(id)")
            try await eventually("a hit for \(id)") { try await scenario.request(trove, "/api/v1/events/\(id)").xCache == "HIT" }
        }
    }

    private func metric(_ scenario: Scenario, _ trove: TroveApplication, _ name: String) async throws -> Double {
        OperationsTests.metrics(try await scenario.admin(trove, "/metrics").body)[name] ?? 0
    }

    /// Tells the clients of `underLoad` to stop.
    private final class StopFlag: Sendable {
        let stopped = Atomic<Bool>(false)
    }

    /// Requests for `ids` kept up by `lanes` clients, one request after another each with `pause` between them,
    /// while `during` runs: what "under load" means here (paced, so that the suite's other tests, running beside
    /// it on a small machine, keep their share of the cores). Each lane stops when `during` has ended, or after
    /// 20,000 requests or 60 s. Returns how many requests were sent and every one that did not come back 200.
    private func underLoad(
        _ scenario: Scenario, _ trove: TroveApplication, ids: [Int], lanes: Int = 2, pause: Duration = .milliseconds(10),
        during: () async throws -> Void
    ) async throws -> (sent: Int, failed: [String]) {
        let flag = StopFlag()
        return try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var sent = 0
                    var failed: [String] = []
                    let clock = ContinuousClock()
                    let deadline = clock.now + .seconds(60)
                    while !flag.stopped.load(ordering: .relaxed), !Task.isCancelled, sent < 20_000, clock.now < deadline {
                        let id = ids[(lane + sent) % ids.count]
                        do {
                            let answer = try await scenario.request(trove, "/api/v1/events/\(id)")
                            if answer.status != 200 { failed.append("\(id): \(answer.status) \(answer.cacheStatus ?? "")") }
                        } catch {
                            failed.append("\(id): \(error)")
                        }
                        sent += 1
                        try? await Task.sleep(for: pause)
                    }
                    return (sent, failed)
                }
            }
            do {
                try await during()
            } catch {
                flag.stopped.store(true, ordering: .relaxed)
                throw error
            }
            flag.stopped.store(true, ordering: .relaxed)
            var total = (sent: 0, failed: [String]())
            for try await (sent, failed) in group {
                total.sent += sent
                total.failed += failed
            }
            return total
        }
    }

    @Test func aKilledMasterIsReplacedByItsReplicaAndNoRequestFails() async throws {
        let cluster = try RedisClusterServers(masters: 3, replicas: 1)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, cluster)
        let ids = Array(1...12)
        try await warm(scenario, trove, ids)
        // The shared counters' master: every lookup reads it, so while it is down nothing at all is a hit.
        let down = try cluster.server(forKey: "cl:g:{cl}:all")
        let replica = try #require(try cluster.replicas(of: down).first)
        let load = try await underLoad(scenario, trove, ids: ids) {
            down.kill()
            try await eventually("the replica is promoted and Trove hits through it", timeout: .seconds(30)) {
                guard try cluster.masters().contains(where: { $0 === replica }) else { return false }
                return try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT"
            }
        }
        #expect(load.sent > 0)
        #expect(load.failed.isEmpty, "no request fails: \(load.failed.prefix(5))")
        for id in ids {
            try await eventually("a hit for \(id) after the failover") { try await scenario.request(trove, "/api/v1/events/\(id)").xCache == "HIT" }
        }
        let ready = try await scenario.admin(trove, "/readyz")
        #expect(ready.status == 200 && ready.body.contains("127.0.0.1:\(replica.port): connected"), "\(ready.body)")
        #expect(try await metric(scenario, trove, #"trove_redis_topology_changes_total{change="slots"}"#) >= 1)
        #expect(try await metric(scenario, trove, #"trove_redis_connection_failures_total{node="127.0.0.1:\#(down.port)"}"#) >= 1)
        #expect(try await metric(scenario, trove, #"trove_redis_connections{node="127.0.0.1:\#(replica.port)"}"#) >= 1)
        await scenario.stop(trove)
    }

    /// Replication is asynchronous: a purge the old master acknowledged may never reach the replica that replaces
    /// it. Here the replica is cut off (frozen, its replication link dropped) before the purge and the master
    /// killed after it; the promoted replica lacks the purge, and Trove applies its recent purges again before it
    /// serves anything from the new master.
    @Test func aPurgeThePromotedReplicaNeverReceivedIsAppliedAgain() async throws {
        let cluster = try RedisClusterServers(masters: 3, replicas: 1)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, cluster)
        try await warm(scenario, trove, [6])
        let counter = "cl:g:{cl}:t:event:6"
        let master = try cluster.server(forKey: counter)
        let replica = try #require(try cluster.replicas(of: master).first)
        let before = try master.command(["GET", counter])
        try await eventually("the replica has what the master has") {
            try replica.command(["INFO", "replication"]).contains("master_link_status:up")
        }
        replica.signal(SIGSTOP)
        _ = try master.command(["CLIENT", "KILL", "TYPE", "replica"])
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:6"]}"#).status == 200)
        #expect(try master.command(["GET", counter]) != before)
        master.kill()
        replica.signal(SIGCONT)
        try await eventually("the replica is promoted", timeout: .seconds(30)) { try cluster.masters().contains { $0 === replica } }
        try await eventually("Trove is connected to the promoted replica", timeout: .seconds(15)) {
            let ready = try await scenario.admin(trove, "/readyz")
            return ready.status == 200 && ready.body.contains("127.0.0.1:\(replica.port): connected")
        }
        let answer = try await scenario.request(trove, "/api/v1/events/6")
        #expect(answer.xCache == "MISS", "the purged entry is not served from the promoted replica: \(answer.cacheStatus ?? "")")
        #expect(try replica.command(["GET", counter]) != before, "the purge was applied again")
        await scenario.stop(trove)
    }

    @Test func slotsReshardedUnderLoadAreFollowed() async throws {
        let cluster = try RedisClusterServers(masters: 3, replicas: 1)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, cluster)
        let ids = Array(1...24)
        try await warm(scenario, trove, ids)
        let masters = try cluster.masters()
        let (source, target) = (masters[1], masters[2])
        let range = try #require(try cluster.nodes().first { $0.port == source.port }?.slots.first)
        // redis-cli moves the source's lowest slots first: enough of them to take the first entry it holds.
        let slots = try ids.map { id in (id, Int(try source.command(["CLUSTER", "KEYSLOT", "cl:e:{events:full:\(id)}"]))!) }
        let (moved, slot) = try #require(slots.filter { range.contains($0.1) }.min { $0.1 < $1.1 })
        let load = try await underLoad(scenario, trove, ids: ids) {
            try await Task.detached { try cluster.reshard(slots: slot - range.lowerBound + 1, from: source, to: target) }.value
        }
        #expect(load.sent > 0)
        #expect(load.failed.isEmpty, "no request fails: \(load.failed.prefix(5))")
        #expect(try target.command(["EXISTS", "cl:e:{events:full:\(moved)}"]) == "1", "the entry moved with its slot")
        try await eventually("a hit for the moved entry, from its new master") {
            try await scenario.request(trove, "/api/v1/events/\(moved)").xCache == "HIT"
        }
        let redirects = try await metric(scenario, trove, #"trove_redis_redirects_total{kind="moved"}"#)
            + metric(scenario, trove, #"trove_redis_redirects_total{kind="ask"}"#)
        #expect(redirects >= 1, "the redirections were followed, and counted")
        await scenario.stop(trove)
    }
}
