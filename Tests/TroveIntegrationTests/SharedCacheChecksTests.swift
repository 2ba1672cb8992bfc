import TroveHTTP
import Foundation
import Testing
import TroveCore
import TroveFixtures
import TroveRules
import TroveTestSupport

/// One check of shared-cache behaviour: the origin answers with `headers`; after `wait`, is a second request
/// answered from the cache?
struct SharedCacheCheck: CustomTestStringConvertible, Sendable {
    let name: String
    let headers: [String]
    var status = 200
    var wait: Duration = .seconds(2)
    let reused: Bool

    var testDescription: String { name }
}

/// RFC 9111 shared-cache checks, in the manner of the public cache test suites (cache-tests.fyi) used to compare
/// nginx, Varnish and Squid: a route with `freshness: origin` and `ttl: 0s` (no guessing) in front of a real
/// origin that sends exactly these headers. Where Trove deliberately differs from a plain shared cache, the
/// check says so (`Set-Cookie`).
@Suite(.serialized) struct SharedCacheChecksTests {
    static let date = "Date:Mon, 15 Nov 2027 10:00:00 GMT"

    static let checks: [SharedCacheCheck] = [
        .init(name: "max-age=3600 is reused", headers: ["Cache-Control:max-age=3600"], reused: true),
        .init(name: "no freshness information is not reused (ttl: 0s)", headers: [], reused: false),
        .init(name: "max-age=1 is not reused after 2 s", headers: ["Cache-Control:max-age=1"], reused: false),
        .init(name: "MaX-aGe is case-insensitive", headers: ["Cache-Control:MaX-aGe=3600"], reused: true),
        .init(name: "a quoted max-age is read", headers: ["Cache-Control:max-age=\"3600\""], reused: true),
        .init(name: "a negative max-age is stale", headers: ["Cache-Control:max-age=-3600"], reused: false),
        .init(name: "max-age with a trailing letter is stale", headers: ["Cache-Control:max-age=3600a"], reused: false),
        .init(name: "s-maxage wins over max-age=0 for a shared cache", headers: ["Cache-Control:max-age=0, s-maxage=3600"], reused: true),
        .init(name: "s-maxage=0 wins over max-age for a shared cache", headers: ["Cache-Control:max-age=3600, s-maxage=0"], reused: false),
        .init(name: "Expires an hour after Date is reused", headers: [date, "Expires:Mon, 15 Nov 2027 11:00:00 GMT"], reused: true),
        .init(name: "Expires before Date is not", headers: [date, "Expires:Mon, 15 Nov 2027 09:00:00 GMT"], reused: false),
        .init(name: "an invalid Expires is not", headers: [date, "Expires:0"], reused: false),
        .init(name: "max-age wins over an Expires in the past", headers: [date, "Expires:Mon, 15 Nov 2027 09:00:00 GMT", "Cache-Control:max-age=3600"], reused: true),
        .init(name: "Age past max-age is not reused", headers: ["Cache-Control:max-age=3600", "Age:7200"], reused: false),
        .init(name: "Age within max-age is reused", headers: ["Cache-Control:max-age=3600", "Age:1800"], reused: true),
        .init(name: "an unreadable Age is ignored", headers: ["Cache-Control:max-age=3600", "Age:abc"], reused: true),
        .init(name: "no-store is never stored", headers: ["Cache-Control:max-age=3600, no-store"], reused: false),
        .init(name: "private is not stored by a shared cache", headers: ["Cache-Control:private, max-age=3600"], reused: false),
        .init(name: "no-cache is not reused without asking the origin", headers: ["Cache-Control:no-cache, max-age=3600"], reused: false),
        .init(name: "Vary: * is never reused", headers: ["Cache-Control:max-age=3600", "Vary:*"], reused: false),
        .init(name: "Vary on a header the requests share is reused", headers: ["Cache-Control:max-age=3600", "Vary:Accept-Language"], reused: true),
        // Deliberate: Trove never stores an answer that sets a cookie (a shared cache may store it without the
        // cookie; a legacy app's session cookie is too easy to leak).
        .init(name: "Set-Cookie is not stored (Trove's choice)", headers: ["Cache-Control:max-age=3600", "Set-Cookie:a=b"], reused: false),
        .init(name: "a status the route does not store is not reused", headers: ["Cache-Control:max-age=3600"], status: 500, reused: false),
        .init(name: "a 404 the route stores is reused", headers: ["Cache-Control:max-age=3600"], status: 404, reused: true),
    ]

    static let routes = """
          - name: checks
            match: GET /respond/check/**
            cache: {key: "c:{path}?{query}", ttl: 0s, freshness: origin, statuses: [200, 404]}
          - name: everything-else
            match: ANY /**
            pass: true
        """

    @Test(arguments: checks)
    func check(_ check: SharedCacheCheck) async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(try scenario.rules(routes: Self.routes))
        let path = "/respond/check/x?status=\(check.status)&"
            + check.headers.map { "header=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }.joined(separator: "&")
        let language = [Header("Accept-Language", "fr")]
        _ = try await scenario.request(trove, path, headers: language)
        scenario.clock.advance(by: check.wait)
        let second = try await scenario.request(trove, path, headers: language)
        #expect((second.xCache == "HIT") == check.reused, "\(check.name): \(second.cacheStatus ?? "no Cache-Status")")
        #expect(scenario.originCount(path) == (check.reused ? 1 : 2))
        await scenario.stop(trove)
    }
}
