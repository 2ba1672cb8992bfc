import Foundation
import Logging
import Synchronization
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TroveCore
import TroveHTTP
import TroveRules
import TroveTestSupport
@testable import TroveServer

/// The hit fast path on an EmbeddedChannel, with the server's inbound pipeline (fast path, then ProxyHandler; the
/// fast path puts NIO's decoder between them when a request needs it) fed raw bytes: what it answers must be what the full path answers, in the same order.
@Suite struct HitFastPathTests {
    /// `ProxyHandlerTests`' rules: a cached route for `GET /events/{id}`, a write purging it, everything else passed.
    static let yaml = ProxyHandlerTests.yaml()

    let clock = ManualClock()

    private struct Setup {
        let channel: EmbeddedChannel
        let environment: ProxyEnvironment
        let origin: ScriptedOrigin
        let deferred: DeferredStore?

        /// `trove_fast_path_hits_total`.
        var fastHits: Int {
            let text = String(decoding: environment.metrics.exposition(), as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix("trove_fast_path_hits_total ") }
            return line.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
            channel.embeddedEventLoop.run()
        }

        /// Every byte written to the client so far, as answers. (Parsed as bytes: "\r\n" is one `Character`.)
        func answers() throws -> [Answer] {
            var bytes = ByteBuffer()
            while var piece = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&piece) }
            var rest = Array(bytes.readableBytesView)[...]
            func line() -> String? {
                guard let cr = rest.indices.first(where: { rest[$0] == 13 && $0 + 1 < rest.endIndex && rest[$0 + 1] == 10 }) else { return nil }
                defer { rest = rest[(cr + 2)...] }
                return String(decoding: rest[..<cr], as: UTF8.self)
            }
            func take(_ count: Int) -> String {
                defer { rest = rest.dropFirst(count) }
                return String(decoding: rest.prefix(count), as: UTF8.self)
            }
            var answers: [Answer] = []
            while let statusLine = line() {
                var headers: [(String, String)] = []
                while let header = line(), !header.isEmpty {
                    let colon = try #require(header.firstIndex(of: ":"))
                    headers.append((String(header[..<colon]), header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
                }
                let status = try #require(Int(statusLine.split(separator: " ")[1]))
                let isHead = answers.count < heads.count && heads[answers.count]
                var body = ""
                if isHead {
                } else if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" }) {
                    // Chunked (an answer passed on as it arrives): size lines, chunks, then 0 and an empty line.
                    while let size = line().flatMap({ Int($0, radix: 16) }) {
                        body += take(size)
                        _ = line()
                        if size == 0 { break }
                    }
                } else {
                    body = take(Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0)
                }
                answers.append(Answer(status: status, headers: headers, body: body))
            }
            #expect(rest.isEmpty, "nothing but whole answers")
            return answers
        }

