import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveRules
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Trove in front of a Redis watched by real sentinels (`redis-sentinel://`): it uses the master they name,
/// follows a failover (asked for, or after the master died) without a restart and without failing a request,
/// asks the next sentinel when one is down, and refuses a "master" that says it is a replica.
@Suite(.serialized) struct SentinelTests {
    private func trove(_ scenario: Scenario, _ sentinels: RedisSentinels, order: [Int]? = nil, tls: String = "") async throws -> TroveApplication {
        let store = "store: {redis: \"\(sentinels.url(order: order))\", namespace: ha, command_timeout: 300ms, connect_timeout: 500ms\(tls)}"
        let rules = try RulesLoader.parse(scenario.yaml(settings: store), file: "sentinel.yaml", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        return try await scenario.trove(rules)
    }

    /// `/readyz` says Trove is connected to the master on `port`.
    private func connected(_ scenario: Scenario, _ trove: TroveApplication, to port: Int, scheme: String = "redis") async throws -> Bool {
        let ready = try await scenario.admin(trove, "/readyz")
        return ready.status == 200 && ready.body.contains("connected to \(scheme)://127.0.0.1:\(port)/0")
            && ready.body.contains("master 'mymaster' at 127.0.0.1:\(port)")
    }

    @Test func hitsAndPurgesGoToTheMasterTheSentinelsName() async throws {
        let sentinels = try RedisSentinels()
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels)
        let master = try sentinels.master()
        try await eventually("connected to the master") { try await connected(scenario, trove, to: master.port) }
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        try await eventually("a hit") { try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT" }
        #expect(try master.command(["EXISTS", "ha:e:{events:full:1}"]) == "1")
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:1"]}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        await scenario.stop(trove)
    }

    @Test func aFailoverIsFollowedWithoutARestart() async throws {
        let sentinels = try RedisSentinels()
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels)
        let old = try sentinels.master()
        try await eventually("connected to the master") { try await connected(scenario, trove, to: old.port) }
        _ = try await scenario.request(trove, "/api/v1/events/2")
        try await eventually("a hit") { try await scenario.request(trove, "/api/v1/events/2").xCache == "HIT" }

        try sentinels.failover()
        let new = try sentinels.master()
        #expect(new.port != old.port)
        try await eventually("every connection follows the new master", timeout: .seconds(15)) {
            let answer = try await scenario.request(trove, "/api/v1/events/2")
            #expect(answer.status == 200, "no request fails while the master moves")
            return try await connected(scenario, trove, to: new.port)
        }
        // The entry was replicated before the switch: still a hit, now read from the new master.
        try await eventually("a hit from the new master") { try await scenario.request(trove, "/api/v1/events/2").xCache == "HIT" }
        // Purges reach the new master, and new entries are written there.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:2"]}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/2").xCache == "MISS")
        try await eventually("stored on the new master") { try new.command(["EXISTS", "ha:e:{events:full:2}"]) == "1" }
        try await eventually("a hit again") { try await scenario.request(trove, "/api/v1/events/2").xCache == "HIT" }
        await scenario.stop(trove)
    }

    /// Replication is asynchronous: a purge the old master acknowledged may never reach the replica that replaces
    /// it. Here the replica is made to lose it on purpose; after the failover Trove applies its recent purges
    /// again before it looks anything up on the new master, so the purged entry is not served.
    @Test func aPurgeTheNewMasterNeverReceivedIsAppliedAgain() async throws {
        let sentinels = try RedisSentinels()
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels)
        let old = try sentinels.master()
        let replica = try sentinels.replica()
        try await eventually("connected to the master") { try await connected(scenario, trove, to: old.port) }
        _ = try await scenario.request(trove, "/api/v1/events/6")
        try await eventually("a hit") { try await scenario.request(trove, "/api/v1/events/6").xCache == "HIT" }
        let counter = "ha:g:{ha}:t:event:6"
        let before = try old.command(["GET", counter])
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:6"]}"#).status == 200)
        let after = try old.command(["GET", counter])
        #expect(after != before)
        try await eventually("the purge reached the replica") { try replica.command(["GET", counter]) == after }
        // The write the replica "never received".
        try replica.command(["CONFIG", "SET", "replica-read-only", "no"])
        if before == "nil" { try replica.command(["DEL", counter]) } else { try replica.command(["SET", counter, before]) }

