import Foundation
import Testing
import TroveApp
import TroveCore
import TroveFixtures
import TroveRules
import TroveTestSupport

/// What one hostile client could once do to a running Trove (#12): each test sends what the attack sent, asserts
/// the answer, and that Trove still serves everyone else afterwards.
@Suite(.serialized) struct HardeningTests {
    /// Trove still answers a plain request from its cache or the origin.
    private func stillServing(_ scenario: Scenario, _ trove: TroveApplication, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let answer = try await scenario.request(trove, "/api/v1/events/9")
        #expect(answer.status == 200, "Trove stopped serving", sourceLocation: sourceLocation)
        #expect(try await scenario.admin(trove, "/healthz").status == 200, sourceLocation: sourceLocation)
    }

    /// Finding 1: an HTTP date with a huge year, from a client (on a hit and a miss, in all three forms) or from the
    /// origin (Expires, Last-Modified, Date on a `freshness: origin` route), is no date, not a crash.
    @Test func hugeHTTPDates() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Scenario.routes.replacingOccurrences(of: """
              - name: plain
            """, with: """
              - name: origin-says
                match: GET /respond
                cache: {key: "respond:{query}", ttl: 1m, freshness: origin}
              - name: plain
            """)))
        let dates = ["Sun, 06 Nov 300000000 08:49:37 GMT", "Sunday, 06-Nov-300000000 08:49:37 GMT", "Sun Nov  6 08:49:37 300000000"]
        for (index, date) in dates.enumerated() {
            let miss = try await scenario.request(trove, "/api/v1/events/\(index + 1)", headers: [Header("If-Modified-Since", date)])
            #expect(miss.status == 200)
            #expect(miss.xCache == "MISS")
            let hit = try await scenario.request(trove, "/api/v1/events/\(index + 1)", headers: [Header("If-Modified-Since", date)])
            #expect(hit.status == 200)
            #expect(hit.xCache == "HIT")
        }
        for name in ["Expires", "Last-Modified", "Date"] {
            for date in dates {
                let query = "header=\(name):\(date)".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let answer = try await scenario.request(trove, "/respond?\(query.replacingOccurrences(of: "header%3D", with: "header="))",
                    headers: [Header("If-Modified-Since", date)])
                #expect(answer.status == 200, "\(name): \(date)")
            }
        }
        try await stillServing(scenario, trove)
        await scenario.stop(trove)
    }

    /// Finding 1: a reload with a duration past Int64 or a rate of almost nothing is refused, and Trove serves on.
    @Test func hostileNumbersInAReload() async throws {
        let scenario = try await Scenario(redis: false)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trove-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try scenario.yaml().write(toFile: path, atomically: true, encoding: .utf8)
        let trove = try await scenario.trove(rulesPath: path)
        for broken in [
            scenario.yaml().replacingOccurrences(of: "ttl: 10m", with: "ttl: 99999999999d999999999999h"),
            scenario.yaml(origin: "rate: 0.0000000000000000000001/s"),
        ] {
            try broken.write(toFile: path, atomically: true, encoding: .utf8)
            let refused = try await scenario.admin(trove, "POST", "/reload")
            #expect(refused.status == 400)
            try await stillServing(scenario, trove)
        }
        await scenario.stop(trove)
    }
}
