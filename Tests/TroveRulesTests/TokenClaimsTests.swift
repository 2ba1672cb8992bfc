import TroveHTTP
import Foundation
import Testing
@testable import TroveRules
import TroveTestSupport
import Crypto

/// Identities, not credentials: the `token` filter, and JWT claims in templates (`{jwt.sub}`) for routes that say how
/// to verify the token (`jwt:`). An unverifiable token bypasses the cache; it never selects an entry.
@Suite struct TokenClaimsTests {
    static let now: Int64 = 1_800_000_000_000
    static let es256 = TestTokens.ES256Key()
    static let rs256 = TestTokens.RS256Key()

    static func rules(_ extra: String = "") throws -> RuleSet {
        try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            jwt:
              shop-tokens: {algorithm: HS256, secret: {env: JWT_SECRET}, issuer: "https://auth.example.com/"}
              ec: {algorithm: ES256, key: {env: EC_KEY}}
              rsa: {algorithm: RS256, key: {env: RSA_KEY}, audience: trove}
            routes:
              - name: orders
                match: GET /orders
                jwt: shop-tokens
                cache: {key: "orders:user={jwt.sub}:shop={jwt.shop}", ttl: 1m, authenticated: true, tags: ["user:{jwt.sub}"]}
              - name: order-create
                match: POST /orders
                jwt: shop-tokens
                purge: {keys: ["orders:user={jwt.sub}:shop={jwt.shop}"], tags: ["user:{jwt.sub}"]}
              - name: ec
                match: GET /ec
                jwt: ec
                cache: {key: "ec:{jwt.sub}", ttl: 1m}
              - name: rsa
                match: GET /rsa
                jwt: rsa
                cache: {key: "rsa:{jwt.org.id}", ttl: 1m}
              - name: raw
                match: GET /raw
                cache: {key: "raw:{header.authorization|token|sha256}", ttl: 1m}
            \(extra)
            """, file: "jwt.yaml", environment: [
                "TROVE_ADMIN_TOKEN": "t", "JWT_SECRET": TestTokens.secret, "EC_KEY": es256.publicKeyPEM, "RSA_KEY": rs256.publicKeyPEM,
            ])
    }

    static var claims: [String: Any] { ["sub": "42", "shop": "acme", "iss": "https://auth.example.com/", "exp": 1_800_000_600] }

    private func plan(_ path: String, _ token: String?, scheme: String = "Bearer", method: String = "GET", now: Int64? = now) throws
        -> RequestPlan
    {
        try Self.rules().plan(for: RequestHead(method: method, target: path,
            headers: token.map { [Header("Authorization", "\(scheme) \($0)")] } ?? [], receivedAt: now))
    }

    private func key(_ plan: RequestPlan) -> String? {
        if case .cache(let target) = plan.decision { target.key } else { nil }
    }

    private func unverified(_ plan: RequestPlan) -> String? {
        if case .bypass(.unverifiedToken(let why)) = plan.decision { why } else { nil }
    }

    @Test func claimsKeyPerUserWhateverTheSchemesCase() throws {
        let token = TestTokens.hs256(Self.claims)
        let upper = try plan("/orders", token)
        #expect(key(upper) == "orders:user=42:shop=acme")
        if case .cache(let target) = upper.decision { #expect(target.perUser == [.authorization]) }
        if case .cache(let target) = upper.decision { #expect(target.tags == ["user:42"]) }
        #expect(key(try plan("/orders", token, scheme: "bearer")) == "orders:user=42:shop=acme")
        // Another token for the same user (issued later) selects the same entry; another user's does not.
        var later = Self.claims
        later["iat"] = 1_799_999_999
        #expect(key(try plan("/orders", TestTokens.hs256(later))) == "orders:user=42:shop=acme")
        var other = Self.claims
        other["sub"] = "43"
        #expect(key(try plan("/orders", TestTokens.hs256(other))) == "orders:user=43:shop=acme")
        // No token: the anonymous entry, as for any per-user route.
        #expect(key(try plan("/orders", nil)) == "orders:user=:shop=")
    }

    @Test func anUnverifiableTokenNeverSelectsAnEntry() throws {
        var expired = Self.claims
        expired["exp"] = 1_799_999_000
        var early = Self.claims
        early["nbf"] = 1_800_000_100
        var noExpiry = Self.claims
        noExpiry["exp"] = nil
        var foreignIssuer = Self.claims
        foreignIssuer["iss"] = "https://evil.example.com/"
        let good = TestTokens.hs256(Self.claims)
        let parts = good.split(separator: ".")
        let cases: [(String, String)] = [
            (TestTokens.hs256(Self.claims, secret: "another-secret-0123456789abcdef-0123456789"), "its signature is not valid"),
            (parts[0] + "." + TestTokens.base64URL(Array(#"{"sub":"1","shop":"acme","exp":1800000600,"iss":"https://auth.example.com/"}"#.utf8)) + "." + parts[2],
                "its signature is not valid"),
            (TestTokens.hs256(expired), "it has expired"),
            (TestTokens.hs256(early), "it is not valid yet (nbf)"),
            (TestTokens.hs256(noExpiry), "it has no exp"),
            (TestTokens.hs256(foreignIssuer), "its iss is not https://auth.example.com/"),
            (TestTokens.hs256(Self.claims, header: ["alg": "none"]), "its alg is not HS256"),
            (TestTokens.hs256(Self.claims, header: ["alg": "HS256", "crit": ["exp"]]), "it has critical header parameters Trove does not know"),
            ("not.a.token!", "not a JSON Web Token (three base64url parts)"),
            ("abc", "not a JSON Web Token (three base64url parts)"),
        ]
        for (token, why) in cases {
            #expect(unverified(try plan("/orders", token)) == why, "\(token)")
        }
        #expect(unverified(try plan("/orders", good, scheme: "Basic")) == "not a Bearer token")
        #expect(unverified(try plan("/orders", good, now: nil)) == "the time is not known")
        // Within the leeway (30 s) of exp, still valid; past it, not.
        #expect(key(try plan("/orders", good, now: 1_800_000_620_000)) != nil)
        #expect(unverified(try plan("/orders", good, now: 1_800_000_631_000)) == "it has expired")
        let twice = try Self.rules().plan(for: RequestHead(method: "GET", target: "/orders",
            headers: [Header("Authorization", "Bearer \(good)"), Header("authorization", "Bearer \(good)")], receivedAt: Self.now))
        #expect(unverified(twice) == "more than one Authorization header")
    }

    /// A hostile header or claims nested thousands deep (the header is read before the signature) is refused,
    /// never a crash; so is a number no Int64 holds.
    @Test func hostileJSONIsRefused() throws {
        let verifier = try #require(try Self.rules().routes.first { $0.name == "orders" }?.tokenVerifier)
        let deep = String(repeating: "[", count: 3000) + String(repeating: "]", count: 3000)
        let header = TestTokens.base64URL(Array(#"{"alg":"HS256","x":\#(deep)}"#.utf8))
        let claims = TestTokens.base64URL(Array(#"{"sub":"1","exp":1e300}"#.utf8))
        let outcome = verifier.verify(token: header + "." + claims + ".c2ln", now: Self.now)
        if case .verified = outcome { Issue.record("verified: \(outcome)") }
        let huge = TestTokens.hs256(["sub": "1", "exp": 1e300, "iss": "https://auth.example.com/"])
        #expect(key(try plan("/orders", huge)) == "orders:user=1:shop=", "exp past Int64 is clamped, not a trap")
        let deepClaims = TestTokens.hs256(["sub": "1", "exp": 1_800_000_600, "iss": "https://auth.example.com/", "x": [[[[[[1]]]]]]])
        #expect(key(try plan("/orders", deepClaims)) == "orders:user=1:shop=")
        // Signed, and nested deeper than any JSON reader should follow: refused or read, never a crash.
        let nested = String(repeating: "[", count: 2400) + String(repeating: "]", count: 2400)
        let signedDeep = TestTokens.hs256(rawClaims: #"{"sub":"1","exp":1800000600,"iss":"https://auth.example.com/","x":\#(nested)}"#)
        #expect(signedDeep.utf8.count <= 8192, "within the length read at all")
        switch verifier.verify(token: signedDeep, now: Self.now) {
        case .verified(let claims): #expect(claims["sub"] == "1" && claims["x"] == nil, "arrays are left out")
        case .refused: break
        case .absent: Issue.record("a token was given")
        }
    }

    @Test func publicKeyAlgorithms() throws {
        #expect(key(try plan("/ec", Self.es256.sign(Self.claims))) == "ec:42")
        #expect(unverified(try plan("/ec", TestTokens.ES256Key().sign(Self.claims))) == "its signature is not valid")
        // An HS256 token "signed" with the public key as its secret (the classic confusion) is refused.
        #expect(unverified(try plan("/ec", TestTokens.hs256(Self.claims, secret: Self.es256.publicKeyPEM))) == "its alg is not ES256")
        var org = Self.claims
        org["org"] = ["id": 7, "name": "Acme"]
        org["aud"] = ["other", "trove"]
        #expect(key(try plan("/rsa", Self.rs256.sign(org))) == "rsa:7")
        org["aud"] = "other"
        #expect(unverified(try plan("/rsa", Self.rs256.sign(org))) == "its aud does not name trove")
    }

    /// A write's purge follows the user too: the same key and tag the reads were stored under.
    @Test func writesPurgeTheUsersEntries() throws {
        guard case .write(let purges) = try plan("/orders", TestTokens.hs256(Self.claims), method: "POST").decision else {
            Issue.record("a write"); return
        }
        #expect(purges.keys.contains("orders:user=42:shop=acme"))
        #expect(purges.tags == ["user:42"])
    }

    @Test func theTokenFilterTakesTheSchemeOff() throws {
        let a = key(try plan("/raw", "abc"))
        #expect(a != nil)
        #expect(key(try plan("/raw", "abc", scheme: "bearer")) == a)
        #expect(key(try plan("/raw", "abd")) != a)
    }

    @Test func rulesErrors() throws {
        func refused(_ yaml: String, env: [String: String] = [:]) -> [String] {
            refusal("version: 1\norigins: {api: {url: \"http://127.0.0.1:8000\"}}\n" + yaml, file: "j.yaml",
                environment: ["TROVE_ADMIN_TOKEN": "t", "JWT_SECRET": "short"].merging(env) { $1 }, errorsOnly: true)
        }
        #expect(refused("routes:\n  - {name: a, match: GET /a, cache: {key: \"a:{jwt.sub}\", ttl: 1m}}") == [
            "j.yaml:4:43: error: route 'a': cache.key: '{jwt.sub}' reads a claim of the request's token, which this route does not verify; "
                + "add jwt: NAME to the route, naming a verifier under the top-level jwt: (how to check the token's signature)",
        ])
        #expect(refused("jwt: {t: {algorithm: HS256, secret: {env: JWT_SECRET}}}\nroutes: []") == [
            "j.yaml:3:37: error: jwt.t.secret: an HS256 secret must be at least 32 bytes (RFC 7518 §3.2)",
        ])
        #expect(refused("jwt: {t: {algorithm: HS512, secret: {env: JWT_SECRET}}}\nroutes: []") == [
            "j.yaml:3:22: error: jwt.t.algorithm: 'HS512' is not an algorithm Trove verifies; write one of HS256, RS256, ES256",
        ])
        #expect(refused("jwt: {t: {algorithm: HS256, secret: abc}}\nroutes: []").first?.contains("must not be written in the rules file") == true)
        #expect(refused("jwt: {t: {algorithm: ES256, key: {env: JWT_SECRET}}}\nroutes: []") == [
            "j.yaml:3:34: error: jwt.t.key: not a P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)",
        ])
        #expect(refused("jwt: {t: {algorithm: RS256, key_file: nowhere.pem}}\nroutes: []").first?.contains("cannot read") == true)
        let unknown = refused("""
            jwt: {shop-tokens: {algorithm: ES256, key: {env: EC_KEY}}}
            routes:
              - {name: a, match: GET /a, jwt: shop-token, cache: {key: "a:{jwt.sub}", ttl: 1m}}
            """, env: ["EC_KEY": Self.es256.publicKeyPEM])
        #expect(unknown == ["j.yaml:5:35: error: route 'a': jwt: there is no verifier 'shop-token' under jwt: (did you mean 'shop-tokens'?); "
            + "define it there, e.g. jwt: {shop-token: {algorithm: HS256, secret: {env: JWT_SECRET}}}"])
    }

    /// A verifier whose secret is not set (`trove check` warns, `trove serve` will not start) trusts no token.
    @Test func aVerifierWithoutItsKeyTrustsNoToken() throws {
        let rules = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            jwt: {t: {algorithm: HS256, secret: {env: JWT_SECRET}}}
            routes:
              - {name: a, match: GET /a, jwt: t, cache: {key: "a:{jwt.sub}", ttl: 1m}}
            """, file: "unset.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(rules.missingEnvironment == ["JWT_SECRET"])
        let plan = rules.plan(for: RequestHead(method: "GET", target: "/a",
            headers: [Header("Authorization", "Bearer " + TestTokens.hs256(Self.claims))], receivedAt: Self.now))
        #expect(unverified(plan) == "its signature is not valid")
    }

