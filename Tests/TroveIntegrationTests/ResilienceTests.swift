import TroveHTTP
import TroveRules
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Protecting a slow, fragile origin: coalescing, stale answers, origin limits.
@Suite(.serialized) struct ResilienceTests {
    /// 200 concurrent requests for one cold key through 2 Trove instances on one Redis: the origin serves one
    /// (two at most), and every client gets 200 with the same body.
    @Test func stampedeThroughTwoInstances() async throws {
        let scenario = try await Scenario(redis: true, origin: .init(delay: .milliseconds(300)))
        let one = try await scenario.trove()
        let other = try await scenario.trove()
        let answers = try await scenario.concurrently(200, { $0 % 2 == 0 ? one : other }, "/api/v1/events/11")
        #expect(answers.count == 200)
        #expect(answers.allSatisfy { $0.status == 200 })
        #expect(Set(answers.map(\.body)).count == 1)
        let fetched = scenario.originCount("/api/v1/events/11")
        #expect(fetched >= 1 && fetched <= 2, "the origin served \(fetched)")
        #expect(answers.filter { $0.cacheStatus?.hasSuffix("stored") == true }.count == fetched)
        // Every other answer waited for that fetch (collapsed) or, arriving after it was stored, was a hit: how many
        // of each depends on how fast the machine sends the 200 requests.
        let collapsed = answers.filter { $0.cacheStatus?.contains("collapsed") == true }.count
        #expect(answers.filter { $0.xCache == "HIT" }.count == 200 - fetched)
        #expect(collapsed >= 1, "requests that came while the fetch ran waited for it")
        #expect(try await scenario.request(other, "/api/v1/events/11").xCache == "HIT")
        await scenario.stop(one, other)
    }

    /// The same with the memory store: one instance, one fetch.
    @Test func stampedeWithTheMemoryStore() async throws {
        let scenario = try await Scenario(redis: false, origin: .init(delay: .milliseconds(200)))
        let trove = try await scenario.trove()
        let answers = try await scenario.concurrently(100, { _ in trove }, "/api/v1/events/12")
        #expect(answers.allSatisfy { $0.status == 200 })
        #expect(Set(answers.map(\.body)).count == 1)
        #expect(scenario.originCount("/api/v1/events/12") == 1)
        let stats = try await scenario.admin(trove, "/stats").json()
        #expect((stats["routes"] as? [String: Any]).flatMap { ($0["event"] as? [String: Any])?["collapsed"] as? Int } == 99)
        await scenario.stop(trove)
    }

    /// Answers that cannot be shared do not make later requests for the key queue behind each other: after the
    /// first such answer, requests go to the origin side by side (hit-for-miss).
    @Test func unshareableAnswersDoNotSerialise() async throws {
        let scenario = try await Scenario(redis: false, origin: .init(delay: .milliseconds(300)))
        let trove = try await scenario.trove()
        let path = "/respond/plain?header=Set-Cookie:s%3D1"
        let first = try await scenario.concurrently(20, { _ in trove }, path)
        #expect(first.allSatisfy { $0.status == 200 && $0.cacheStatus?.contains("SET-COOKIE") == true })
        #expect(scenario.originCount(path) == 20)
        // The origin holds the second round until all 20 are there: only requests sent side by side are all
        // answered `gathered` (a serialised one would wait for the deadline and be answered `timeout`).
        let gather = [Header("X-Origin-Gather", "20"), Header("X-Origin-Gather-Group", "unshareable"), Header("X-Origin-Gather-Ms", "20000")]
        let second = try await scenario.concurrently(20, { _ in trove }, path, headers: gather)
        #expect(second.allSatisfy { $0.status == 200 })
        #expect(second.allSatisfy { $0.header("X-Origin-Gathered") == "gathered" }, "unshareable requests went side by side")
        await scenario.stop(trove)
    }

    static let staleRoutes = """
          - name: event
            match: GET /api/v1/events/{id}
            cache: {key: "events:full:{id}", ttl: 10s, stale: 1m, stale_if_error: 1h, tags: ["event:{id}"]}
          - name: strict
            match: GET /respond/strict
            cache: {key: "strict:{query}", ttl: 10s}
          - name: everything-else
            match: ANY /**
            pass: true
        """

    /// Within the stale window, the stale entry is answered at once and refreshed in the background exactly
    /// once, however many requests come meanwhile.
    @Test(arguments: [true, false])
    func staleWhileRevalidate(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove(scenario.rules(routes: Self.staleRoutes))
        let slow = [Header("X-Origin-Delay-Ms", "500")]
        let original = try await scenario.request(trove, "/api/v1/events/3", headers: slow)
        #expect(original.xCache == "MISS")
        // The edit goes straight to the origin, as another app would make it: Trove's entry keeps the old title.
        _ = try await scenario.request(url: scenario.origin.url + "/api/v1/events/3", "PUT", body: "{\"title\": \"Refreshed\"}")
        let reachedBefore = scenario.originCount("/api/v1/events/3")  // the GET and the PUT

        scenario.clock.advance(by: .seconds(15))
        let stale = try await scenario.concurrently(10, { _ in trove }, "/api/v1/events/3", headers: slow)
        #expect(stale.allSatisfy { $0.xCache == "STALE" && $0.body == original.body })
        #expect(stale.allSatisfy { $0.cacheStatus == "trove; fwd=stale; ttl=-5" })
        try await eventually("the background refresh stored the new answer") {
            try await scenario.request(trove, "/api/v1/events/3").xCache == "HIT"
        }
        let fresh = try await scenario.request(trove, "/api/v1/events/3")
        #expect(try fresh.json()["title"] as? String == "Refreshed")
        #expect(scenario.originCount("/api/v1/events/3") == reachedBefore + 1, "ten stale answers, one refresh")
        await scenario.stop(trove)
    }

