import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveRules
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// JWT identities through a running Trove and a real origin, on both stores: claims key per user whatever the
/// spelling of the Authorization header, an admin purges one user's entries by user id, and a token with a bad
/// signature or an expired one is forwarded and never selects an entry.
@Suite(.serialized) struct TokenIdentityTests {
    static let routes = """
          - name: orders
            match: GET /echo/orders
            jwt: shop-tokens
            cache: {key: "orders:user={jwt.sub}", ttl: 10m, authenticated: true, tags: ["user:{jwt.sub}"]}
          - name: everything-else
            match: ANY /**
            pass: true
        """

    /// Tokens expire ten minutes after the scenario's clock starts.
    static func token(_ sub: String, exp: Int = 1_800_000_600, secret: String = TestTokens.secret) -> String {
        TestTokens.hs256(["sub": sub, "exp": exp], secret: secret)
    }

    @Test(arguments: [false, true])
    func claimsKeyAndPurgePerUser(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let yaml = scenario.yaml(routes: Self.routes, settings: "jwt: {shop-tokens: {algorithm: HS256, secret: {env: JWT_SECRET}}}")
        let rules = try RulesLoader.parse(yaml, file: "jwt.yaml", environment: ["TROVE_ADMIN_TOKEN": Scenario.token, "JWT_SECRET": TestTokens.secret])
        let trove = try await scenario.trove(rules)
        func get(_ authorization: String?) async throws -> Scenario.Answer {
            try await scenario.request(trove, "/echo/orders", headers: authorization.map { [Header("Authorization", $0)] } ?? [])
        }
        let alice = "Bearer " + Self.token("42")
        #expect(try await get(alice).xCache == "MISS")
        try await eventually("stored") { try await get(alice).xCache == "HIT" }
        // The same user, the scheme spelt otherwise, and another token of theirs: the same entry.
        #expect(try await get("bearer " + Self.token("42")).xCache == "HIT")
        #expect(try await get("Bearer " + Self.token("42", exp: 1_800_000_500)).xCache == "HIT")
        // Another user: an entry of their own.
        #expect(try await get("Bearer " + Self.token("43")).xCache == "MISS")
        try await eventually("stored") { try await get("Bearer " + Self.token("43")).xCache == "HIT" }

        // A bad signature, or an expired token, for user 42: forwarded, never answered from 42's entry.
        let before = scenario.origin.stats.count(path: "/echo/orders")
        let forged = try await get("Bearer " + Self.token("42", secret: "someone-else-s-secret-0123456789abcdef"))
        #expect(forged.xCache == "BYPASS")
        #expect(forged.cacheStatus?.contains("detail=UNVERIFIED-TOKEN") == true)
        let expired = try await get("Bearer " + Self.token("42", exp: 1_799_999_000))
        #expect(expired.xCache == "BYPASS")
        #expect(scenario.origin.stats.count(path: "/echo/orders") == before + 2)

        // An admin purges one user's entries by user id.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["user:42"]}"#).status == 200)
        #expect(try await get(alice).xCache == "MISS")
        #expect(try await get("Bearer " + Self.token("43")).xCache == "HIT")
        await scenario.stop(trove)
    }
}
