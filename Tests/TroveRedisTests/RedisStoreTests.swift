import TroveHTTP
import Logging
import NIOCore
import NIOPosix
import Testing
import TroveCore
import TroveFixtures
import TroveTestSupport
@testable import TroveRedis

/// The Redis store against a real redis-server on a free port.
@Suite(.serialized) final class RedisStoreTests: Sendable {
    let redis: RedisServer
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    init() throws {
        redis = try RedisServer()
    }

    deinit {
        try? group.syncShutdownGracefully()
    }

    private func factory(
        _ redis: RedisServer? = nil, password: String? = nil, database: Int = 0, commandTimeout: Duration = .milliseconds(300),
        maxPending: Int = 4096, namespace: String = "test"
    ) -> RedisStoreFactory {
        RedisStoreFactory(
            settings: RedisConnectionSettings(host: "127.0.0.1", port: (redis ?? self.redis).port, database: database,
                password: password, connectTimeout: .seconds(1), commandTimeout: commandTimeout, maxPending: maxPending),
            namespace: namespace, logger: Logger(label: "test"))
    }

    /// A store on one of the group's loops, connected.
    private func store(_ factory: RedisStoreFactory, loop index: Int = 0) async throws -> Bound {
        let loop = Array(group.makeIterator())[index]
        let bound = try await loop.submit { NIOLoopBound(factory.makeStore(on: loop), eventLoop: loop) }.get()
        let store = Bound(loop: loop, store: bound)
        try await eventually("the store is connected") { try await store.health().ready }
        return store
    }

    /// A loop's store, driven from async tests.
    struct Bound: Sendable {
        let loop: any EventLoop
        let store: NIOLoopBound<RedisStore>

        private func call<T: Sendable>(_ body: @escaping @Sendable (RedisStore, EventLoopPromise<T>) -> Void) async throws -> T {
            let promise = loop.makePromise(of: T.self)
            loop.execute { body(store.value, promise) }
            return try await promise.futureResult.get()
        }

        func health() async throws -> StoreHealth {
            try await call { store, promise in promise.succeed(store.health) }
        }

        func lookup(_ address: EntryAddress) async throws -> LookupOutcome<ByteBuffer> {
            try await call { store, promise in store.lookup(address) { promise.succeed($0) } }
        }

        func store(_ address: EntryAddress, generations: [Int64], body: String, ttl: Int64 = 60_000) async throws -> Result<Void, StoreError> {
            try await call { store, promise in
                let meta = EntryMeta(status: 200, headers: [Header("Content-Type", "text/plain")], storedAt: 1, freshUntil: 2,
                    staleUntil: 2, route: address.route, tags: address.tags, generations: generations,
                    bodyLength: body.utf8.count)
                store.store(StoreWrite(address: address, meta: meta, body: ByteBuffer(string: body), expireAfter: ttl)) {
                    promise.succeed($0)
                }
            }
        }

        func store(_ address: EntryAddress, body: ByteBuffer, meta: EntryMeta? = nil) async throws -> Result<Void, StoreError> {
            try await call { store, promise in
                let meta = meta ?? EntryMeta(status: 200, headers: [], storedAt: 1, freshUntil: 2, staleUntil: 2, route: address.route,
                    tags: address.tags, generations: [0, 0, 0, 0, 0], bodyLength: body.readableBytes)
                store.store(StoreWrite(address: address, meta: meta, body: body, expireAfter: 60_000)) { promise.succeed($0) }
            }
        }

        func readChunk(_ key: String, _ chunks: EntryChunks, _ index: Int) async throws -> Result<ByteBuffer?, StoreError> {
            try await call { store, promise in store.readChunk(key, chunks, index: index) { promise.succeed($0) } }
        }

        func purge(_ counters: [PurgeCounter], softMark: Int64? = nil) async throws -> Result<PurgeReport, StoreError> {
            try await call { store, promise in
                store.purge(PurgeRequest(counters: counters, counterLifetime: 600_000, softMark: softMark)) { promise.succeed($0) }
            }
        }

        func inspect(_ key: String) async throws -> Result<EntryInspection?, StoreError> {
            try await call { store, promise in store.inspect(key: key) { promise.succeed($0) } }
        }

        func shutdown() async throws {
            try await call { (store: RedisStore, promise: EventLoopPromise<Void>) in
                store.shutdown()
                promise.succeed(())
            }
        }
    }