        try sentinels.failover()
        try await eventually("Trove follows the new master", timeout: .seconds(15)) { try await connected(scenario, trove, to: replica.port) }
        let answer = try await scenario.request(trove, "/api/v1/events/6")
        #expect(answer.xCache == "MISS", "the purged entry is not served from the new master: \(answer.cacheStatus ?? "")")
        #expect(try replica.command(["GET", counter]) != before)
        await scenario.stop(trove)
    }

    /// One master, one replica, three sentinels (a quorum of one): the master killed while requests keep coming.
    @Test func aMasterThatDiesIsReplacedAndNoRequestFails() async throws {
        let sentinels = try RedisSentinels(sentinels: 3, downAfter: .milliseconds(500))
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels)
        let old = try sentinels.master()
        try await eventually("connected to the master") { try await connected(scenario, trove, to: old.port) }
        _ = try await scenario.request(trove, "/api/v1/events/3")
        try await eventually("a hit") { try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT" }

        old.kill()
        try await eventually("the sentinel promotes the replica and Trove follows", timeout: .seconds(40)) {
            let answer = try await scenario.request(trove, "/api/v1/events/3")
            #expect(answer.status == 200, "requests go to the origin while there is no master")
            guard let new = try? sentinels.masterPort(), new != old.port else { return false }
            return try await connected(scenario, trove, to: new)
        }
        try await eventually("hits again, from the new master") { try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT" }
        await scenario.stop(trove)
    }

    /// `rediss-sentinel://`: the sentinels and the master speak TLS; the master, named by address, is checked
    /// against `server_name` (its certificate names `localhost` only).
    @Test func sentinelsAndMasterOverTLS() async throws {
        let sentinels = try RedisSentinels(tls: true)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels, tls: ", tls: {ca_file: \(sentinels.path("ca.pem")), server_name: localhost}")
        let master = try sentinels.masterPort()
        #expect(sentinels.serverTLSPorts.contains(master))
        try await eventually("connected to the master over TLS") { try await connected(scenario, trove, to: master, scheme: "rediss") }
        _ = try await scenario.request(trove, "/api/v1/events/7")
        try await eventually("a hit over TLS") { try await scenario.request(trove, "/api/v1/events/7").xCache == "HIT" }
        try sentinels.failover()
        let new = try sentinels.masterPort()
        try await eventually("following the new master over TLS", timeout: .seconds(15)) {
            try await connected(scenario, trove, to: new, scheme: "rediss")
        }
        try await eventually("a hit from the new master") { try await scenario.request(trove, "/api/v1/events/7").xCache == "HIT" }
        await scenario.stop(trove)
    }

    @Test func theNextSentinelIsAskedWhenOneIsDown() async throws {
        let sentinels = try RedisSentinels(sentinels: 2)
        sentinels.killSentinel(0)
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels)
        let master = try sentinels.masterPort()
        try await eventually("connected through the second sentinel") {
            let ready = try await scenario.admin(trove, "/readyz")
            return try await connected(scenario, trove, to: master)
                && ready.body.contains("named by sentinel 127.0.0.1:\(sentinels.sentinelPorts[1])")
        }
        _ = try await scenario.request(trove, "/api/v1/events/4")
        try await eventually("a hit") { try await scenario.request(trove, "/api/v1/events/4").xCache == "HIT" }
        await scenario.stop(trove)
    }

    @Test func aNamedMasterThatIsAReplicaIsRefused() async throws {
        let sentinels = try RedisSentinels()
        let master = try sentinels.master()
        let replica = try sentinels.replica()
        // Demoted behind the sentinel's back: it still names this one for a while (until it finds out).
        try master.command(["REPLICAOF", "127.0.0.1", String(replica.port)])
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, sentinels)
        try await eventually("readyz says why") {
            let ready = try await scenario.admin(trove, "/readyz")
            return ready.body.contains("Redis at 127.0.0.1:\(master.port) is a replica, not the master")
                && ready.body.contains(#""status" : "degraded""#)
        }
        let answer = try await scenario.request(trove, "/api/v1/events/5")
        #expect(answer.status == 200)
        #expect(answer.cacheStatus?.contains("detail=STORE-UNAVAILABLE") == true, "\(answer.cacheStatus ?? "")")
        await scenario.stop(trove)
    }
}
