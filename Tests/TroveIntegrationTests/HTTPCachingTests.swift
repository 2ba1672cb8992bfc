import TroveHTTP
import Foundation
import Testing
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveRules
import TroveTestSupport

/// RFC 9111 where a route asks for it (`freshness: origin`), against a real origin that sends the headers;
/// and conditional requests answered from entries.
@Suite(.serialized) struct HTTPCachingTests {
    static let routes = """
          - name: origin-says
            match: GET /respond/origin/**
            cache: {key: "o:{path}?{query}", ttl: 1m, stale: 30s, freshness: origin, max_ttl: 1h}
          - name: rules-say
            match: GET /respond/rules/**
            cache: {key: "r:{path}?{query}", ttl: 1m}
          - name: everything-else
            match: ANY /**
            pass: true
        """

    /// A path on the demo origin that answers with these headers.
    static func path(_ base: String, _ headers: [String]) -> String {
        base + "?" + headers.map { "header=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }.joined(separator: "&")
    }

    /// `max-age`, `s-maxage`, `Expires` − `Date`, `Age` and `no-cache` set how long an entry is served; a
    /// route with `freshness: rules` ignores them.
    @Test func freshnessFromTheOriginsHeaders() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove(try scenario.rules(routes: Self.routes))
        func expiresAfter(_ path: String, fresh: Duration, expired: Duration) async throws {
            #expect(try await scenario.request(trove, path).xCache == "MISS", "\(path) is fetched")
            scenario.clock.advance(by: fresh)
            #expect(try await scenario.request(trove, path).xCache == "HIT", "\(path) is fresh after \(fresh)")
            scenario.clock.advance(by: expired - fresh)
            let after = try await scenario.request(trove, path)
            #expect(after.xCache != "HIT", "\(path) is no longer fresh after \(expired): \(after.cacheStatus ?? "")")
        }
        // max-age=5: fresh for 5 s (the rule's 1m is only the fallback).
        try await expiresAfter(Self.path("/respond/origin/a", ["Cache-Control:max-age=5"]), fresh: .seconds(4), expired: .seconds(6))
        // s-maxage wins over max-age.
        try await expiresAfter(Self.path("/respond/origin/b", ["Cache-Control:max-age=100, s-maxage=3"]), fresh: .seconds(2), expired: .seconds(4))
        // Expires minus Date: 8 s.
        try await expiresAfter(Self.path("/respond/origin/c", ["Date:Sun, 06 Nov 1994 08:49:37 GMT", "Expires:Sun, 06 Nov 1994 08:49:45 GMT"]),
            fresh: .seconds(7), expired: .seconds(9))
        // Age already spent 7 of max-age's 10 s; the Age Trove sends counts those 7 s too.
        let aged = Self.path("/respond/origin/d", ["Cache-Control:max-age=10", "Age:7"])
        _ = try await scenario.request(trove, aged)
        scenario.clock.advance(by: .seconds(1))
        let agedHit = try await scenario.request(trove, aged)
        #expect(agedHit.xCache == "HIT" && agedHit.header("Age") == "8")
        scenario.clock.advance(by: .seconds(3))
        #expect(try await scenario.request(trove, aged).xCache != "HIT")
        // Nothing said: the rule's TTL.
        try await expiresAfter(Self.path("/respond/origin/e", []), fresh: .seconds(59), expired: .seconds(61))
        // max_ttl caps what the origin asks for.
        try await expiresAfter(Self.path("/respond/origin/f", ["Cache-Control:max-age=86400"]), fresh: .seconds(3599), expired: .seconds(3601))
        // The rules route ignores the origin's max-age.
        try await expiresAfter(Self.path("/respond/rules/a", ["Cache-Control:max-age=5"]), fresh: .seconds(59), expired: .seconds(61))

        // no-cache: stored, never served without going back to the origin.
        let noCache = Self.path("/respond/origin/g", ["Cache-Control:no-cache"])
        #expect(try await scenario.request(trove, noCache).cacheStatus?.contains("stored") == true)
        #expect(try await scenario.request(trove, noCache).xCache == "MISS")
        #expect(scenario.originCount(noCache) == 2)
        await scenario.stop(trove)
    }