    let event = EntryAddress(key: "event:42", route: "event", tags: ["events", "event:42"])

    private func generations(_ outcome: LookupOutcome<ByteBuffer>) -> [Int64]? {
        switch outcome {
        case .found(_, _, let generations, _), .notFound(let generations): generations
        case .unavailable: nil
        }
    }

    /// Store, then find: the body comes back intact, with the counters it depends on.
    @Test func storesAndFinds() async throws {
        let store = try await store(factory())
        guard case .notFound(let generations) = try await store.lookup(event) else { Issue.record("expected notFound"); return }
        #expect(generations == [0, 0, 0, 0, 0])
        guard case .success = try await store.store(event, generations: generations, body: "{\"id\": 42}") else {
            Issue.record("the store write failed"); return
        }
        guard case .found(let meta, let body, let current, _) = try await store.lookup(event) else { Issue.record("expected found"); return }
        #expect(String(buffer: body) == "{\"id\": 42}")
        #expect(meta.headers == [Header("Content-Type", "text/plain")])
        #expect(current == generations)
        // The entry lives under the namespace with a Redis TTL.
        #expect(Int(try redis.command(["PTTL", "test:e:{event:42}"])) ?? 0 > 50_000)
        try await store.shutdown()
    }

    /// A body past the chunk size is stored in chunks: a lookup reads the head alone, the chunks give the body
    /// back byte for byte, a purge invalidates the entry as any other, and a chunk that is gone drops the head.
    @Test func largeBodiesAreStoredInChunks() async throws {
        let store = try await store(factory())
        var body = ByteBufferAllocator().buffer(capacity: 3 * RedisStore.chunkSize + 5)
        for index in 0..<(3 * RedisStore.chunkSize + 5) { body.writeInteger(UInt8(truncatingIfNeeded: index * 7)) }
        guard case .success = try await store.store(event, body: body) else { Issue.record("the store write failed"); return }
        guard case .found(let meta, let inline, let generations, _) = try await store.lookup(event), let chunks = meta.chunks else {
            Issue.record("expected a chunked entry"); return
        }
        #expect(inline.readableBytes == 0, "the head comes alone")
        #expect(meta.bodyLength == body.readableBytes)
        #expect(chunks.count(of: meta.bodyLength) == 4)
        var read = ByteBuffer()
        for index in 0..<4 {
            guard case .success(var chunk?) = try await store.readChunk(event.key, chunks, index) else { Issue.record("chunk \(index)"); return }
            read.writeBuffer(&chunk)
        }
        #expect(read == body)
        #expect(Int(try redis.command(["PTTL", "test:c:{\(event.key)}:\(String(chunks.nonce, radix: 16)):0"])) ?? 0 > 60_000, "chunks outlive their head")

        _ = try await store.purge([.tag("events")])
        guard case .found(let purged, _, let now, _) = try await store.lookup(event) else { Issue.record("the head is still there"); return }
        #expect(purged.change(for: event, generations: now) == .purged, "purged like any entry")
        #expect(now != generations)

        _ = try await store.store(event, body: body)
        guard case .found(let second, _, _, _) = try await store.lookup(event), let secondChunks = second.chunks else { return }
        #expect(secondChunks.nonce != chunks.nonce, "a new store writes new chunks")
        _ = try redis.command(["DEL", "test:c:{\(event.key)}:\(String(secondChunks.nonce, radix: 16)):2"])
        guard case .success(nil) = try await store.readChunk(event.key, secondChunks, 2) else { Issue.record("a gone chunk reads nil"); return }
        try await eventually("the head naming a gone chunk is dropped") {
            if case .notFound = try await store.lookup(event) { true } else { false }
        }
        try await store.shutdown()
    }

    /// A chunked store that fails part way (Redis out of memory) never writes the head: no lookup finds a
    /// half-written entry.
    @Test func aHalfWrittenChunkedEntryIsNeverFound() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let store = try await store(factory(redis))
        let info = try redis.command(["INFO", "memory"])
        let usedMemory = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
            .flatMap { Int($0.dropFirst("used_memory:".count).filter(\.isNumber)) } ?? 0
        #expect(usedMemory > 0)
        _ = try redis.command(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        _ = try redis.command(["CONFIG", "SET", "maxmemory", String(usedMemory + 6 * RedisStore.chunkSize)])
        let body = ByteBuffer(repeating: 0x61, count: 12 * RedisStore.chunkSize)
        guard case .failure = try await store.store(event, body: body) else { Issue.record("the store must fail"); return }
        guard case .notFound = try await store.lookup(event) else { Issue.record("no head was written"); return }
        try await store.shutdown()
    }

