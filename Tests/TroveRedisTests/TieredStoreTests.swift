import TroveHTTP
import Logging
import NIOCore
import NIOPosix
import Testing
import TroveCore
import TroveFixtures
import TroveTestSupport
@testable import TroveRedis

/// Redis with an in-process tier per instance (`strict`): an entry is served from memory only while the counters
/// in Redis still have the values it recorded, so a purge answered through one instance is never followed by a
/// stale serve on another.
@Suite(.serialized) struct TieredStoreTests {
    private let loop: any EventLoop
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init() {
        loop = group.next()
    }

    /// Two instances: each its own factory (its own purge queue and connection) and its own tier, on one Redis.
    private func instances(_ redis: RedisServer, localBytes: Int = 1 << 20) async throws -> [NIOLoopBound<TieredStore>] {
        let settings = RedisConnectionSettings(host: "127.0.0.1", port: redis.port, connectTimeout: .seconds(1), commandTimeout: .seconds(1))
        let factories = (0..<2).map { _ in RedisStoreFactory(settings: settings, namespace: "tier", logger: Logger(label: "test")) }
        let loop = self.loop
        let stores = try await loop.submit {
            factories.map { NIOLoopBound(TieredStore(remote: $0.makeStore(on: loop), local: InMemoryStore(capacity: localBytes)), eventLoop: loop) }
        }.get()
        try await eventually("both instances are connected") {
            try await loop.submit { stores.allSatisfy { $0.value.health.ready } }.get()
        }
        return stores
    }

    private func lookup(_ store: NIOLoopBound<TieredStore>, _ address: EntryAddress) async throws -> LookupOutcome<ByteBuffer> {
        let promise = loop.makePromise(of: LookupOutcome<ByteBuffer>.self)
        loop.execute { store.value.lookup(address) { promise.succeed($0) } }
        return try await promise.futureResult.get()
    }

    private func store(_ store: NIOLoopBound<TieredStore>, _ address: EntryAddress, generations: [Int64], body: String) async throws {
        let now = SystemClock().nowMilliseconds()
        let meta = EntryMeta(status: 200, headers: [], storedAt: now, freshUntil: now + 600_000, staleUntil: now + 600_000,
            route: address.route, tags: address.tags, generations: generations, bodyLength: body.utf8.count)
        let promise = loop.makePromise(of: Result<Void, StoreError>.self)
        loop.execute {
            store.value.store(StoreWrite(address: address, meta: meta, body: ByteBuffer(string: body), expireAfter: 700_000)) { promise.succeed($0) }
        }
        guard case .success = try await promise.futureResult.get() else { throw TestSupportError("the store failed") }
    }

    private func purge(_ store: NIOLoopBound<TieredStore>, _ counters: [PurgeCounter]) async throws {
        let promise = loop.makePromise(of: Result<PurgeReport, StoreError>.self)
        loop.execute { store.value.purge(PurgeRequest(counters: counters, counterLifetime: 3_600_000)) { promise.succeed($0) } }
        guard case .success = try await promise.futureResult.get() else { throw TestSupportError("the purge failed") }
    }

    /// The entry, when it may be served: found, and every counter it recorded unchanged.
    private func servable(_ outcome: LookupOutcome<ByteBuffer>, _ address: EntryAddress) -> String? {
        guard case .found(let meta, let body, let generations) = outcome, meta.change(for: address, generations: generations) == .none else {
            return nil
        }
        return String(buffer: body)
    }

    @Test func aPurgeThroughOneInstanceIsNeverFollowedByAStaleServeOnTheOther() async throws {
        let redis = try RedisServer()
        let stores = try await instances(redis)
        let (first, second) = (stores[0], stores[1])
        let address = EntryAddress(key: "events:full:1", route: "event", tags: ["event:1", "events"])
        let purges: [[PurgeCounter]] = [[.tag("event:1")], [.key("events:full:1")], [.route("event")], [.everything], [.tag("events")]]
        var servedFromTier = 0
        for trial in 0..<10_000 {
            // The second instance fetches and stores (the entry goes into its tier too), then hits it.
            let generations: [Int64]
            switch try await lookup(second, address) {
            case .notFound(let current): generations = current
            case .found(let meta, _, let current) where meta.change(for: address, generations: current) != .none: generations = current
            default:
                Issue.record("trial \(trial): the purged entry was found valid before its store")
                return
            }
            try await store(second, address, generations: generations, body: "v\(trial)")
            #expect(servable(try await lookup(second, address), address) == "v\(trial)")
            if try await loop.submit({ second.value.local.peek(address.key) != nil }).get() { servedFromTier += 1 }
            // A purge answered through the first instance...
            try await purge(first, purges[trial % purges.count])
            // ...and the second never serves the entry again.
            let after = try await lookup(second, address)
            if let served = servable(after, address) {
                Issue.record("trial \(trial): served '\(served)' after the purge was answered")
                return
            }
            if try await loop.submit({ second.value.local.peek(address.key) != nil }).get() {
                Issue.record("trial \(trial): the purged copy was kept in the tier")
                return
            }
        }
        #expect(servedFromTier == 10_000, "every hit was served from the in-process tier")
        try await loop.submit { stores.forEach { $0.value.shutdown() } }.get()
        try await group.shutdownGracefully()
    }

    /// A copy in one instance's tier that a purge made obsolete gives way to the newer answer another instance
    /// stored in Redis since: it is a hit, not a miss (the tier never answers less than Redis alone would).
    @Test func aPurgedCopyGivesWayToTheNewerAnswerInRedis() async throws {
        let redis = try RedisServer()
        let stores = try await instances(redis)
        let address = EntryAddress(key: "events:full:2", route: "event", tags: ["event:2"])
        guard case .notFound(let before) = try await lookup(stores[0], address) else { Issue.record("new key found"); return }
        try await store(stores[0], address, generations: before, body: "old")
        #expect(servable(try await lookup(stores[1], address), address) == "old", "read from Redis, kept in the tier")
        try await purge(stores[0], [.tag("event:2")])
        guard case .found(_, _, let after) = try await lookup(stores[0], address) else { Issue.record("the purged entry is gone"); return }
        try await store(stores[0], address, generations: after, body: "new")
        #expect(servable(try await lookup(stores[1], address), address) == "new")
        #expect(try await loop.submit { stores[1].value.local.peek(address.key).map { String(buffer: $0.body) } }.get() == "new")
        try await loop.submit { stores.forEach { $0.value.shutdown() } }.get()
        try await group.shutdownGracefully()
    }

    @Test func theTierStaysWithinItsSize() async throws {
        let redis = try RedisServer()
        let size = 64 << 10
        let stores = try await instances(redis, localBytes: size)
        let body = String(repeating: "x", count: 2000)
        for index in 0..<200 {
            let address = EntryAddress(key: "k\(index)", route: "r", tags: [])
            guard case .notFound(let generations) = try await lookup(stores[0], address) else { Issue.record("new key found"); return }
            try await store(stores[0], address, generations: generations, body: body)
            #expect(try await loop.submit { stores[0].value.local.usage.bytes }.get() <= size)
        }
        // Everything is still in Redis: a key the tier let go is read from there (and kept again).
        let early = EntryAddress(key: "k0", route: "r", tags: [])
        #expect(servable(try await lookup(stores[1], early), early) == body)
        try await loop.submit { stores.forEach { $0.value.shutdown() } }.get()
        try await group.shutdownGracefully()
    }
}