        /// Which answers answer a HEAD (they have no body).
        var heads: [Bool] = []
    }

    struct Answer {
        var status: Int
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        /// The headers, but those that tell time (`Age`, the ttl in `Cache-Status`).
        var timeless: [String] {
            headers.filter { !["age", "cache-status"].contains($0.0.lowercased()) }.map { "\($0.0): \($0.1)" }
        }
    }

    /// A store that answers later, on the loop, as Redis does (its `lookupAtOnce` knows nothing), counting lookups.
    final class DeferredStore: CacheStore, Sendable {
        typealias Body = ByteBuffer
        let memory: InMemoryStore<ByteBuffer>
        let loop: EmbeddedEventLoop
        let lookups = Mutex(0)

        init(memory: InMemoryStore<ByteBuffer>, loop: EmbeddedEventLoop) {
            self.memory = memory
            self.loop = loop
        }

        func lookup(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
            lookups.withLock { $0 += 1 }
            memory.lookup(address) { outcome in
                // Read from elsewhere, as from Redis: not a hit from this process's memory.
                var outcome = outcome
                if case .found(let meta, let body, let generations, _) = outcome { outcome = .found(meta, body, generations: generations) }
                nonisolated(unsafe) let completion = completion
                loop.execute { completion(outcome) }
            }
        }
        func store(_ write: StoreWrite<ByteBuffer>, completion: @escaping (Result<Void, StoreError>) -> Void) { memory.store(write, completion: completion) }
        func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: @escaping (Result<ByteBuffer?, StoreError>) -> Void) {
            memory.readChunk(key, chunks, index: index, completion: completion)
        }
        func purge(_ request: PurgeRequest, completion: @escaping (Result<PurgeReport, StoreError>) -> Void) { memory.purge(request, completion: completion) }
        func inspect(key: String, completion: @escaping (Result<EntryInspection?, StoreError>) -> Void) { memory.inspect(key: key, completion: completion) }
        var health: StoreHealth { memory.health }
        func shutdown() {}
    }

    private func setup(
        origin: ScriptedOrigin = ScriptedOrigin(body: "{\"id\": 1}"), yaml: String = Self.yaml, deferred: Bool = false
    ) throws -> Setup {
        let channel = EmbeddedChannel()
        let rules = try RulesLoader.parse(yaml, file: "fast.yaml")
        let memory = InMemoryStore<ByteBuffer>(capacity: 1 << 20, clock: clock)
        let stores = deferred
            ? StoreDirectory(loop: channel.embeddedEventLoop, stores: LoopStores(store: DeferredStore(memory: memory, loop: channel.embeddedEventLoop),
                fetchLocks: LocalFetchLocks(), deliveryClaims: LocalDeliveryClaims()), name: "deferred")
            : StoreDirectory(memory: memory)
        let environment = ProxyEnvironment(
            rules: RulesState(rules, loadedAt: 0), origins: origin,
            stores: stores, clock: clock,
            stats: ProxyStats(), coalescer: Coalescer(clock: clock, notifications: nil),
            gates: OriginGates(rules: rules, timerLoop: channel.eventLoop), logger: Logger(label: "test"))
        let proxy = ProxyHandler(environment: environment)
        try channel.pipeline.syncOperations.addHandler(HitFastPath(proxy: proxy))
        try channel.pipeline.syncOperations.addHandler(proxy)
        try channel.connect(to: SocketAddress(ipAddress: "203.0.113.9", port: 51000)).wait()
        return Setup(channel: channel, environment: environment, origin: origin,
            deferred: environment.stores.store(for: channel.embeddedEventLoop) as? DeferredStore)
    }

    static func get(_ path: String, _ extra: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: trove.test\r\n\(extra)\r\n"
    }

    /// The second and later requests for an entry are answered by the fast path, with the full path's answer.
    @Test func aRepeatedReadIsAnsweredFromTheFastPathAsTheFullPathWould() throws {
        var setup = try setup()
        try setup.send(Self.get("/events/1"))  // a miss: stored, and its plan remembered
        try setup.send(Self.get("/events/1"))  // the fast path
        #expect(setup.fastHits == 1)
        // A header the fast path does not let through sends the same request the full way.
        try setup.send(Self.get("/events/1", "X-Trace: 1\r\n"))
        #expect(setup.fastHits == 1)
        clock.advance(by: .seconds(5))
        try setup.send("HEAD /events/1 HTTP/1.1\r\nHost: trove.test\r\n\r\n")  // a plan of its own: full path, remembered
        try setup.send("HEAD /events/1 HTTP/1.1\r\nHost: trove.test\r\n\r\n")
        #expect(setup.fastHits == 2)
        setup.heads = [false, false, false, true, true]
        let answers = try setup.answers()
        try #require(answers.count == 5)
        #expect(answers[0].header("X-Cache") == "MISS")
        let (fast, full) = (answers[1], answers[2])
        #expect(fast.header("X-Cache") == "HIT")
        #expect(fast.status == full.status)
        #expect(fast.timeless == full.timeless, "the same headers, in the same order")
        #expect(fast.header("Cache-Status") == "trove; hit; ttl=60")
        #expect(fast.body == "{\"id\": 1}")
        #expect(fast.body == full.body)
        #expect(answers[4].header("Age") == "5")
        #expect(answers[4].header("Cache-Status") == "trove; hit; ttl=55")
        #expect(answers[4].timeless == answers[3].timeless)
        #expect(answers[4].header("Content-Length") == "9")
        #expect(answers[4].body.isEmpty)
        #expect(setup.origin.requests.count == 1)
        let stats = setup.environment.stats.byRoute["event"]
        #expect(stats?.hits == 4)
        #expect(stats?.localHits == 4, "the memory store's hits are all served from this process")
    }

    /// Pipelined requests are answered in order, whichever path answers each: a hit behind a write waits for it,
    /// and the write's purge is seen by the hit.
    @Test func pipelinedRequestsKeepTheirOrder() throws {
        let origin = ScriptedOrigin { request in
            let body = request.method == "PUT" ? "updated" : "event \(request.url.split(separator: "/").last ?? "")"
            return .success(OriginResponse(status: 200, headers: [Header("Content-Type", "text/plain")], body: ByteBuffer(string: body),
                bodyLength: body.utf8.count))
        }
        let setup = try setup(origin: origin)
        try setup.send(Self.get("/events/1") + Self.get("/events/2"))
        try setup.send(Self.get("/events/1") + Self.get("/events/2"))
        let before = setup.fastHits
        #expect(before >= 2)
        // A hit, a write purging event 1 (its body split across reads), then reads of both events.
        try setup.send(Self.get("/events/2") + "PUT /events/1 HTTP/1.1\r\nHost: trove.test\r\nContent-Length: 5\r\n\r\nab")
        try setup.send("cde" + Self.get("/events/1") + Self.get("/events/2"))
        let answers = try setup.answers()
        try #require(answers.count == 8)
        #expect(answers.map(\.body) == ["event 1", "event 2", "event 1", "event 2", "event 2", "updated", "event 1", "event 2"])
        #expect(answers[6].header("X-Cache") == "MISS", "purged by the write before it")
        #expect(answers[7].header("X-Cache") == "HIT")
        #expect(setup.origin.requests.map(\.method) == ["GET", "GET", "PUT", "GET"])
        #expect(setup.fastHits > before)
    }

    /// A request that arrives a few bytes at a time is answered once it is whole, by the fast path.
    @Test func aHeadInPiecesIsAnsweredOnceWhole() throws {
        let setup = try setup()
        try setup.send(Self.get("/events/3"))
        for byte in Self.get("/events/3").utf8 { try setup.send(String(decoding: [byte], as: UTF8.self)) }
        #expect(setup.fastHits == 1)
        let answers = try setup.answers()
        #expect(answers.map { $0.header("X-Cache") } == ["MISS", "HIT"])
    }

    /// Requests the fast path cannot frame (a chunked body) hand the rest of the connection to the decoder, which
    /// answers them all as before.
    @Test func aChunkedBodyLeavesTheConnectionToTheDecoder() throws {
        let setup = try setup()
        try setup.send(Self.get("/events/4"))
        try setup.send("PUT /events/9 HTTP/1.1\r\nHost: trove.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + Self.get("/events/4"))
        let answers = try setup.answers()
        #expect(answers.map(\.status) == [200, 200, 200])
        #expect(answers.last?.header("X-Cache") == "HIT")
        #expect(setup.fastHits == 0)
    }

    /// What the fast path looked up and left to the full path (a stale entry) is decided there exactly once.
    @Test func anEntryTheFastPathCannotServeGoesTheFullWay() throws {
        let setup = try setup()
        try setup.send(Self.get("/events/5"))
        clock.advance(by: .seconds(61))
        try setup.send(Self.get("/events/5"))
        #expect(setup.fastHits == 0)
        let answers = try setup.answers()
        #expect(answers.map { $0.header("X-Cache") } == ["MISS", "MISS"])
        #expect(setup.origin.requests.count == 2)
    }

    /// The rules may name a header a plain read carries as a credential: then no request takes the fast path.
    @Test func aCredentialTheFastPathLetsThroughTurnsItOff() throws {
        let yaml = ProxyHandlerTests.yaml(extra: "clients: {credentials: [User-Agent]}")
        let setup = try setup(yaml: yaml)
        try setup.send(Self.get("/events/6", "User-Agent: alice\r\n"))
        try setup.send(Self.get("/events/6", "User-Agent: alice\r\n"))
        try setup.send(Self.get("/events/6"))
        try setup.send(Self.get("/events/6"))
        #expect(setup.fastHits == 0)
        let answers = try setup.answers()
        #expect(answers.map { $0.header("X-Cache") } == ["BYPASS", "BYPASS", "MISS", "HIT"])
    }

    /// With a store that must be asked (Redis), a plain read waits for it in its turn and is answered by the fast
    /// path; one whose entry is not a fresh hit goes the full way with the outcome found (one lookup, not two);
    /// pipelined requests keep their order.
    @Test func aReadWaitingForItsStoreIsAnsweredInItsTurn() throws {
        var setup = try setup(deferred: true)
        try setup.send(Self.get("/events/1"))
        // The first waits for the store on the fast path; the two behind it, pipelined, take the full path in turn.
        try setup.send(Self.get("/events/1") + Self.get("/events/2") + Self.get("/events/1"))
        #expect(setup.fastHits == 1)
        try setup.send("HEAD /events/1 HTTP/1.1\r\nHost: trove.test\r\n\r\n")  // the full path, which remembers its plan
        try setup.send("HEAD /events/1 HTTP/1.1\r\nHost: trove.test\r\n\r\n")
        #expect(setup.fastHits == 2)
        let lookups = setup.deferred?.lookups.withLock { $0 }
        clock.advance(by: .seconds(61))
        try setup.send(Self.get("/events/1", "Accept: */*\r\n"))  // stale now: the full path fetches it again
        #expect(setup.deferred?.lookups.withLock { $0 } == lookups.map { $0 + 1 }, "looked up once, by the fast path")
        #expect(setup.fastHits == 2)
        setup.heads = [false, false, false, false, true, true, false]
        let answers = try setup.answers()
        #expect(answers.map { $0.header("X-Cache") } == ["MISS", "HIT", "MISS", "HIT", "HIT", "HIT", "MISS"])
        #expect(answers.map(\.status) == [200, 200, 200, 200, 200, 200, 200])
        #expect(answers[6].header("Cache-Status") == "trove; fwd=stale; fwd-status=200; stored")
        #expect(answers[1].timeless == answers[3].timeless)
        #expect(setup.origin.requests.count == 3)
        let stats = setup.environment.stats.byRoute["event"]
        #expect(stats?.hits == 4)
        #expect(stats?.localHits == 0, "this store's hits are not from this process's memory")
    }

    /// The fast path holds at most `HitFastPath.maxHead` bytes of a head; a longer one goes to the decoder, which
    /// reads it as before (and refuses past its own limit).
    @Test func aHeadLongerThanTheFastPathHoldsGoesToTheDecoder() throws {
        let setup = try setup()
        try setup.send(Self.get("/events/7"))
        let long = String(repeating: "a", count: HitFastPath.maxHead + 100)
        let request = Self.get("/events/7", "User-Agent: \(long)\r\n")
        // In pieces, as a client sends it: the fast path holds the first ones, then hands them all over.
        for piece in stride(from: 0, to: request.utf8.count, by: 4096) {
            let bytes = Array(request.utf8)[piece..<min(piece + 4096, request.utf8.count)]
            try setup.send(String(decoding: bytes, as: UTF8.self))
        }
        try setup.send(Self.get("/events/7"))
        #expect(setup.fastHits == 0, "the connection stays with the decoder")
        let answers = try setup.answers()
        #expect(answers.map { $0.header("X-Cache") } == ["MISS", "HIT", "HIT"])

        // Past the decoder's own limit: 431, and the connection closes.
        let other = try self.setup()
        try other.send(Self.get("/events/7", "User-Agent: \(String(repeating: "a", count: 100 << 10))\r\n"))
        #expect(try other.answers().map(\.status) == [431])
        #expect(!other.channel.isActive)
    }

    /// A reload puts new rules in force for the next request: a plan the fast path remembered from the old rules is
    /// not used (here the route stops caching).
    @Test func aReloadIsSeenByTheNextRead() throws {
        let setup = try setup()
        try setup.send(Self.get("/events/8"))
        try setup.send(Self.get("/events/8"))
        #expect(setup.fastHits == 1)
        let passing = try RulesLoader.parse(ProxyHandlerTests.yaml().replacingOccurrences(
            of: #"cache: {key: "event:{id}", ttl: 60s, tags: ["event:{id}"]}"#, with: "pass: true"), file: "reloaded.yaml")
        setup.environment.rules.replace(with: passing, loadedAt: 1)
        try setup.send(Self.get("/events/8"))
        #expect(setup.fastHits == 1)
        let answers = try setup.answers()
        #expect(answers.map { $0.header("X-Cache") } == ["MISS", "HIT", "PASS"])
        #expect(setup.origin.requests.count == 2)
    }

    /// With `clients.hosts`, a plain read for another host is refused (421) as on the full path, not served.
    @Test func aHostNotAnsweredIsRefused() throws {
        let setup = try setup(yaml: ProxyHandlerTests.yaml(extra: "clients: {hosts: [trove.test]}"))
        try setup.send(Self.get("/events/9"))
        try setup.send(Self.get("/events/9"))
        #expect(setup.fastHits == 1)
        try setup.send("GET /events/9 HTTP/1.1\r\nHost: other.example\r\n\r\n")
        #expect(setup.fastHits == 1)
        let answers = try setup.answers()
        #expect(answers.map(\.status) == [200, 200, 421])
    }
}