    /// Purges increase exactly the counters they name, with an expiry; a key purge deletes the entry.
    @Test func purgesIncreaseCounters() async throws {
        let store = try await store(factory())
        _ = try await store.store(event, generations: [0, 0, 0, 0, 0], body: "x")
        #expect(try await store.purge([.tag("event:42")]) == .success(PurgeReport(tags: ["event:42"])))
        let h = Generation.hardStep  // what a hard purge adds
        #expect(generations(try await store.lookup(event)) == [0, 0, 0, 0, h])
        #expect(Int(try redis.command(["PTTL", "test:g:{test}:t:event:42"])) ?? 0 > 500_000)
        _ = try await store.purge([.everything, .route("event")])
        #expect(generations(try await store.lookup(event)) == [h, h, 0, 0, h])
        #expect(try redis.command(["PTTL", "test:g:{test}:all"]) == "-1")
        let report = try await store.purge([.key("event:42"), .key("event:7")])
        #expect(report == .success(PurgeReport(keys: [.init(key: "event:42", found: true), .init(key: "event:7", found: false)])))
        guard case .notFound(let afterKey) = try await store.lookup(event) else { Issue.record("the key's entry is deleted"); return }
        #expect(afterKey == [h, h, h, 0, h])
        #expect(try redis.command(["EXISTS", "test:e:{event:42}"]) == "0")
        try await store.shutdown()
    }

    /// A soft purge moves a counter's mark exactly as `Generation` says, even past 2^53 where Lua's numbers are not
    /// exact, renews its lifetime, and keeps a soft-purged key's entry (it is served stale while it is refreshed).
    @Test func softPurgesMoveTheMarkAndKeepTheEntry() async throws {
        let store = try await store(factory())
        _ = try await store.store(event, generations: [0, 0, 0, 0, 0], body: "x")
        let mark: Int64 = 30_000_000
        let report = try await store.purge([.tag("events"), .key("event:42")], softMark: mark)
        #expect(report == .success(PurgeReport(tags: ["events"], keys: [.init(key: "event:42", found: true)])))
        guard case .found(_, _, let current, _) = try await store.lookup(event) else { Issue.record("a soft purge keeps the entry"); return }
        #expect(current == [0, 0, mark, mark, 0])
        #expect(Int(try redis.command(["PTTL", "test:g:{test}:t:events"])) ?? 0 > 500_000)
        // Twice with one mark: one past it, never the same value.
        _ = try await store.purge([.tag("events")], softMark: mark)
        #expect(generations(try await store.lookup(event)) == [0, 0, mark, mark + 1, 0])
        // A counter past 2^53 (many hard purges): its low bits are read exactly.
        let big = (Int64(1) << 53) + 3 * Generation.hardStep + 17
        try redis.command(["SET", "test:g:{test}:t:event:42", String(big)])
        _ = try await store.purge([.tag("event:42")], softMark: mark)
        #expect(try redis.command(["GET", "test:g:{test}:t:event:42"]) == String(Generation.afterSoftPurge(big, mark: mark)))
        #expect(Generation.afterSoftPurge(big, mark: mark) == big - 17 + mark)
        // Soft counters of one slice go in one script call, each with its own lifetime: `everything` keeps none.
        _ = try await store.purge([.everything, .route("event")], softMark: mark)
        #expect(generations(try await store.lookup(event))?.prefix(2) == [mark, mark])
        #expect(try redis.command(["PTTL", "test:g:{test}:all"]) == "-1")
        #expect(Int(try redis.command(["PTTL", "test:g:{test}:r:event"])) ?? 0 > 500_000)
        try await store.shutdown()
    }