    /// Past the stale window but within the error window, an origin that fails (5xx, unreachable) is answered
    /// with the stale entry; past the error window, the failure is the answer. (429s: `retryAfterIsHonoured`.)
    @Test(arguments: [true, false])
    func staleIfError(redis: Bool) async throws {
        // The origin listens on a loopback address no other test's server binds, so once it stops, nothing can
        // take its port and answer in its place: connecting is refused at once.
        let scenario = try await Scenario(redis: redis, origin: .init(host: "127.0.0.2"))
        let trove = try await scenario.trove(scenario.rules(routes: Self.staleRoutes))
        let original = try await scenario.request(trove, "/api/v1/events/4")
        #expect(original.xCache == "MISS")
        scenario.clock.advance(by: .seconds(120))

        try await scenario.control("/__break?status=503")
        let broken = try await scenario.request(trove, "/api/v1/events/4")
        #expect(broken.status == 200)
        #expect(broken.xCache == "STALE")
        #expect(broken.cacheStatus == "trove; fwd=stale; fwd-status=503; ttl=-110; detail=ORIGIN-ERROR")
        #expect(broken.body == original.body)
        // Without a stale entry, the origin's error goes through.
        #expect(try await scenario.request(trove, "/respond/strict?a=1").status == 503)

        try await scenario.control("/__heal")
        try await scenario.origin.stop()
        let down = try await scenario.request(trove, "/api/v1/events/4")
        #expect(down.status == 200)
        #expect(down.cacheStatus == "trove; fwd=stale; ttl=-110; detail=ORIGIN-UNREACHABLE")

        scenario.clock.advance(by: .seconds(3600))
        let tooOld = try await scenario.request(trove, "/api/v1/events/4")
        #expect(tooOld.status == 502)
        #expect(tooOld.body.hasPrefix("502 Bad Gateway: origin 'demo' is unreachable"))
        await scenario.stop(trove)
    }

    /// With a 2 requests/s origin, a burst of 100 requests for 100 keys never makes the origin answer 429:
    /// Trove sends at most its own limit, queues what it can, and answers the rest 503 with Retry-After.
    @Test func originRateLimitIsNeverExceeded() async throws {
        let scenario = try await Scenario(redis: false, origin: .init(rateLimit: (perSecond: 2, burst: 4)))
        let trove = try await scenario.trove(scenario.rules(origin: "rate: 2/s, burst: 3, queue: 4, queue_timeout: 2s"))
        let answers = try await withThrowingTaskGroup(of: Scenario.Answer.self) { group in
            for page in 1...100 {
                group.addTask { try await scenario.request(trove, "/api/v1/events?page=\(page)") }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(scenario.origin.stats.snapshot.byStatus["429"] == nil, "the origin never had to refuse")
        let served = answers.filter { $0.status == 200 }
        let refused = answers.filter { $0.status == 503 }
        #expect(served.count + refused.count == 100)
        #expect(served.count >= 3)
        #expect(served.count == scenario.origin.stats.snapshot.total)
        #expect(refused.allSatisfy { Int($0.header("Retry-After") ?? "") ?? 0 >= 1 })
        #expect(refused.first?.body.contains("origin 'demo' is at its limit (2 requests/s)") == true)
        await scenario.stop(trove)
    }

    /// An origin's 429 with Retry-After pauses what Trove sends it for that long.
    @Test func retryAfterIsHonoured() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove()
        // Six seconds: room enough for the next request to come within the pause on a loaded machine.
        try await scenario.control("/__break?status=429&retry_after=6")
        let limited = try await scenario.request(trove, "/echo/a")
        #expect(limited.status == 429)
        #expect(limited.header("Retry-After") == "6")
        let reached = scenario.origin.stats.snapshot.total
        try await scenario.control("/__heal")
        // Within the seconds the origin asked for, Trove does not send it anything.
        let paused = try await scenario.request(trove, "/echo/b")
        #expect(paused.status == 503)
        #expect(paused.header("Retry-After").flatMap(Int.init) ?? 0 >= 1)
        #expect(scenario.origin.stats.snapshot.total == reached)
        try await eventually("the pause ends", timeout: .seconds(30)) { try await scenario.request(trove, "/echo/c").status == 200 }
        await scenario.stop(trove)
    }
}
