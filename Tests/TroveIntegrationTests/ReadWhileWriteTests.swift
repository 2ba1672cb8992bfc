import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveDemoOrigin
import TroveFixtures

/// Cacheable misses stream while they are stored: the client that fetched and every client coalesced on the
/// fetch read the answer as it arrives; an answer that outgrows `max_body` keeps streaming and is not stored.
@Suite(.serialized) struct ReadWhileWriteTests {
    static let routes = """
          - {name: big, match: GET /stream, cache: {key: "stream:{query}", ttl: 1m, max_body: 2MB}}
          - {name: rest, match: ANY /**, pass: true}
        """

    private static func get(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: trove.test\r\n\r\n"
    }

    /// 100 requests for one slow miss: one fetch; every client has its first bytes while the origin still holds
    /// the rest back, and all get the whole answer once it is released; the entry is then a hit.
    @Test func coalescedRequestsReadAMissWhileTheOriginSendsIt() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes, timeout: "30s"))
        let total = 1 << 20
        let clients = try (0..<100).map { _ in try StreamingTests.Client(port: trove.publicPort) }
        for client in clients { try client.connection.send(Self.get("/stream?mb=1&hold=waiters")) }
        let firsts = try await StreamingTests.onOwnThread {
            try clients.map { try $0.connection.readDiscardingBody(within: 60, firstBytes: 64 << 10) }
        }
        // Released only now: whatever the clients have came before the origin finished.
        #expect(scenario.origin.stats.snapshot.streamedBytes < total)
        #expect(firsts.allSatisfy { $0.status == 200 && $0.bodyBytes >= 64 << 10 && $0.headers["content-length"] == String(total) })
        #expect(firsts.filter { $0.headers["x-cache"] == "MISS" }.count == 1)
        #expect(firsts.filter { $0.headers["x-cache"] == "HIT" && $0.headers["cache-status"]?.contains("collapsed") == true }.count == 99)
        try await scenario.control("/__release?group=waiters")
        let rests = try await StreamingTests.onOwnThread {
            try zip(clients, firsts).map { client, first in try client.connection.discard(total - first.bodyBytes, within: 60) + first.bodyBytes }
        }
        #expect(rests.allSatisfy { $0 == total })
        #expect(scenario.origin.stats.snapshot.streams == 1, "one fetch for all")
        let hit = try await scenario.request(trove, "/stream?mb=1&hold=waiters")
        #expect(hit.xCache == "HIT")
        #expect(hit.body.utf8.count == total)
        for client in clients { client.connection.close() }
        await scenario.stop(trove)
    }

    /// An answer bigger than the route's `max_body` is delivered whole and not stored, with no size limit left
    /// (here past `limits.max_response_body`): said at once when the origin declares its length, found out
    /// as it arrives when it does not.
    @Test func aMissLargerThanMaxBodyIsDeliveredWholeAndNotStored() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes, timeout: "30s",
            settings: "limits: {max_response_body: 4MB}"))
        let client = try StreamingTests.Client(port: trove.publicPort)
        let declared = try await StreamingTests.onOwnThread {
            try client.connection.send(Self.get("/stream?mb=8"))
            return try client.connection.readDiscardingBody(within: 60)
        }
        #expect(declared.status == 200)
        #expect(declared.bodyBytes == 8 << 20)
        #expect(declared.headers["cache-status"] == "trove; fwd=uri-miss; fwd-status=200; detail=BODY-TOO-LARGE")
        client.connection.close()

        let unannounced = try await scenario.request(trove, "/stream?mb=8&chunked=1")
        #expect(unannounced.status == 200)
        #expect(unannounced.body.utf8.count == 8 << 20)
        #expect(unannounced.cacheStatus == "trove; fwd=uri-miss; fwd-status=200", "not said to be stored before it is whole")
        #expect(try await scenario.request(trove, "/stream?mb=8&chunked=1").xCache == "MISS", "not stored")

        let small = try await scenario.request(trove, "/stream?mb=1&chunked=1")
        #expect(small.body.utf8.count == 1 << 20)
        #expect(try await scenario.request(trove, "/stream?mb=1&chunked=1").xCache == "HIT", "within max_body: stored")
        let stats = try await scenario.admin(trove, "/stats").json()
        let big = (stats["routes"] as? [String: Any])?["big"] as? [String: Any]
        #expect(big?["stored"] as? Int == 1, "only the small answer was stored: \(String(describing: big))")
        await scenario.stop(trove)
    }
}

/// Large entries in Redis are kept in chunks apart from their heads and served a chunk at a time.
@Suite(.serialized) struct ChunkedEntryTests {
    /// A 5 MiB answer is stored in chunks and hit whole; a purge covers it as any entry; a chunk that is gone
    /// (evicted) is never served as a whole answer: the connection closes short of the length, and the next
    /// request fetches the answer again.
    @Test func aChunkedEntryIsServedWholePurgedAndNeverServedHalfWritten() async throws {
        let scenario = try await Scenario(redis: true)
        let redis = try #require(scenario.redis)
        let routes = """
              - {name: big, match: GET /stream, cache: {key: "stream:{query}", ttl: 1m, tags: [big], max_body: 8MB}}
              - {name: rest, match: ANY /**, pass: true}
            """
        let trove = try await scenario.trove(scenario.rules(routes: routes, timeout: "30s"))
        let total = 5 << 20
        let miss = try await scenario.request(trove, "/stream?mb=5")
        #expect(miss.xCache == "MISS")
        #expect(miss.cacheStatus?.hasSuffix("stored") == true)
        // The test's Redis client reads simple replies only: the keys come back as one text.
        let listChunks = ["EVAL", "return table.concat(redis.call('KEYS', ARGV[1]), ' ')", "0", "\(scenario.namespace):c:*"]
        let chunkKeys = try redis.command(listChunks).split(separator: " ")
        #expect(chunkKeys.count == 5, "\(chunkKeys)")
        let hit = try await scenario.request(trove, "/stream?mb=5")
        #expect(hit.xCache == "HIT")
        #expect(hit.body.utf8.count == total)
        #expect(hit.body.utf8.allSatisfy { $0 == UInt8(ascii: "x") })

        let purge = try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["big"]}"#)
        #expect(purge.status == 200)
        #expect(try await scenario.request(trove, "/stream?mb=5").xCache == "MISS", "purged like any entry")
        #expect(try await scenario.request(trove, "/stream?mb=5").xCache == "HIT")

        // Every chunk of every version gone, as if evicted: the hit breaks off, and is never whole.
        for key in try redis.command(listChunks).split(separator: " ") {
            _ = try redis.command(["DEL", String(key)])
        }
        let client = try StreamingTests.Client(port: trove.publicPort)
        let broken = try await StreamingTests.onOwnThread {
            try client.connection.send("GET /stream?mb=5 HTTP/1.1\r\nHost: trove.test\r\n\r\n")
            return (try? client.connection.readDiscardingBody(within: 30).bodyBytes)
        }
        #expect(broken == nil, "the client is not given a short answer that looks whole")
        client.connection.close()
        let again = try await scenario.request(trove, "/stream?mb=5")
        #expect(again.xCache == "MISS", "the head naming gone chunks was dropped")
        #expect(again.body.utf8.count == total)
        await scenario.stop(trove)
    }
}
