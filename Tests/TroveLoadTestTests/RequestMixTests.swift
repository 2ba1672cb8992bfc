import Foundation
import Testing
import TroveLoadTest

/// The request mix: repeatable for a seed, and shaped like the scenario asks.
struct RequestMixTests {
    static func scenario(_ requests: String, users: Int = 100) throws -> Scenario {
        try Scenario.load(try ScenarioTests.file("rules: r.yaml\nusers: \(users)\nrequests:\n\(requests)"))
    }

    @Test func theSameSeedSendsTheSameRequests() throws {
        let scenario = try Self.scenario("  - {get: '/a/{id}', id: 'zipf(1..100, 1.1)'}\n  - {put: '/b/{id}', id: 'uniform(1..9)'}\n")
        var first = RequestMix(scenario: scenario, seed: 7)
        var second = RequestMix(scenario: scenario, seed: 7)
        var other = RequestMix(scenario: scenario, seed: 8)
        let a = (0..<200).map { _ in first.next() }
        let b = (0..<200).map { _ in second.next() }
        let c = (0..<200).map { _ in other.next() }
        #expect(a.map(\.path) == b.map(\.path))
        #expect(a.map(\.method) == b.map(\.method))
        #expect(a.map(\.path) != c.map(\.path))
    }

    @Test func weightsAndZipfShapeTheMix() throws {
        let scenario = try Self.scenario("  - {weight: 9, get: '/a/{id}', id: 'zipf(1..50, 1.0)'}\n  - {weight: 1, delete: '/b/{id}', id: 'uniform(1..4)'}\n")
        var mix = RequestMix(scenario: scenario, seed: 1)
        var methods: [String: Int] = [:]
        var ids: [Int: Int] = [:]
        var deleted: Set<String> = []
        for _ in 0..<20_000 {
            let request = mix.next()
            methods[request.method, default: 0] += 1
            if request.method == "GET" { ids[Int(request.path.dropFirst(3))!, default: 0] += 1 } else { deleted.insert(request.path) }
        }
        let share = Double(methods["GET"]!) / 20_000
        #expect(abs(share - 0.9) < 0.01, "9:1 weights give 90 % GETs, got \(share)")
        // Zipf with exponent 1: value k is chosen with weight 1/k.
        #expect(ids[1]! > ids[2]! && ids[2]! > ids[10]! && ids[10]! > ids[50] ?? 0)
        let ratio = Double(ids[1]!) / Double(ids[2]!)
        #expect(abs(ratio - 2) < 0.2, "value 1 is twice as likely as value 2, got \(ratio)")
        #expect(ids.keys.allSatisfy { (1...50).contains($0) })
        #expect(deleted == ["/b/1", "/b/2", "/b/3", "/b/4"])
    }

    @Test func valuesAreEncodedAndUsersAndBodiesAdded() throws {
        let scenario = try Self.scenario(
            "  - {post: '/v?area={area}', area: '[Palm Jumeirah, a&b]', user: true, body: '{}'}\n", users: 3)
        var mix = RequestMix(scenario: scenario, seed: 3)
        var paths: Set<String> = []
        var users: Set<String> = []
        for _ in 0..<200 {
            let request = mix.next()
            paths.insert(request.path)
            users.insert(request.headers.first { $0.0 == "Authorization" }!.1)
            #expect(request.headers.contains { $0.0 == "Content-Type" && $0.1 == "application/json" })
            #expect(request.body == "{}")
        }
        #expect(paths == ["/v?area=Palm%20Jumeirah", "/v?area=a%26b"])
        #expect(users == ["Bearer loadtest-user-1", "Bearer loadtest-user-2", "Bearer loadtest-user-3"])
    }
}