    /// Tags from the origin, on Redis: a tag purge stamps the tag with the tag-purge sequence before its counter
    /// moves; an answer whose fetch began before a purge of one of its tags is not stored; a hit reads its origin
    /// tags' counters, so their purge (from another instance) invalidates it.
    @Test func originTagsAreRecordedRaceFree() async throws {
        let one = try await store(factory(), loop: 0)
        let other = try await store(factory(), loop: 1)
        let list = EntryAddress(key: "products", route: "products", tags: ["lists"], learnsTags: true)
        func meta(_ tags: [String], _ generations: [Int64]) -> EntryMeta {
            EntryMeta(status: 200, headers: [], storedAt: 1, freshUntil: 2, staleUntil: 2, route: "products", tags: ["lists"],
                originTags: tags, generations: generations, bodyLength: 1)
        }
        guard case .notFound(let began) = try await one.lookup(list) else { Issue.record("expected notFound"); return }
        #expect(began == [0, 0, 0, 0, 0])
        _ = try await other.purge([.tag("p-1"), .tag("x")])
        #expect(try redis.command(["GET", "test:g:{test}:seq"]) == "1")
        #expect(try redis.command(["GET", "test:g:{test}:tp:p-1"]) == "1")
        #expect(Int(try redis.command(["PTTL", "test:g:{test}:tp:p-1"])) ?? 0 > 500_000)
        let raced = try await one.store(list, body: ByteBuffer(string: "x"), meta: meta(["p-1", "c-2"], began))
        guard case .failure(let error) = raced, error.isPurgedWhileFetched else { Issue.record("not stored: \(raced)"); return }
        #expect(try redis.command(["EXISTS", "test:e:{products}"]) == "0")
        guard case .notFound(let after) = try await one.lookup(list) else { Issue.record("expected notFound"); return }
        #expect(after[4] == 1)
        guard case .success = try await one.store(list, body: ByteBuffer(string: "x"), meta: meta(["p-1", "c-2"], after)) else {
            Issue.record("a fetch that began after the purge is stored"); return
        }
        guard case .found(let found, _, let current, _) = try await other.lookup(list) else { Issue.record("expected found"); return }
        #expect(current == [0, 0, 0, 0, 1, Generation.hardStep, 0])
        #expect(found.change(for: list, generations: current) == Generation.Change.none)
        _ = try await other.purge([.tag("c-2")])
        guard case .found(let purged, _, let now, _) = try await one.lookup(list) else { Issue.record("expected found"); return }
        #expect(purged.change(for: list, generations: now) == .purged)
        #expect(try await one.inspect("products").get()?.valid == false)
        try await one.shutdown()
        try await other.shutdown()
    }

    /// The fetch locks and delivery claims on each loop's connection: one instance (loop) holds a key's lock, the
    /// others find it held until it is released; a delivery is claimed once across them.
    @Test func fetchLocksAndDeliveryClaimsAreShared() async throws {
        let factory = factory()
        let loops = Array(group.makeIterator())
        let made = try await loops[0].submit { NIOLoopBound(factory.make(on: loops[0]), eventLoop: loops[0]) }.get()
        let other = try await loops[1].submit { NIOLoopBound(factory.make(on: loops[1]), eventLoop: loops[1]) }.get()
        try await eventually("connected") {
            let first = try await loops[0].submit { made.value.store.health.ready }.get()
            let second = try await loops[1].submit { other.value.store.health.ready }.get()
            return first && second
        }
        func lock(_ bound: NIOLoopBound<(store: RedisStore, fetchLocks: RedisFetchLocks, deliveryClaims: RedisDeliveryClaims)>, on loop: any EventLoop)
            async throws -> FetchLock
        {
            let promise = loop.makePromise(of: FetchLock.self)
            loop.execute { bound.value.fetchLocks.lockFetch("k", ttl: 10_000) { promise.completeWith($0.mapError { $0 as any Error }) } }
            return try await promise.futureResult.get()
        }
        func claim(_ bound: NIOLoopBound<(store: RedisStore, fetchLocks: RedisFetchLocks, deliveryClaims: RedisDeliveryClaims)>, on loop: any EventLoop)
            async throws -> Bool
        {
            let promise = loop.makePromise(of: Bool.self)
            loop.execute { bound.value.deliveryClaims.claimOnce("delivery-1", ttl: 60_000) { promise.completeWith($0.mapError { $0 as any Error }) } }
            return try await promise.futureResult.get()
        }
        let held = try await lock(made, on: loops[0])
        guard case .acquired = held else { Issue.record("the first lock is taken"); return }
        #expect(try await lock(other, on: loops[1]) == .heldElsewhere)
        #expect(Int(try redis.command(["PTTL", "test:l:k"])) ?? 0 > 5_000)
        try await loops[0].submit { made.value.fetchLocks.unlockFetch("k", lock: held, notice: .stored) }.get()
        try await eventually("released") { try redis.command(["EXISTS", "test:l:k"]) == "0" }
        #expect(try await lock(other, on: loops[1]) != .heldElsewhere)
        #expect(try await claim(made, on: loops[0]) == true)
        #expect(try await claim(other, on: loops[1]) == false)
        try await loops[0].submit { made.value.store.shutdown() }.get()
        try await loops[1].submit { other.value.store.shutdown() }.get()
    }