    /// A verified token is checked once, then remembered by its SHA-256 within its exp and nbf; a refused one is
    /// never remembered; the table is bounded.
    @Test func verifiedTokensAreRememberedWithinTheirLifeAndBounded() throws {
        let verifier = try #require(try Self.rules().routes.first { $0.name == "orders" }?.tokenVerifier)
        let token = TestTokens.hs256(Self.claims)
        let claims: [String: String] = ["sub": "42", "shop": "acme", "iss": "https://auth.example.com/", "exp": "1800000600"]
        #expect(verifier.verify(token: token, now: Self.now) == .verified(claims))
        #expect(verifier.verified.count == 1)
        #expect(verifier.verify(token: token, now: Self.now) == .verified(claims), "from the table")
        #expect(verifier.verified.count == 1, "the same token is kept once")
        // Past exp (and the leeway), a remembered token is checked again, and refused.
        #expect(verifier.verify(token: token, now: 1_800_000_631_000) == .refused("it has expired"))
        _ = verifier.verify(token: TestTokens.hs256(Self.claims, secret: "another-secret-0123456789abcdef-0123456789"), now: Self.now)
        #expect(verifier.verified.count == 1, "a refused token is never remembered")

        let table = VerifiedTokens(capacity: 4)
        let valid = VerifiedTokens.Verified(claims: ["sub": "1"], validFrom: 100, validUntil: 200)
        let digests = (0..<20).map { SHA256Digests.of("token-\($0)") }
        for digest in digests { table.remember(digest, valid) }
        #expect(table.count <= 8, "two generations of at most 4")
        #expect(table.claims(for: digests[19], at: 150) == ["sub": "1"])
        #expect(table.claims(for: digests[19], at: 99) == nil, "before nbf")
        #expect(table.claims(for: digests[19], at: 200) == nil, "at exp")
        #expect(table.claims(for: digests[0], at: 150) == nil, "the oldest were dropped")
    }

    /// `trove explain` says why a token is not trusted.
    @Test func explainSaysWhy() throws {
        var expired = Self.claims
        expired["exp"] = 1
        let head = RequestHead(method: "GET", target: "/orders", headers: [Header("Authorization", "Bearer " + TestTokens.hs256(expired))],
            receivedAt: Self.now)
        let rules = try Self.rules()
        let explanation = Explanation(plan: rules.plan(for: head), rules: rules, request: head)
        #expect(explanation.decision == "bypass")
        #expect(explanation.reason.contains("this token cannot be trusted (it has expired)"))
        #expect(explanation.reason.contains("detail=UNVERIFIED-TOKEN"))
    }
}

enum SHA256Digests {
    static func of(_ text: String) -> SHA256.Digest { SHA256.hash(data: Array(text.utf8)) }
}
