import TroveHTTP
import Logging
import NIOCore
import NIOPosix
import Testing
import TroveCore
import TroveFixtures
import TroveTestSupport
@testable import TroveRedis

/// A fetch lock whose release could not be sent (its master died under it) is released on the master promoted in
/// its place as soon as the connection reaches it, rather than left to its TTL for every other instance to wait out.
@Suite(.serialized) struct UnsentReleaseTests {
    @Test func aReleaseLostToAFailoverIsSentToTheNewMaster() async throws {
        let sentinels = try RedisSentinels(downAfter: .milliseconds(500))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let nodes = sentinels.sentinelPorts.map { ServerAddress(host: "127.0.0.1", port: $0) }
        let settings = RedisConnectionSettings(host: "127.0.0.1", port: nodes[0].port, connectTimeout: .seconds(1),
            commandTimeout: .milliseconds(500), sentinel: RedisSentinelSettings(sentinels: nodes, master: sentinels.name))
        let monitor = try await loop.submit { SentinelMonitor(settings: settings, eventLoop: loop, logger: Logger(label: "test")) }.get()
        let factory = RedisStoreFactory(settings: settings, monitor: monitor, namespace: "ul", logger: Logger(label: "test"))
        let (store, locks) = try await loop.submit {
            let made = factory.make(on: loop)
            return (NIOLoopBound(made.store, eventLoop: loop), NIOLoopBound(made.fetchLocks, eventLoop: loop))
        }.get()
        try await eventually("connected to the master") { try await loop.submit { store.value.health.ready }.get() }

        let locked = loop.makePromise(of: FetchLock.self)
        loop.execute { locks.value.lockFetch("k", ttl: 60_000) { locked.completeWith($0.mapError { $0 as any Error }) } }
        let lock = try await locked.futureResult.get()
        #expect(lock != .heldElsewhere)
        let old = try sentinels.master()
        let replica = try sentinels.replica()
        try await eventually("the replica has the lock") { try replica.command(["EXISTS", "ul:l:k"]) == "1" }

        old.kill()
        // The fetch ends while there is no master (checked on the loop, in the same turn): the release cannot be
        // sent, and is kept.
        try await eventually("the release is made while the connection has no master") {
            let kept = try await loop.submit { () -> Int? in
                guard !store.value.health.ready else { return nil }
                locks.value.unlockFetch("k", lock: lock, notice: .stored)
                return locks.value.unsentCount
            }.get()
            guard let kept else { return false }
            #expect(kept == 1)
            return true
        }

        try await eventually("the lock is released on the promoted replica, long before its TTL", timeout: .seconds(30)) {
            try replica.command(["EXISTS", "ul:l:k"]) == "0"
        }
        #expect(try await loop.submit { locks.value.unsentCount }.get() == 0)
        try await loop.submit { store.value.shutdown() }.get()
        try await monitor.stop()
        try await group.shutdownGracefully()
    }

    @Test func releasesKeptAreBounded() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let count = try await loop.submit {
            // A connection never started: every send fails at once.
            let connection = RedisConnection(eventLoop: loop, settings: RedisConnectionSettings(host: "127.0.0.1", port: 1,
                connectTimeout: .seconds(1), commandTimeout: .seconds(1)), logger: Logger(label: "test"))
            let locks = RedisFetchLocks(connection: connection, keys: RedisKeys(namespace: "ul"))
            for index in 0...RedisFetchLocks.unsentLimit {
                locks.unlockFetch("k\(index)", lock: .acquired(token: "t\(index)"), notice: .released)
            }
            return locks.unsentCount
        }.get()
        #expect(count == RedisFetchLocks.unsentLimit, "the oldest is dropped past the bound")
        try await group.shutdownGracefully()
    }
}