    /// Two stores (two loops, or two Trove instances) on one Redis share entries and purges.
    @Test func storesShareEntriesAndPurges() async throws {
        let one = try await store(factory(), loop: 0)
        let other = try await store(factory(), loop: 1)
        _ = try await one.store(event, generations: [0, 0, 0, 0, 0], body: "shared")
        guard case .found(_, let body, _, _) = try await other.lookup(event) else { Issue.record("expected found"); return }
        #expect(String(buffer: body) == "shared")
        _ = try await other.purge([.tag("events")])
        #expect(generations(try await one.lookup(event)) == [0, 0, 0, Generation.hardStep, 0])
        try await one.shutdown()
        try await other.shutdown()
    }

    /// The admin view of an entry says whether a purge invalidated it.
    @Test func inspection() async throws {
        let store = try await store(factory())
        _ = try await store.store(event, generations: [0, 0, 0, 0, 0], body: "x")
        guard case .success(let before?) = try await store.inspect("event:42") else { Issue.record("expected an entry"); return }
        #expect(before.valid)
        _ = try await store.purge([.route("event")])
        guard case .success(let after?) = try await store.inspect("event:42") else { Issue.record("expected an entry"); return }
        #expect(!after.valid)
        #expect(try await store.inspect("none") == .success(nil))
        try await store.shutdown()
    }

    /// Values that are not entries of this format are misses, not errors.
    @Test func foreignValuesAreMisses() async throws {
        let store = try await store(factory())
        try redis.command(["SET", "test:e:{event:42}", "{\"hand-written\": true}"])
        guard case .notFound = try await store.lookup(event) else { Issue.record("a foreign value is a miss"); return }
        try await store.shutdown()
    }

    /// Redis killed: lookups report the store unavailable (at once, while it is down). Restarted: the store
    /// reconnects by itself.
    @Test func reconnectsAfterRedisComesBack() async throws {
        let store = try await store(factory())
        redis.kill()
        try await eventually("the store notices Redis is gone") { try await !store.health().ready }
        for _ in 0..<20 {
            guard case .unavailable = try await store.lookup(event) else { Issue.record("Redis is down"); return }
        }
        // Down, or already trying again (a reconnect may be under way by now): either way not ready, and it says so.
        let health = try await store.health()
        #expect(!health.ready && (health.status.contains("not connected") || health.status.contains("connecting to")), "\(health.status)")
        try redis.start()
        try await eventually("the store reconnects") { try await store.health().ready }
        guard case .notFound = try await store.lookup(event) else { Issue.record("lookups work again"); return }
        try await store.shutdown()
    }

    /// A Redis that stops answering makes commands time out; the connection is closed and reopened once Redis
    /// answers again.
    @Test func slowRedisTimesOutAndRecovers() async throws {
        let store = try await store(factory(commandTimeout: .milliseconds(100)))
        try redis.command(["CLIENT", "PAUSE", "1500", "ALL"])
        guard case .unavailable(let error) = try await store.lookup(event) else { Issue.record("a paused Redis times out"); return }
        #expect(error.shortDescription == "timeout")
        try await eventually("the store reconnects after the pause", timeout: .seconds(15)) {
            if case .notFound = try await store.lookup(self.event) { return true }
            return false
        }
        try await store.shutdown()
    }

    /// Finding 9 of #12: a purge of 100,000 tags goes out in slices, each answered within the command timeout:
    /// it is applied whole, and the store stays up (one batch once timed out, and every replay after it too).
    @Test func aVeryLargePurgeDoesNotWedgeTheStore() async throws {
        let store = try await store(factory(commandTimeout: .milliseconds(250)))
        _ = try await store.store(event, generations: [0, 0, 0, 0, 0], body: "old")
        let tags = (0..<100_000).map { "bulk:\($0)" } + ["event:42"]
        guard case .success(let report) = try await store.purge(tags.map(PurgeCounter.tag)) else {
            Issue.record("the purge failed")
            return
        }
        #expect(report.tags.count == 100_001)
        #expect(try await store.health().ready)
        guard case .found(_, _, let generations, _) = try await store.lookup(event) else { Issue.record("the store answers"); return }
        #expect(generations == [0, 0, 0, 0, Generation.hardStep])
        #expect(try redis.command(["GET", "test:g:{test}:t:bulk:99999"]) == String(Generation.hardStep))
        try await store.shutdown()
    }

