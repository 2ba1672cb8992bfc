import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveTestSupport

/// The admin API: authentication, purges by tag, key, route and everything, explain, entry, health, stats.
@Suite(.serialized) struct AdminTests {
    /// Without the token, or with a wrong one, the admin API answers 401 and purges nothing; /healthz needs none.
    @Test func needsTheToken() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove()
        _ = try await scenario.request(trove, "/api/v1/events/1")
        let missing = try await scenario.admin(trove, "POST", "/purge", json: "{\"all\": true}", token: nil)
        #expect(missing.status == 401)
        #expect(missing.header("WWW-Authenticate") == "Bearer realm=\"trove-admin\"")
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"all\": true}", token: "wrong").status == 401)
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"all\": true}", token: Scenario.token + "x").status == 401)
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT")
        #expect(try await scenario.admin(trove, "/stats", token: nil).status == 401)
        #expect(try await scenario.admin(trove, "/healthz", token: nil).status == 200)
        await scenario.stop(trove)
    }

    /// Purge by tag, by key, by route, and everything: each makes the next GET a miss, and only for what it names.
    @Test(arguments: [true, false])
    func purges(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove()
        func warm() async throws {
            for path in ["/api/v1/events/1", "/api/v1/events/2", "/api/v1/events?page=1"] {
                _ = try await scenario.request(trove, path)
                #expect(try await scenario.request(trove, path).xCache == "HIT", "\(path) is warm")
            }
        }
        func state() async throws -> [String] {
            var result: [String] = []
            for path in ["/api/v1/events/1", "/api/v1/events/2", "/api/v1/events?page=1"] {
                result.append(try await scenario.request(trove, path).xCache ?? "?")
            }
            return result
        }

        try await warm()
        let byTag = try await scenario.admin(trove, "POST", "/purge", json: "{\"tags\": [\"event:1\"]}")
        #expect(byTag.status == 200)
        #expect((try byTag.json()["purged"] as? [String: Any])?["tags"] as? [String] == ["event:1"])
        #expect(try await state() == ["MISS", "HIT", "HIT"])

        try await warm()
        let byKey = try await scenario.admin(trove, "POST", "/purge", json: "{\"keys\": [\"events:full:2\", \"events:full:99\"]}")
        let keys = (try byKey.json()["purged"] as? [String: Any])?["keys"] as? [[String: Any]]
        #expect(keys?.map { $0["found"] as? Bool } == [true, false])
        #expect(try await state() == ["HIT", "MISS", "HIT"])

        try await warm()
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"routes\": [\"events-list\"]}").status == 200)
        #expect(try await state() == ["HIT", "HIT", "MISS"])

        try await warm()
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"all\": true}").status == 200)
        #expect(try await state() == ["MISS", "MISS", "MISS"])

        // Mistakes are refused with a reason.
        let unknownRoute = try await scenario.admin(trove, "POST", "/purge", json: "{\"routes\": [\"evnts\"]}")
        #expect(unknownRoute.status == 400)
        #expect(try unknownRoute.json()["error"] as? String == "no cached route is named 'evnts'; cached routes: events-list, event, asin-stats, plain, override")
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{}").status == 400)
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"tag\": [\"x\"]}").status == 400)
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "not json").status == 400)
        #expect(try await scenario.admin(trove, "GET", "/purge").status == 405)
        await scenario.stop(trove)
    }

    /// /explain answers what `trove explain --json` does; /entry shows a stored entry; /stats counts per route.
    @Test func explainEntryAndStats() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove()
        let explain = try await scenario.admin(trove, "/explain?request=GET%20/api/v1/events/7")
        #expect(explain.status == 200)
        #expect(try explain.json()["decision"] as? String == "cache")
        #expect(try explain.json()["key"] as? String == "events:full:7")
        let bypass = try await scenario.admin(trove, "/explain?request=GET%20/api/v1/events/7&header=Authorization:%20Bearer%20x")
        #expect(try bypass.json()["decision"] as? String == "bypass")

        #expect(try await scenario.admin(trove, "/entry?key=events:full:7").status == 404)
        _ = try await scenario.request(trove, "/api/v1/events/7")
        scenario.clock.advance(by: .seconds(12))
        let entry = try await scenario.admin(trove, "/entry?key=events:full:7").json()
        #expect(entry["status"] as? Int == 200)
        #expect(entry["route"] as? String == "event")
        #expect(entry["age"] as? Int == 12)
        #expect(entry["ttl"] as? Int == 588)
        #expect(entry["tags"] as? [String] == ["events", "event:7"])
        #expect(entry["valid"] as? Bool == true)
        _ = try await scenario.admin(trove, "POST", "/purge", json: "{\"tags\": [\"events\"]}")
        #expect(try await scenario.admin(trove, "/entry?key=events:full:7").json()["valid"] as? Bool == false)

        _ = try await scenario.request(trove, "/api/v1/events/7")
        _ = try await scenario.request(trove, "/api/v1/events/7")
        _ = try await scenario.request(trove, "/api/v1/events/7")
        _ = try await scenario.request(trove, "/echo/x")
        let stats = try await scenario.admin(trove, "/stats").json()
        let event = try #require((stats["routes"] as? [String: Any])?["event"] as? [String: Any])
        #expect(event["requests"] as? Int == 4)
        #expect(event["hits"] as? Int == 2)
        #expect(event["misses"] as? Int == 2)
        #expect(event["hit_ratio"] as? Double == 0.5)
        let pass = try #require((stats["routes"] as? [String: Any])?["everything-else"] as? [String: Any])
        #expect(pass["passes"] as? Int == 1)
        #expect((stats["store"] as? [String: Any])?["kind"] as? String == "redis")
        #expect(try await scenario.admin(trove, "/readyz").json()["status"] as? String == "ready")
        #expect(try await scenario.admin(trove, "/nope").status == 404)
        await scenario.stop(trove)
    }
}
