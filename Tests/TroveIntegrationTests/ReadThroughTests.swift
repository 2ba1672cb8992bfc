import TroveHTTP
import TroveRules
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Read-through, purges and sharing, with a real origin and (where `redis` is true) a real redis-server.
@Suite(.serialized) struct ReadThroughTests {
    /// The second GET within the TTL is a hit the origin never sees; after the TTL it is a miss; HEAD and GET
    /// share the entry.
    @Test(arguments: [true, false])
    func hitMissExpiryAndHead(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove()
        let first = try await scenario.request(trove, "/api/v1/events/7")
        #expect(first.status == 200)
        #expect(first.xCache == "MISS")
        #expect(first.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; stored")
        #expect(try first.json()["id"] as? Int == 7)

        scenario.clock.advance(by: .seconds(30))
        let second = try await scenario.request(trove, "/api/v1/events/7")
        #expect(second.xCache == "HIT")
        #expect(second.cacheStatus == "trove; hit; ttl=570")
        #expect(second.header("Age") == "30")
        #expect(second.body == first.body)
        #expect(scenario.originCount("/api/v1/events/7") == 1)

        let head = try await scenario.request(trove, "HEAD", "/api/v1/events/7")
        #expect(head.xCache == "HIT")
        #expect(head.body.isEmpty)
        #expect(head.header("Content-Length") == String(first.body.utf8.count))
        #expect(scenario.originCount("/api/v1/events/7") == 1)

        scenario.clock.advance(by: .seconds(571))
        let expired = try await scenario.request(trove, "/api/v1/events/7")
        #expect(expired.xCache == "MISS")
        #expect(expired.cacheStatus == "trove; fwd=stale; fwd-status=200; stored")
        #expect(scenario.originCount("/api/v1/events/7") == 2)
        await scenario.stop(trove)
    }

    /// A PUT to a write route purges the tags its rule names; the next GET is a miss. A failed PUT purges
    /// nothing.
    @Test(arguments: [true, false])
    func writesPurge(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove()
        _ = try await scenario.request(trove, "/api/v1/events/3")
        _ = try await scenario.request(trove, "/api/v1/events?page=1")
        _ = try await scenario.request(trove, "/api/v1/events/4")
        #expect(try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT")

        let put = try await scenario.request(trove, "PUT", "/api/v1/events/3",
            headers: [Header("Content-Type", "application/json")], body: "{\"title\": \"Renamed\"}")
        #expect(put.status == 200)
        #expect(put.xCache == "PASS")

        let after = try await scenario.request(trove, "/api/v1/events/3")
        #expect(after.xCache == "MISS")
        // Its own target's key was purged too (RFC 9111 §4.4), which drops the entry: nothing is stored under it.
        #expect(after.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; stored")
        #expect(try after.json()["title"] as? String == "Renamed")
        #expect(try await scenario.request(trove, "/api/v1/events?page=1").xCache == "MISS")
        // Other events were not touched.
        #expect(try await scenario.request(trove, "/api/v1/events/4").xCache == "HIT")

        // A write the origin refuses (no such event) purges nothing.
        _ = try await scenario.request(trove, "/api/v1/events/3")
        let failed = try await scenario.request(trove, "PUT", "/api/v1/events/999", body: "{}")
        #expect(failed.status == 404)
        #expect(try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT")
        #expect(try await scenario.request(trove, "/api/v1/events?page=1").xCache == "HIT")
        await scenario.stop(trove)
    }

