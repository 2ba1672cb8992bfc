import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// What clients see when parts fail: Redis, the origin, the request itself.
@Suite(.serialized) struct FailureTests {
    /// Redis killed in the middle: every request still gets a correct answer from the origin. Redis restarted:
    /// hits resume without restarting Trove.
    @Test func redisKilledAndRestarted() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove()
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT")

        scenario.redis?.kill()
        for index in 0..<30 {
            let id = index % 3 + 1
            let answer = try await scenario.request(trove, "/api/v1/events/\(id)")
            #expect(answer.status == 200)
            #expect(try answer.json()["id"] as? Int == id)
            #expect(answer.xCache == "MISS")
        }
        let degraded = try await scenario.request(trove, "/api/v1/events/1")
        #expect(degraded.cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=STORE-UNAVAILABLE")
        let readiness = try await scenario.admin(trove, "/readyz").json()
        #expect(readiness["status"] as? String == "degraded")
        // A connection may be between attempts ("not connected") or in one ("connecting"); both name Redis.
        let storeStatus = (readiness["store"] as? [String: Any])?["status"] as? String ?? ""
        #expect(storeStatus.contains("of 2 connections: not connected to redis://")
            || storeStatus.contains("of 2 connections: connecting to redis://"), "\(storeStatus)")

        try scenario.redis?.start()
        try await eventually("Trove stores again after Redis restarted", timeout: .seconds(15)) {
            try await scenario.request(trove, "/api/v1/events/1").cacheStatus?.hasSuffix("stored") == true
        }
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT")
        try await eventually("every event loop's connection is back", timeout: .seconds(15)) {
            try await scenario.admin(trove, "/readyz").json()["status"] as? String == "ready"
        }
        await scenario.stop(trove)
    }

    /// An origin nobody listens on is a 502; one that answers too late is a 504; each says which origin and why.
    @Test func originUnreachableAndTooSlow() async throws {
        let scenario = try await Scenario(redis: false)
        let closedPort = try Sockets.freePort()
        let unreachable = try await scenario.trove(scenario.rules(originURL: "http://127.0.0.1:\(closedPort)"))
        let refused = try await scenario.request(unreachable, "/api/v1/events/1")
        #expect(refused.status == 502)
        #expect(refused.body.hasPrefix("502 Bad Gateway: origin 'demo' is unreachable: "))
        #expect(refused.header("X-Cache") == nil)

        let impatient = try await scenario.trove(scenario.rules(timeout: "300ms"))
        let slow = try await scenario.request(impatient, "/api/v1/events/1", headers: [Header("X-Origin-Delay-Ms", "2000")])
        #expect(slow.status == 504)
        #expect(slow.body == "504 Gateway Timeout: origin 'demo' did not answer in time: no whole answer within 300ms\n")
        #expect(try await scenario.admin(impatient, "/stats").json()["total"].map { ($0 as? [String: Any])?["errors"] as? Int } == 1)
        await scenario.stop(unreachable, impatient)
    }

    /// A malformed request is a 400, and Trove keeps serving.
    @Test func malformedRequests() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove()
        let reply = try Sockets.exchangeUntilClosed(port: trove.publicPort,
            request: Array("GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n".utf8))
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(try await scenario.request(trove, "/api/v1/events/1").status == 200)
        await scenario.stop(trove)
    }

    /// Pipelined requests on one connection are answered in order.
    @Test func pipelinedRequests() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove()
        let reply = try Sockets.exchangeUntilClosed(port: trove.publicPort, request: Array((
            "GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /api/v1/events/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").utf8))
        let text = String(decoding: reply, as: UTF8.self)
        let statuses = text.components(separatedBy: "HTTP/1.1 200 OK").count - 1
        #expect(statuses == 3)
        let first = try #require(text.range(of: "\"id\":1,"))
        let second = try #require(text.range(of: "\"id\":2,"))
        #expect(first.lowerBound < second.lowerBound)
        #expect(text.components(separatedBy: "X-Cache: HIT").count - 1 == 1)
        await scenario.stop(trove)
    }

    /// Trove refuses to start an admin API without a token unless the rules allow it on loopback, and says why.
    @Test func refusesToStartWithoutTheAdminToken() async throws {
        let scenario = try await Scenario(redis: false)
        let yaml = """
            version: 1
            listen: 127.0.0.1:0
            admin: {listen: 127.0.0.1:0}
            origins: {demo: {url: "\(scenario.origin.url)"}}
            routes: [{name: all, match: ANY /**, pass: true}]
            """
        let rules = try TroveRulesLoader.parse(yaml)
        #expect(rules.missingEnvironment == ["TROVE_ADMIN_TOKEN"])
        await #expect(throws: TroveApplication.StartError.self) { _ = try await TroveApplication.start(rules: rules) }
        do {
            _ = try await TroveApplication.start(rules: rules)
        } catch let error as TroveApplication.StartError {
            #expect(error.description == "cannot start: environment variable TROVE_ADMIN_TOKEN is not set, and scenario.yaml reads it (see `trove check --config scenario.yaml`)")
        }
        await scenario.stop()
    }
}

import TroveRules

/// Parses test rules without any environment.
enum TroveRulesLoader {
    static func parse(_ yaml: String) throws -> RuleSet {
        try RulesLoader.parse(yaml, file: "scenario.yaml", environment: [:])
    }
}
