import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules

/// `Freshness.of`: the rule's TTLs, or the origin's headers per RFC 9111 with the rule as fallback and bound;
/// HTTP dates; conditional requests against an entry.
@Suite struct FreshnessTests {
    static func policy(_ cache: String) throws -> CachePolicy {
        let rules = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: r, match: GET /r, cache: {\(cache)}}
            """, file: "t.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        return try #require(rules.routes.first?.cachePolicy)
    }

    static let now: Int64 = 1_800_000_000_000
    static let origin = try! policy("ttl: 5m, stale: 1m, stale_if_error: 1h, freshness: origin, statuses: {200: 5m, 404: 30s}")

    static func of(_ headers: [(String, String)], policy: CachePolicy = origin, status: Int = 200) -> Freshness? {
        Freshness.of(status: status, headers: headers.map { Header($0.0, $0.1) }, policy: policy, now: now)
    }

    @Test func rulesModeIgnoresTheOriginsHeaders() throws {
        let rules = try Self.policy("ttl: 5m, stale: 1m")
        #expect(Self.of([("Cache-Control", "max-age=10, must-revalidate")], policy: rules) == Freshness(ttl: 300_000, stale: 60_000, staleIfError: 0))
        #expect(Self.of([], policy: rules, status: 500) == nil, "a status the route does not store")
    }

    @Test func explicitLifetimesInTheirOrder() {
        #expect(Self.of([("Cache-Control", "max-age=60")]) == Freshness(ttl: 60_000, stale: 60_000, staleIfError: 3_600_000))
        // s-maxage beats max-age, and forbids serving stale (it means proxy-revalidate too).
        #expect(Self.of([("Cache-Control", "max-age=60, s-maxage=120")]) == Freshness(ttl: 120_000, stale: 0, staleIfError: 0))
        #expect(Self.of([("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Expires", "Sun, 06 Nov 1994 08:51:37 GMT")])?.ttl == 120_000)
        // max-age beats Expires.
        #expect(Self.of([("Cache-Control", "max-age=5"), ("Expires", "Sun, 06 Nov 1994 08:51:37 GMT")])?.ttl == 5_000)
        #expect(Self.of([("Expires", "0")])?.ttl == 0, "an invalid Expires means already expired")
        // Nothing explicit: the rule's TTL for the status is the heuristic.
        #expect(Self.of([])?.ttl == 300_000)
        #expect(Self.of([], status: 404)?.ttl == 30_000)
        // Two Cache-Control headers count together; quoted values and upper case are read.
        #expect(Self.of([("Cache-Control", "public"), ("cache-control", "MAX-AGE=\"30\"")])?.ttl == 30_000)
        // A max-age that is there but unreadable makes the answer stale, not a guess (RFC 9111 §4.2.1).
        for invalid in ["max-age=abc", "max-age=-3600", "max-age='3600'", "max-age =3600", "max-age= 3600", "max-age=3600.0", "max-age=3600a", "max-age="] {
            #expect(Self.of([("Cache-Control", invalid)])?.ttl == 0, "\(invalid)")
        }
        #expect(Self.of([("Cache-Control", "max-age=003600")])?.ttl == 3_600_000, "leading zeros")
        #expect(Self.of([("Cache-Control", "extension=\"max-age=3600\", max-age=1")])?.ttl == 1_000, "a quoted max-age is not one")
        #expect(Self.of([("Cache-Control", "max-age=1800, max-age=1")])?.ttl == 1_800_000, "the first of two")
    }

    @Test func ageIsSubtractedAndMaxTTLCaps() throws {
        #expect(Self.of([("Cache-Control", "max-age=60"), ("Age", "45")])?.ttl == 15_000)
        #expect(Self.of([("Cache-Control", "max-age=60"), ("Age", "100")])?.ttl == 0)
        let capped = try Self.policy("ttl: 5m, freshness: origin, max_ttl: 10m")
        #expect(Self.of([("Cache-Control", "max-age=86400")], policy: capped)?.ttl == 600_000)
        #expect(Self.of([("Cache-Control", "max-age=60")], policy: capped)?.ttl == 60_000)
    }

    /// Only a non-negative whole number counts as an Age; anything else is ignored, as most caches do.
    @Test func ageParsing() {
        func age(_ values: [String]) -> Int64 { Freshness.initialAge(values.map { Header("Age", $0) }) }
        #expect(age(["45"]) == 45)
        #expect(age([" 45 "]) == 45)
        #expect(age([]) == 0)
        for odd in ["abc", "-7200", "7200.0", "7200,0", "0,7200", ""] { #expect(age([odd]) == 0, "\(odd)") }
        #expect(age(["7200", "0"]) == 7200, "the first Age header")
        #expect(age(["99999999999999"]) == Int64(Int32.max))
    }

    @Test func revalidationAndStaleDirectives() {
        #expect(Self.of([("Cache-Control", "no-cache, max-age=60")]) == Freshness(ttl: 0, stale: 0, staleIfError: 0))
        #expect(Self.of([("Cache-Control", "no-cache=\"Set-Cookie\"")]) == Freshness(ttl: 0, stale: 0, staleIfError: 0))
        #expect(Self.of([("Cache-Control", "max-age=60, must-revalidate")]) == Freshness(ttl: 60_000, stale: 0, staleIfError: 0))
        #expect(Self.of([("Cache-Control", "max-age=60, proxy-revalidate")]) == Freshness(ttl: 60_000, stale: 0, staleIfError: 0))
        #expect(Self.of([("Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=600")])
            == Freshness(ttl: 60_000, stale: 30_000, staleIfError: 600_000))
    }

    @Test func httpDatesInEveryForm() {
        let expected: Int64 = 784_111_777_000
        #expect(HTTPDate.milliseconds("Sun, 06 Nov 1994 08:49:37 GMT") == expected)
        #expect(HTTPDate.milliseconds("Sunday, 06-Nov-94 08:49:37 GMT") == expected)
        #expect(HTTPDate.milliseconds("Sun Nov  6 08:49:37 1994") == expected)
        #expect(HTTPDate.milliseconds("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        #expect(HTTPDate.milliseconds("Tue, 29 Feb 2028 23:59:59 GMT") == 1_835_481_599_000)
        for garbage in ["0", "-1", "yesterday", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", ""] {
            #expect(HTTPDate.milliseconds(garbage) == nil, "\(garbage)")
        }
    }

    /// With `statuses: any`, any final status the origin declares fresh is stored for that long; without explicit
    /// freshness only the heuristically cacheable statuses are, for the rule's TTL.
    @Test func anyStatusNeedsExplicitFreshness() throws {
        let any = try Self.policy("ttl: 0s, freshness: origin, statuses: any")
        #expect(Self.of([("Cache-Control", "max-age=60")], policy: any, status: 503)?.ttl == 60_000)
        #expect(Self.of([("Expires", "0")], policy: any, status: 302)?.ttl == 0, "explicit, even if already expired")
        #expect(Self.of([], policy: any, status: 503) == nil, "a 503 the origin says nothing about is not stored")
        #expect(Self.of([], policy: any, status: 404)?.ttl == 0, "a 404 falls back to the rule's TTL")
        #expect(Self.of([("Cache-Control", "max-age=60")], policy: any, status: 206) == nil)
        func refusal(_ status: Int, _ headers: [(String, String)]) -> HeaderPolicy.NotStored? {
            HeaderPolicy.refusal(status: status, headers: headers.map { Header($0.0, $0.1) }, bodyLength: 1, policy: any)
        }
        #expect(refusal(599, [("Cache-Control", "max-age=60")]) == nil)
        #expect(refusal(599, []) == .status)
        #expect(refusal(304, [("Cache-Control", "max-age=60")]) == .status)
        // must-understand: a status whose caching rules Trove knows overrides no-store; an unknown one is not stored.
        #expect(refusal(200, [("Cache-Control", "max-age=60, no-store, must-understand")]) == nil)
        #expect(refusal(599, [("Cache-Control", "max-age=60, no-store, must-understand")]) == .noStore)
        #expect(refusal(200, [("Cache-Control", "max-age=60, no-store")]) == .noStore)
    }

    @Test func conditionalRequestsAgainstAnEntry() {
        func notModified(_ request: [(String, String)], _ entry: [(String, String)], status: Int = 200) -> Bool {
            ConditionalRequest.notModified(request: request.map { Header($0.0, $0.1) }, entryStatus: status,
                entryHeaders: entry.map { Header($0.0, $0.1) })
        }
        let entry = [("ETag", "\"v1\""), ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]
        #expect(notModified([("If-None-Match", "\"v1\"")], entry))
        #expect(notModified([("If-None-Match", "W/\"v1\"")], entry), "weak comparison")
        #expect(notModified([("If-None-Match", "\"v0\", \"v1\"")], entry))
        #expect(notModified([("If-None-Match", "*")], entry))
        #expect(!notModified([("If-None-Match", "\"v2\"")], entry))
        // If-None-Match wins over If-Modified-Since, even when the date would match.
        #expect(!notModified([("If-None-Match", "\"v2\""), ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")], entry))
        #expect(notModified([("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")], entry))
        #expect(notModified([("If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT")], entry))
        #expect(!notModified([("If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT")], entry))
        #expect(!notModified([("If-Modified-Since", "not a date")], entry))
        #expect(!notModified([("If-None-Match", "\"v1\"")], entry, status: 404), "only 200 answers are compared")
        #expect(!notModified([("If-None-Match", "\"v1\"")], []), "no validator, no 304")
        // Without Last-Modified, the entry's Date stands in (RFC 9111 §4.3.2).
        let dated = [("Date", "Sun, 06 Nov 1994 08:49:37 GMT")]
        #expect(notModified([("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")], dated))
        #expect(!notModified([("If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT")], dated))
        #expect(ConditionalRequest.notModifiedHeaders([Header("ETag", "\"v1\""), Header("Content-Type", "text/plain"),
            Header("Cache-Control", "max-age=60")]).map(\.name) == ["ETag", "Cache-Control"])
    }
}