    /// The race: a purge that lands while a fetch is running invalidates what that fetch stores.
    @Test(arguments: [true, false])
    func purgeDuringAFetch(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove(scenario.rules(timeout: "30s"))
        // The origin holds the GET until the test releases it, after the purge: the purge always lands mid-fetch.
        let hold = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "purge-\(redis)"), Header("X-Origin-Gather-Ms", "20000")]
        let slow = Task { try await scenario.request(trove, "/api/v1/events/9", headers: hold) }
        try await eventually("the origin is answering the slow GET") { scenario.origin.stats.count(path: "/api/v1/events/9") == 1 }
        let purge = try await scenario.admin(trove, "POST", "/purge", json: "{\"tags\": [\"event:9\"]}")
        #expect(purge.status == 200)
        #expect(try await scenario.request(url: scenario.origin.url + "/api/v1/events/8", headers: hold).status == 200)
        let stale = try await slow.value
        #expect(stale.xCache == "MISS")
        #expect(scenario.origin.stats.snapshot.inFlight == 0)

        // What the slow fetch stored began before the purge: it must not be served.
        let next = try await scenario.request(trove, "/api/v1/events/9")
        #expect(next.xCache == "MISS")
        #expect(next.cacheStatus == "trove; fwd=miss; fwd-status=200; stored")
        #expect(try await scenario.request(trove, "/api/v1/events/9").xCache == "HIT")
        #expect(scenario.originCount("/api/v1/events/9") == 2)
        await scenario.stop(trove)
    }

    /// Two Trove instances on one Redis: an entry stored through one is a hit through the other; a purge
    /// through one is seen by the other at once; with an in-process tier in each (`store.local`, strict) as
    /// without; in tracked mode once Redis' invalidation has reached the other (waited for, not assumed).
    @Test(arguments: ["", "strict", "tracked"])
    func twoInstancesShareRedis(tier: String) async throws {
        let scenario = try await Scenario(redis: true)
        let rules = try scenario.rules(store: tier.isEmpty ? "" : "local: {size: 1MB, mode: \(tier)}")
        #expect(rules.store.local?.mode.rawValue == (tier.isEmpty ? nil : tier))
        let one = try await scenario.trove(rules)
        let other = try await scenario.trove(rules)
        if tier == "tracked" {
            for trove in [one, other] {
                try await eventually("Redis tracks the counters") {
                    try await scenario.admin(trove, "/readyz").body.contains("counters tracked")
                }
            }
        }
        /// Seen at once, or in tracked mode as soon as the invalidation arrived.
        func seen(_ check: @escaping @Sendable () async throws -> Bool) async throws -> Bool {
            guard tier == "tracked" else { return try await check() }
            try await eventually("the other instance heard of the purge", check)
            return true
        }
        #expect(try await scenario.request(one, "/api/v1/events/5").xCache == "MISS")
        #expect(try await scenario.request(other, "/api/v1/events/5").xCache == "HIT")
        #expect(scenario.originCount("/api/v1/events/5") == 1)

        #expect(try await scenario.admin(other, "POST", "/purge", json: "{\"tags\": [\"events\"]}").status == 200)
        #expect(try await seen { try await scenario.request(one, "/api/v1/events/5").xCache == "MISS" })
        #expect(try await scenario.request(other, "/api/v1/events/5").xCache == "HIT", "stored by one, read from Redis by the other")
        #expect(try await scenario.request(other, "/api/v1/events/5").xCache == "HIT", "then from its tier, the counters unchanged")
        #expect(try await scenario.admin(one, "POST", "/purge", json: "{\"keys\": [\"events:full:5\"]}").status == 200)
        #expect(try await seen { try await scenario.request(other, "/api/v1/events/5").xCache == "MISS" },
            "a purge through one is seen by the other's tier")

        // A write through one instance purges for both.
        #expect(try await scenario.request(other, "/api/v1/events/5").xCache == "HIT")
        _ = try await scenario.request(one, "DELETE", "/api/v1/events/5")
        #expect(try await seen { try await scenario.request(other, "/api/v1/events/5").status == 404 })

        // Hits from the tier are counted per route; hits take the fast path whichever the store (tracked ones at once,
        // the others once Redis has answered).
        let stats = try await scenario.admin(other, "/stats").json()
        let route = try #require((stats["routes"] as? [String: Any])?["event"] as? [String: Any])
        #expect((route["local_hits"] as? Int ?? -1 > 0) == !tier.isEmpty, "\(route)")
        let metrics = try await scenario.admin(other, "/metrics").body
        let fast = metrics.split(separator: "\n").first { $0.hasPrefix("trove_fast_path_hits_total ") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        #expect(fast > 0, "fast-path hits: \(fast)")
        await scenario.stop(one, other)
    }

    /// Two users with different Authorization never see each other's entry; a user's write purges only theirs.
    @Test(arguments: [true, false])
    func perUserEntries(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove()
        let alice = [Header("Authorization", "Bearer alice-0001")]
        let bob = [Header("Authorization", "Bearer bob-00002")]
        let path = "/api/v1/products/stats/asin-status"
        #expect(try await scenario.request(trove, path, headers: alice).xCache == "MISS")
        #expect(try await scenario.request(trove, path, headers: bob).xCache == "MISS")
        let aliceHit = try await scenario.request(trove, path, headers: alice)
        let bobHit = try await scenario.request(trove, path, headers: bob)
        #expect(aliceHit.xCache == "HIT")
        #expect(bobHit.xCache == "HIT")
        #expect(try aliceHit.json()["user"] as? String == "lice-0001".suffix(8).description)
        #expect(try bobHit.json()["user"] as? String == "bob-00002".suffix(8).description)

        // Alice adds a product: her stats are purged, Bob's are not.
        #expect(try await scenario.request(trove, "POST", "/api/v1/products", headers: alice, body: "{}").status == 201)
        let aliceAfter = try await scenario.request(trove, path, headers: alice)
        #expect(aliceAfter.xCache == "MISS")
        #expect(try aliceAfter.json()["products"] as? Int == 1)
        let bobAfter = try await scenario.request(trove, path, headers: bob)
        #expect(bobAfter.xCache == "HIT")
        #expect(try bobAfter.json()["products"] as? Int == 0)

        // Without a login the origin answers 401, which is not stored.
        let anonymous = try await scenario.request(trove, path)
        #expect(anonymous.status == 401)
        #expect(anonymous.cacheStatus == "trove; fwd=uri-miss; fwd-status=401; detail=STATUS")

        // A request with credentials to a route that does not key on them bypasses the cache.
        let bypass = try await scenario.request(trove, "/api/v1/events/1", headers: alice)
        #expect(bypass.xCache == "BYPASS")
        #expect(bypass.cacheStatus == "trove; fwd=bypass; fwd-status=200; detail=AUTHORIZATION")
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        await scenario.stop(trove)
    }

    /// Answers with Set-Cookie are never stored; Cache-Control private or no-store only when the route overrides
    /// it; bodies over the route's limit pass through unstored.
    @Test(arguments: [true, false])
    func whatIsNeverStored(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove()
        for _ in 0..<2 {
            let cookie = try await scenario.request(trove, "/respond/plain?header=Set-Cookie:session%3Dabc")
            #expect(cookie.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=SET-COOKIE")
            #expect(cookie.header("Set-Cookie") == "session=abc")
        }
        #expect(scenario.originCount("/respond/plain?header=Set-Cookie:session%3Dabc") == 2)

        let privateAnswer = try await scenario.request(trove, "/respond/plain?header=Cache-Control:private")
        #expect(privateAnswer.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=PRIVATE")
        let noStore = try await scenario.request(trove, "/respond/plain?header=Cache-Control:no-store")
        #expect(noStore.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=NO-STORE")
        _ = try await scenario.request(trove, "/respond/override?header=Cache-Control:private")
        #expect(try await scenario.request(trove, "/respond/override?header=Cache-Control:private").xCache == "HIT")
        // Even a route that overrides Cache-Control never stores Set-Cookie.
        let overriddenCookie = try await scenario.request(trove, "/respond/override?header=Set-Cookie:a%3D1")
        #expect(overriddenCookie.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=SET-COOKIE")

        let big = try await scenario.request(trove, "/respond/plain?kb=2")
        #expect(big.body.utf8.count == 2048)
        #expect(big.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=BODY-TOO-LARGE")
        #expect(try await scenario.request(trove, "/respond/plain?kb=2").xCache == "MISS")
        await scenario.stop(trove)
    }

    /// Hop-by-hop headers are dropped; X-Forwarded-For and -Proto are added; the origin's Host is sent.
    @Test func forwardedHeaders() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove()
        let echo = try await scenario.request(trove, "/echo/headers", headers: [
            Header("Host", "shop.example.com"), Header("Connection", "X-Hop"), Header("X-Hop", "secret"),
            Header("X-Keep", "yes"), Header("Keep-Alive", "timeout=5"),
        ])
        #expect(echo.xCache == "PASS")
        let headers = try #require(try echo.json()["headers"] as? [[String]])
        func value(_ name: String) -> String? { headers.first { $0[0].lowercased() == name.lowercased() }?[1] }
        #expect(value("X-Hop") == nil)
        #expect(value("Keep-Alive") == nil)
        #expect(value("X-Keep") == "yes")
        #expect(value("Host") == "127.0.0.1:\(scenario.origin.port)")
        #expect(value("X-Forwarded-For") == "127.0.0.1")
        #expect(value("X-Forwarded-Host") == nil, "no clients.hosts: the origin is not told a host nobody checked")
        #expect(value("X-Forwarded-Proto") == "http")
        await scenario.stop(trove)
    }
}
