import TroveHTTP
import Foundation
import Synchronization
import Logging
import NIOCore
import NIOPosix
import Testing
import TroveCore
import TroveFixtures
import TroveTestSupport
@testable import TroveRedis

/// Commands routed through a real Redis Cluster (three masters the fixture sets up): the slot map, every command
/// at the master of its key, `MOVED` after a slot changes master, `ASK` during a migration, and a master that is
/// down costing only its own slots.
@Suite(.serialized) final class RedisClusterTests: Sendable {
    let cluster: RedisClusterServers
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init() throws {
        cluster = try RedisClusterServers(masters: 3)
    }

    deinit {
        try? group.syncShutdownGracefully()
    }

    /// A topology and one loop's connection, seeded with the first node only.
    private func client() async throws -> (RedisClusterTopology, NIOLoopBound<RedisClusterConnection>) {
        let settings = RedisConnectionSettings(host: "127.0.0.1", port: cluster.servers[0].port, connectTimeout: .seconds(1),
            commandTimeout: .milliseconds(500))
        let loop = group.next()
        let seeds = [ServerAddress(host: "127.0.0.1", port: cluster.servers[0].port)]
        return try await loop.submit {
            let topology = RedisClusterTopology(seeds: seeds, settings: settings, eventLoop: loop, logger: Logger(label: "test"))
            let connection = RedisClusterConnection(eventLoop: loop, settings: settings, topology: topology, logger: Logger(label: "test"))
            connection.start()
            return (topology, NIOLoopBound(connection, eventLoop: loop))
        }.get()
    }

    private func ready(_ connection: NIOLoopBound<RedisClusterConnection>) async throws {
        try await eventually("connected to every master") {
            try await connection.eventLoop.submit { connection.value.isReady }.get()
        }
    }

    private func send(_ connection: NIOLoopBound<RedisClusterConnection>, _ commands: [[RESPArgument]]) async throws -> [RESPValue] {
        let promise = connection.eventLoop.makePromise(of: [RESPValue].self)
        connection.eventLoop.execute {
            connection.value.send(commands) { result in
                switch result {
                case .success(let replies): promise.succeed(replies)
                case .failure(let error): promise.fail(error)
                }
            }
        }
        return try await promise.futureResult.get()
    }

    private func text(_ reply: RESPValue) -> String? {
        switch reply {
        case .bulkString(let buffer): String(buffer: buffer)
        case .simpleString(let text): text
        case .error(let text): "ERR " + text
        default: nil
        }
    }

    @Test func theMapIsReadAndEveryCommandGoesToItsKeysMaster() async throws {
        let (topology, connection) = try await client()
        try await ready(connection)
        let map = topology.map
        #expect(map.nodes.count == 3)
        for slot in stride(from: 0, to: RedisSlot.count, by: 97) {
            #expect(map.node(for: slot)?.port == cluster.server(for: slot).port)
        }
        let keys = (0..<60).map { "key-\($0)" }
        let set = try await send(connection, keys.map { ["SET", .string($0), .string("value of \($0)")] })
        #expect(set.allSatisfy { text($0) == "OK" })
        for key in keys {
            #expect(try cluster.server(for: RedisSlot.of(key)).command(["GET", key]) == "value of \(key)", "\(key) is on its slot's master")
        }
        #expect(Set(keys.map { cluster.server(for: RedisSlot.of($0)).port }).count == 3, "the keys spread over every master")
        let got = try await send(connection, keys.map { ["GET", .string($0)] })
        #expect(got.map(text) == keys.map { "value of \($0)" }, "answered in the batch's order")
        let stop = connection.eventLoop.submit { connection.value.stop() }
        try await stop.get()
        try await topology.stop()
    }

    @Test func movedIsFollowedAndLearned() async throws {
        let (topology, connection) = try await client()
        try await ready(connection)
        let key = "moving-key"
        let slot = RedisSlot.of(key)
        let source = cluster.server(for: slot)
        let target = cluster.servers.first { $0 !== source }!
        #expect(text(try await send(connection, [["SET", .string(key), "before the move"]])[0]) == "OK")
        try await cluster.move(slot: slot, from: source, to: target)
        // The connection's map still names the source: it answers MOVED, and the command follows it.
        #expect(topology.map.node(for: slot)?.port == source.port)
        try await eventually("the command follows MOVED to a ready connection") {
            (try? await self.send(connection, [["GET", .string(key)]])).map { self.text($0[0]) } == "before the move"
        }
        #expect(topology.map.node(for: slot)?.port == target.port)
        try await connection.eventLoop.submit { connection.value.stop() }.get()
        try await topology.stop()
    }

    @Test func askIsFollowedDuringAMigration() async throws {
        let (topology, connection) = try await client()
        try await ready(connection)
        let moved = "{migrating}moved"
        let staying = "{migrating}staying"
        let slot = RedisSlot.of(moved)
        let source = cluster.server(for: slot)
        let target = cluster.servers.first { $0 !== source }!
        _ = try await send(connection, [["SET", .string(moved), "m"], ["SET", .string(staying), "s"]])
        try await cluster.move(slot: slot, from: source, to: target) {
            try self.cluster.migrate(key: moved, from: source, to: target)
            #expect(try source.command(["GET", moved]).hasPrefix("ASK "), "the source now answers ASK for it")
            // Both keys are read through the source: the moved one with ASKING at the target, the other where it is.
            let replies = try await self.send(connection, [["GET", .string(moved)], ["GET", .string(staying)]])
            #expect(replies.map(self.text) == ["m", "s"])
            #expect(topology.map.node(for: slot)?.port == source.port, "ASK does not move the slot")
        }
        try await connection.eventLoop.submit { connection.value.stop() }.get()
        try await topology.stop()
    }