    /// What is left of a purge after a slice failed, in the order the slices go out.
    @Test func remainderOfAPurge() {
        let request = PurgeRequest(counters: [.everything, .route("r1"), .tag("t1"), .tag("t2"), .key("k1")], counterLifetime: 1000)
        #expect(request.dropping(first: 0) == request)
        #expect(request.dropping(first: 3) == PurgeRequest(counters: [.tag("t2"), .key("k1")], counterLifetime: 1000))
        #expect(request.dropping(first: 5).counters.isEmpty)
        #expect(request.keys == ["k1"])
    }

    /// A purge that cannot reach Redis is kept and applied when Redis is back; until then no lookup is answered
    /// from the store, so nothing the purge covers is served.
    @Test func purgesMadeWhileRedisIsAwayAreReplayed() async throws {
        let store = try await store(factory(commandTimeout: .milliseconds(100)))
        _ = try await store.store(event, generations: [0, 0, 0, 0, 0], body: "old")
        // Long enough that the lookup below is made while Redis is still paused, even on a loaded machine.
        try redis.command(["CLIENT", "PAUSE", "3000", "ALL"])
        guard case .failure = try await store.purge([.tag("event:42")]) else { Issue.record("the purge cannot reach Redis"); return }
        guard case .unavailable = try await store.lookup(event) else { Issue.record("no answers while a purge waits"); return }
        try await eventually("the queued purge is replayed", timeout: .seconds(15)) {
            if case .found(_, _, let generations, _) = try await store.lookup(self.event) { return generations == [0, 0, 0, 0, Generation.hardStep] }
            return false
        }
        try await store.shutdown()
    }

    /// AUTH and SELECT happen on connect; a wrong password keeps the store unavailable and says why.
    @Test func authenticatesAndSelectsTheDatabase() async throws {
        let secured = try RedisServer(extraArguments: ["--requirepass", "s3cret"])
        let store = try await store(factory(secured, password: "s3cret", database: 3))
        _ = try await store.store(event, generations: [0, 0, 0, 0, 0], body: "x")
        #expect(try secured.command(["EXISTS", "test:e:{event:42}"], password: "s3cret", database: 3) == "1")
        #expect(try secured.command(["EXISTS", "test:e:{event:42}"], password: "s3cret", database: 0) == "0")
        try await store.shutdown()

        let loop = group.next()
        let wrong = try await loop.submit { NIOLoopBound(self.factory(secured, password: "nope").makeStore(on: loop), eventLoop: loop) }.get()
        let bound = Bound(loop: loop, store: wrong)
        try await eventually("the refusal is reported") { try await bound.health().status.contains("refused") }
        guard case .unavailable = try await bound.lookup(event) else { Issue.record("a refused store is unavailable"); return }
        try await bound.shutdown()
        secured.stop()
    }

    /// Past the cap of waiting commands, new ones fail at once instead of queueing without bound.
    @Test func capsPendingCommands() async throws {
        let store = try await store(factory(maxPending: 1))
        let outcomes = try await store.loop.submit { () -> EventLoopFuture<[Bool]> in
            let first = store.loop.makePromise(of: Bool.self)
            let second = store.loop.makePromise(of: Bool.self)
            store.store.value.lookup(self.event) { if case .unavailable = $0 { first.succeed(false) } else { first.succeed(true) } }
            store.store.value.lookup(self.event) {
                if case .unavailable(let error) = $0 { second.succeed(error.shortDescription == "overloaded") } else { second.succeed(false) }
            }
            return first.futureResult.and(second.futureResult).map { [$0.0, $0.1] }
        }.get().get()
        #expect(outcomes == [true, true])
        try await store.shutdown()
    }
}