    /// The stale windows come from `stale-while-revalidate`, and `must-revalidate` forbids serving stale at all.
    @Test func staleWindowsFromTheOrigin() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(try scenario.rules(routes: Self.routes))
        let swr = Self.path("/respond/origin/h", ["Cache-Control:max-age=2, stale-while-revalidate=100"])
        _ = try await scenario.request(trove, swr)
        scenario.clock.advance(by: .seconds(60))  // past the rule's 30 s stale window, within the origin's 100 s
        #expect(try await scenario.request(trove, swr).xCache == "STALE")

        let strict = Self.path("/respond/origin/i", ["Cache-Control:max-age=2, must-revalidate"])
        _ = try await scenario.request(trove, strict)
        scenario.clock.advance(by: .seconds(3))  // within the rule's 30 s stale window, but the origin forbids it
        #expect(try await scenario.request(trove, strict).xCache == "MISS")
        await scenario.stop(trove)
    }

    /// A client's If-None-Match or If-Modified-Since that matches a stored entry gets 304 without a body, with
    /// the entry's validators; one that does not match gets the entry.
    @Test func conditionalRequestsGet304FromEntries() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove(try scenario.rules(routes: Self.routes))
        let path = Self.path("/respond/rules/etag", ["ETag:\"v7\"", "Last-Modified:Sun, 06 Nov 1994 08:49:37 GMT", "Cache-Control:max-age=60"])
        let first = try await scenario.request(trove, path + "&body=hello")
        #expect(first.status == 200 && first.body == "hello")

        let matching = try await scenario.request(trove, path + "&body=hello", headers: [Header("If-None-Match", "\"v6\", W/\"v7\"")])
        #expect(matching.status == 304)
        #expect(matching.body.isEmpty)
        #expect(matching.header("ETag") == "\"v7\"")
        #expect(matching.header("Cache-Control") == "max-age=60")
        #expect(matching.header("Content-Type") == nil)
        #expect(matching.xCache == "HIT")

        let other = try await scenario.request(trove, path + "&body=hello", headers: [Header("If-None-Match", "\"v8\"")])
        #expect(other.status == 200 && other.body == "hello")
        let since = try await scenario.request(trove, path + "&body=hello", headers: [Header("If-Modified-Since", "Mon, 07 Nov 1994 00:00:00 GMT")])
        #expect(since.status == 304)
        let before = try await scenario.request(trove, path + "&body=hello", headers: [Header("If-Modified-Since", "Sat, 05 Nov 1994 00:00:00 GMT")])
        #expect(before.status == 200 && before.body == "hello")
        #expect(scenario.originCount(path + "&body=hello") == 1, "every answer after the first came from the entry")
        await scenario.stop(trove)
    }

    /// A write through a route that names nothing to purge still purges its own target's entry and the one its
    /// answer's `Location` names (RFC 9111 §4.4); a write the origin refuses purges nothing.
    @Test func writesInvalidateTheirTargetAndLocation() async throws {
        let scenario = try await Scenario(redis: true)
        let routes = """
              - name: event
                match: GET /api/v1/events/{id}
                cache: {key: "e:{id}", statuses: {200: 10m, 404: 1m}}
              - name: everything-else
                match: ANY /**
                pass: true
            """
        let trove = try await scenario.trove(try scenario.rules(routes: routes))
        for id in [3, 4, 61] { _ = try await scenario.request(trove, "/api/v1/events/\(id)") }
        #expect(try await scenario.request(trove, "/api/v1/events/61").status == 404, "no event 61 yet, and that is stored")
        #expect(try await scenario.request(trove, "/api/v1/events/61").xCache == "HIT")

        let put = try await scenario.request(trove, "PUT", "/api/v1/events/3", headers: [Header("Content-Type", "application/json")],
            body: #"{"title": "Renamed"}"#)
        #expect(put.status == 200)
        let after = try await scenario.request(trove, "/api/v1/events/3")
        #expect(after.xCache == "MISS")
        #expect(try after.json()["title"] as? String == "Renamed")
        #expect(try await scenario.request(trove, "/api/v1/events/4").xCache == "HIT", "other entries are untouched")

        // POST /api/v1/events creates event 61 and answers Location: /api/v1/events/61.
        let created = try await scenario.request(trove, "POST", "/api/v1/events", headers: [Header("Content-Type", "application/json")],
            body: #"{"title": "New"}"#)
        #expect(created.status == 201 && created.header("Location") == "/api/v1/events/61")
        let new = try await scenario.request(trove, "/api/v1/events/61")
        #expect(new.status == 200 && new.xCache == "MISS")

        // A write the origin refuses purges nothing, not even its own target's stored 404.
        _ = try await scenario.request(trove, "/api/v1/events/999")
        #expect(try await scenario.request(trove, "/api/v1/events/999").xCache == "HIT")
        #expect(try await scenario.request(trove, "PUT", "/api/v1/events/999", body: "{}").status == 404)
        #expect(try await scenario.request(trove, "/api/v1/events/999").xCache == "HIT")
        await scenario.stop(trove)
    }

    /// A method Trove has no name for (M-SEARCH) reaches the origin spelled as the client spelled it, and, being
    /// of unknown safety, invalidates its target when the origin accepts it (RFC 9111 §4.4).
    @Test func unknownMethodsAreForwardedAndInvalidate() async throws {
        let scenario = try await Scenario(redis: false)
        let routes = """
              - name: echo
                match: GET /echo/**
                cache: {key: "e:{path}", ttl: 10m}
            """
        let trove = try await scenario.trove(try scenario.rules(routes: routes))
        _ = try await scenario.request(trove, "/echo/a")
        _ = try await scenario.request(trove, "/echo/b")
        #expect(try await scenario.request(trove, "/echo/a").xCache == "HIT")
        let search = try await scenario.request(trove, "M-SEARCH", "/echo/a", body: "abc")
        #expect(search.status == 200, "the origin parsed the method (it answers 400 to 'MSEARCH')")
        #expect(try await scenario.request(trove, "/echo/a").xCache == "MISS")
        #expect(try await scenario.request(trove, "/echo/b").xCache == "HIT", "other entries are untouched")
        #expect(try await scenario.request(trove, "OPTIONS", "/echo/b").status == 200)
        #expect(try await scenario.request(trove, "/echo/b").xCache == "HIT", "a safe method invalidates nothing")
        await scenario.stop(trove)
    }

    /// `statuses: any`: whatever status the origin declares fresh is stored; `must-understand` lets a known
    /// status be stored despite `no-store`, and keeps an unknown one out.
    @Test func anyStatusTheOriginDeclaresFresh() async throws {
        let scenario = try await Scenario(redis: true)
        let routes = """
              - name: any
                match: GET /respond/**
                cache: {key: "a:{path}?{query}", ttl: 0s, freshness: origin, statuses: any}
            """
        let trove = try await scenario.trove(try scenario.rules(routes: routes))
        func reused(_ status: Int, _ headers: [String]) async throws -> Bool {
            let target = Self.path("/respond/any/\(status)", headers) + "&status=\(status)"
            let first = try await scenario.request(trove, target)
            #expect(first.status == status)
            return try await scenario.request(trove, target).xCache == "HIT"
        }
        #expect(try await reused(503, ["Cache-Control:max-age=60"]))
        #expect(try await reused(302, ["Cache-Control:max-age=60", "Location:/elsewhere"]))
        #expect(try await !reused(503, []), "no explicit freshness: not stored")
        #expect(try await !reused(200, []), "ttl: 0s, so nothing is guessed")
        #expect(try await reused(200, ["Cache-Control:max-age=60, no-store, must-understand"]))
        #expect(try await !reused(599, ["Cache-Control:max-age=60, no-store, must-understand"]))
        #expect(try await !reused(200, ["Cache-Control:max-age=60, no-store"]))
        await scenario.stop(trove)
    }

    /// An expired entry with an ETag is revalidated: the origin answers 304, the entry is refreshed with the
    /// body it already had, and the client gets it as a hit. In the background (stale-while-revalidate) too.
    @Test func staleEntriesAreRevalidatedWith304() async throws {
        let scenario = try await Scenario(redis: true)
        let routes = """
              - name: strict
                match: GET /respond/strict/**
                cache: {key: "s:{path}?{query}", ttl: 1m}
              - name: lenient
                match: GET /respond/lenient/**
                cache: {key: "l:{path}?{query}", ttl: 1m, stale: 5m}
            """
        let trove = try await scenario.trove(try scenario.rules(routes: routes))
        let strict = Self.path("/respond/strict/a", ["ETag:\"v1\""]) + "&body=hello"
        #expect(try await scenario.request(trove, strict).xCache == "MISS")
        scenario.clock.advance(by: .seconds(61))
        let revalidated = try await scenario.request(trove, strict)
        #expect(revalidated.status == 200 && revalidated.body == "hello")
        #expect(revalidated.xCache == "HIT")
        #expect(revalidated.cacheStatus == "trove; fwd=stale; fwd-status=304; ttl=60; stored")
        #expect(scenario.origin.stats.snapshot.byStatus["304"] == 1, "the origin answered the conditional request with 304")
        #expect(try await scenario.request(trove, strict).cacheStatus?.hasPrefix("trove; hit; ttl=60") == true)
        // A client's own If-None-Match is not forwarded on a fetch for storage: the origin's answer is stored whole.
        let other = Self.path("/respond/strict/b", ["ETag:\"v9\""]) + "&body=whole"
        let conditional = try await scenario.request(trove, other, headers: [Header("If-None-Match", "\"v9\"")])
        #expect(conditional.status == 304, "answered from the entry just stored")
        #expect(try await scenario.request(trove, other).body == "whole")

        let lenient = Self.path("/respond/lenient/a", ["ETag:\"w1\""]) + "&body=hi"
        _ = try await scenario.request(trove, lenient)
        scenario.clock.advance(by: .seconds(61))
        #expect(try await scenario.request(trove, lenient).xCache == "STALE")
        try await eventually("the background revalidation refreshed the entry") {
            try await scenario.request(trove, lenient).xCache == "HIT"
        }
        #expect(try await scenario.request(trove, lenient).body == "hi")
        #expect(scenario.origin.stats.snapshot.byStatus["304"] == 2)
        await scenario.stop(trove)
    }

    /// One entry, stored gzip-coded as the origin sent it, serves clients that accept gzip as it is and the others
    /// decoded (no Content-Encoding, a weak ETag), with `Vary: Accept-Encoding`; the origin is asked once.
    @Test func gzipStoredOnceServedBothWays() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove(try scenario.rules(routes: Self.routes))
        let text = String(repeating: "All work and no play makes Jack a dull boy. ", count: 200)
        let path = Self.path("/respond/rules/gz", ["ETag:\"g1\""]) + "&gzip=1&body=" + text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!

        let plain = try await scenario.request(trove, path)  // no Accept-Encoding: decoded
        #expect(plain.xCache == "MISS")
        let storedBytes = OperationsTests.metrics(try await scenario.admin(trove, "/metrics").body)[#"trove_stored_bytes_total{route="rules-say"}"#]
        #expect(plain.body == text)
        #expect(plain.header("Content-Encoding") == nil)
        #expect(plain.header("ETag") == "W/\"g1\"")
        #expect(plain.header("Vary") == "Accept-Encoding")

        // The client that accepts gzip gets the stored bytes; libcurl here does not decode them, so they are gzip.
        let coded = try await scenario.request(trove, path, headers: [Header("Accept-Encoding", "gzip, br")])
        #expect(coded.xCache == "HIT")
        #expect(coded.header("Content-Encoding") == "gzip")
        #expect(coded.header("ETag") == "\"g1\"")
        #expect(Int(coded.header("Content-Length") ?? "") ?? 0 < text.utf8.count / 5, "the stored body is the compressed one")
        #expect(storedBytes == Double(coded.header("Content-Length") ?? ""), "the metric counts what was stored, not what was sent")

        let refused = try await scenario.request(trove, path, headers: [Header("Accept-Encoding", "gzip;q=0, identity")])
        #expect(refused.xCache == "HIT" && refused.body == text && refused.header("Content-Encoding") == nil)
        #expect(Int(refused.header("Content-Length") ?? "") == text.utf8.count)
        // A conditional request with the decoded answer's weak ETag matches the entry.
        let revalidated = try await scenario.request(trove, path, headers: [Header("If-None-Match", "W/\"g1\"")])
        #expect(revalidated.status == 304 && revalidated.header("ETag") == "W/\"g1\"")
        #expect(scenario.originCount(path) == 1)
        await scenario.stop(trove)
    }

    /// An answer that varies on a request header is stored as one variant per value, side by side, each served
    /// only to requests with its value; purging the key purges every variant; `Vary: *` is never stored;
    /// Accept-Encoding never splits.
    @Test(arguments: [true, false])
    func varySplitsAndVaryStar(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove(try scenario.rules(routes: Self.routes))
        let path = Self.path("/respond/rules/vary", ["Vary:Accept-Language"]) + "&body=localised"
        let french = [Header("Accept-Language", "fr")]
        let german = [Header("Accept-Language", "de")]
        #expect(try await scenario.request(trove, path, headers: french).xCache == "MISS")
        #expect(try await scenario.request(trove, path, headers: french + [Header("Accept-Encoding", "gzip")]).xCache == "HIT")
        #expect(try await scenario.request(trove, path, headers: german).cacheStatus == "trove; fwd=uri-miss; fwd-status=200; stored")
        #expect(try await scenario.request(trove, path, headers: german).xCache == "HIT")
        #expect(try await scenario.request(trove, path, headers: french).xCache == "HIT", "both variants are kept")
        #expect(try await scenario.request(trove, path).xCache == "MISS", "no Accept-Language is a value of its own")
        #expect(scenario.originCount(path) == 3)
        // Purging the cache key (as a write to the URL or an admin purge does) purges every variant.
        let explained = try await scenario.admin(trove, "/explain?request=" + ("GET " + path).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        let key = try #require(try explained.json()["key"] as? String)
        let purged = try await scenario.admin(trove, "POST", "/purge", json: "{\"keys\": [\"\(key)\"]}")
        #expect(purged.status == 200)
        #expect(try await scenario.request(trove, path, headers: french).xCache == "MISS")
        #expect(try await scenario.request(trove, path, headers: german).xCache == "MISS")

        let star = Self.path("/respond/rules/star", ["Vary:*"])
        #expect(try await scenario.request(trove, star).cacheStatus == "trove; fwd=uri-miss; fwd-status=200; detail=VARY-STAR")
        #expect(try await scenario.request(trove, star).xCache == "MISS")
        #expect(scenario.originCount(star) == 2)
        await scenario.stop(trove)
    }

    /// Concurrent misses for one variant coalesce on that variant, across instances too: two instances on one
    /// Redis, twenty requests for a language not stored yet, one origin request for it.
    @Test func variantsCoalesceAcrossInstances() async throws {
        let scenario = try await Scenario(redis: true, origin: .init(delay: .milliseconds(300)))
        let rules = try scenario.rules(routes: Self.routes)
        let first = try await scenario.trove(rules)
        let second = try await scenario.trove(rules)
        let path = Self.path("/respond/rules/langs", ["Vary:Accept-Language"]) + "&body=hello"
        _ = try await scenario.request(first, path, headers: [Header("Accept-Language", "fr")])  // leaves the marker
        #expect(scenario.originCount(path) == 1)
        let answers = try await scenario.concurrently(20, { $0.isMultiple(of: 2) ? first : second }, path,
            headers: [Header("Accept-Language", "de")])
        #expect(answers.allSatisfy { $0.status == 200 && $0.body == "hello" })
        #expect(scenario.originCount(path) == 2, "one fetch for de, however many asked on either instance")
        await scenario.stop(first, second)
    }
}