    @Test func aMasterThatIsDownCostsOnlyItsOwnSlots() async throws {
        let (topology, connection) = try await client()
        try await ready(connection)
        let down = cluster.servers[2]
        let lost = (0..<200).map { "k\($0)" }.first { cluster.server(for: RedisSlot.of($0)) === down }!
        let kept = (0..<200).map { "k\($0)" }.first { cluster.server(for: RedisSlot.of($0)) !== down }!
        down.kill()
        try await eventually("the dead master's keys fail, the others are answered") {
            let failed = (try? await self.send(connection, [["SET", .string(lost), "x"]])) == nil
            let answered = (try? await self.send(connection, [["SET", .string(kept), "y"]])).map { self.text($0[0]) } == "OK"
            return failed && answered
        }
        let status = try await connection.eventLoop.submit { connection.value.status }.get()
        #expect(status.contains("127.0.0.1:\(down.port): not connected"), "\(status)")
        try await connection.eventLoop.submit { connection.value.stop() }.get()
        try await topology.stop()
    }

    /// Fetch notices travel as sharded messages: the subscriber listens (`SSUBSCRIBE`) at the master of the
    /// channel's slot and nowhere else, hears what a fetch lock's release announces there (`SPUBLISH`), and
    /// follows the slot when it is moved to another master.
    @Test func fetchNoticesAreShardedMessagesThatFollowTheirSlot() async throws {
        let (topology, connection) = try await client()
        try await ready(connection)
        let loop = connection.eventLoop
        let settings = RedisConnectionSettings(host: "127.0.0.1", port: cluster.servers[0].port, connectTimeout: .seconds(1),
            commandTimeout: .milliseconds(500))
        let subscriber = try await loop.submit {
            RedisSubscriber(settings: settings, topology: topology, namespace: "ns", eventLoop: loop, logger: Logger(label: "test"))
        }.get()
        let channel = "ns:fetched"
        let slot = RedisSlot.of(channel)
        let owner = cluster.server(for: slot)
        try await eventually("subscribed at the channel's master") { try owner.command(["PUBSUB", "SHARDNUMSUB", channel]) == "\(channel) 1" }
        for server in cluster.servers {
            #expect(try server.command(["PUBSUB", "NUMSUB", channel]) == "\(channel) 0", "no plain subscription anywhere")
        }
        let heard = Mutex<[String]>([])
        for key in ["k1", "k2"] {
            _ = subscriber.watch(key) { notice in heard.withLock { $0.append("\(key) \(notice.rawValue)") } }
        }
        let locks = try await loop.submit { NIOLoopBound(RedisFetchLocks(connection: connection.value, keys: RedisKeys(namespace: "ns")), eventLoop: loop) }.get()
        func fetchEnds(_ key: String, _ notice: FetchNotice) {
            loop.execute {
                let locks = locks.value
                locks.lockFetch(key, ttl: 5000) { result in
                    if case .success(let lock) = result { locks.unlockFetch(key, lock: lock, notice: notice) }
                }
            }
        }
        fetchEnds("k1", .stored)
        try await eventually("the notice is heard") { heard.withLock { $0 } == ["k1 stored"] }
        #expect(try cluster.server(forKey: "ns:l:k1").command(["EXISTS", "ns:l:k1"]) == "0", "the lock was released")

        let target = cluster.servers.first { $0 !== owner }!
        try await cluster.move(slot: slot, from: owner, to: target)
        try await eventually("subscribed again where the slot is now") {
            try target.command(["PUBSUB", "SHARDNUMSUB", channel]) == "\(channel) 1"
        }
        fetchEnds("k2", .released)
        try await eventually("notices are heard from the new master") { heard.withLock { $0 } == ["k1 stored", "k2 released"] }
        try await subscriber.stop()
        try await topology.stop()
    }
}

/// What a cluster's error replies ask for, and which key a command is routed by.
@Suite struct RedisClusterRedirectTests {
    @Test func redirectsAreRead() {
        let node = ServerAddress(host: "10.0.0.1", port: 7000)
        typealias Redirect = RedisClusterConnection.Redirect
        #expect(Redirect("MOVED 3999 127.0.0.1:6381", from: node) == .moved(slot: 3999, to: ServerAddress(host: "127.0.0.1", port: 6381)))
        #expect(Redirect("MOVED 3999 :6381", from: node) == .moved(slot: 3999, to: ServerAddress(host: "10.0.0.1", port: 6381)))
        #expect(Redirect("ASK 12 [::1]:7001", from: node) == .ask(to: ServerAddress(host: "::1", port: 7001)))
        #expect(Redirect("TRYAGAIN Multiple keys request during rehashing of slot", from: node) == .tryAgain)
        #expect(Redirect("CLUSTERDOWN The cluster is down", from: node) == .clusterDown)
        #expect(Redirect("ERR unknown command", from: node) == nil)
        #expect(Redirect("MOVED 99999 127.0.0.1:6381", from: node) == nil)
        #expect(Redirect("MOVED 1 127.0.0.1:0", from: node) == nil)
        #expect(Redirect("MOVED x", from: node) == nil)
        #expect(RedisClusterConnection.firstKey(of: ["EVAL", "return 1", "0"]) == nil)
        #expect(RedisClusterConnection.slot(of: ["EVAL", "s", "2", "{t}a", "{t}b"]) == RedisSlot.of("t"))
        #expect(RedisClusterConnection.slot(of: ["MGET", "{t}a", "{t}b"]) == RedisSlot.of("t"))
    }

}