/// Large bodies held in process: hits read only the head from Redis, and a new store anywhere replaces what is held;
/// on one Redis and in a Redis Cluster alike.
@Suite(.serialized) struct LocalBodiesTests {
    @Test(arguments: [false, true]) func largeBodiesAreHeldAndFollowNewStores(inCluster: Bool) async throws {
        let redis = inCluster ? nil : try RedisServer()
        let cluster = inCluster ? try RedisClusterServers(masters: 3) : nil
        defer { redis?.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let seeds = cluster?.servers.map { ServerAddress(host: "127.0.0.1", port: $0.port) }
        let settings = RedisConnectionSettings(host: "127.0.0.1", port: redis?.port ?? seeds![0].port, connectTimeout: .seconds(1),
            commandTimeout: .milliseconds(500), maxPending: 64, cluster: seeds)
        let topology = try await loop.submit {
            seeds.map { RedisClusterTopology(seeds: $0, settings: settings, eventLoop: loop, logger: Logger(label: "test")) }
        }.get()
        let factory = RedisStoreFactory(settings: settings, topology: topology, namespace: "bodies", logger: Logger(label: "test"))
        // Two stores on one loop stand for two Trove instances on one Redis.
        let (first, second) = try await loop.submit { (NIOLoopBound(factory.makeStore(on: loop), eventLoop: loop),
            NIOLoopBound(factory.makeStore(on: loop), eventLoop: loop)) }.get()
        try await eventually("both stores are connected") {
            try await loop.submit { first.value.health.ready && second.value.health.ready }.get()
        }
        let address = EntryAddress(key: "big", route: "r", tags: [])
        func write(_ store: NIOLoopBound<RedisStore>, _ byte: UInt8) async throws {
            let body = ByteBuffer(repeating: byte, count: 64 << 10)
            let meta = EntryMeta(status: 200, headers: [], storedAt: 1, freshUntil: 2, staleUntil: 2, route: "r", tags: [],
                generations: [0, 0, 0], bodyLength: body.readableBytes)
            let promise = loop.makePromise(of: Void.self)
            loop.execute {
                store.value.store(StoreWrite(address: address, meta: meta, body: body, expireAfter: 60_000)) { _ in promise.succeed(()) }
            }
            try await promise.futureResult.get()
        }
        func read(_ store: NIOLoopBound<RedisStore>) async throws -> UInt8? {
            let promise = loop.makePromise(of: UInt8?.self)
            loop.execute {
                store.value.lookup(address) { outcome in
                    if case .found(_, let body, _, _) = outcome { promise.succeed(body.getInteger(at: body.readerIndex + 1000)) } else { promise.succeed(nil) }
                }
            }
            return try await promise.futureResult.get()
        }
        try await write(first, 0x61)
        #expect(try await loop.submit { first.value.bodies.holds("big") }.get(), "the writer holds what it stored")
        #expect(try await read(first) == 0x61)
        #expect(try await read(second) == 0x61)
        #expect(try await loop.submit { second.value.bodies.holds("big") }.get(), "the reader holds what it read")
        // The other instance stores a new body with an identical meta (same times, length, headers): the nonce in
        // the head still tells them apart, and the first store reads the new body.
        try await write(second, 0x62)
        #expect(try await read(first) == 0x62)
        #expect(try await read(first) == 0x62)
        // Gone from Redis: a miss, and nothing held.
        let purged = loop.makePromise(of: Void.self)
        loop.execute { first.value.purge(PurgeRequest(counters: [.key("big")], counterLifetime: 60_000)) { _ in purged.succeed(()) } }
        try await purged.futureResult.get()
        #expect(try await read(second) == nil)
        #expect(try await loop.submit { second.value.bodies.holds("big") }.get() == false)
        // Small bodies are read whole and never held.
        let small = ByteBuffer(string: "small")
        let promise = loop.makePromise(of: Void.self)
        loop.execute {
            first.value.store(StoreWrite(address: EntryAddress(key: "small", route: "r", tags: []), meta: EntryMeta(status: 200,
                headers: [], storedAt: 1, freshUntil: 2, staleUntil: 2, route: "r", tags: [], generations: [0, 0, 0], bodyLength: 5),
                body: small, expireAfter: 60_000)) { _ in promise.succeed(()) }
        }
        try await promise.futureResult.get()
        #expect(try await loop.submit { first.value.bodies.holds("small") }.get() == false)
        try await loop.submit { first.value.shutdown(); second.value.shutdown() }.get()
        try await topology?.stop()
        try await group.shutdownGracefully()
    }
}
