import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveFixtures
import TroveTestSupport

/// Cookies that do not matter (#15), through a running Trove and the demo origin, on both stores.
@Suite(.serialized) struct CookieRulesTests {
    static let routes = """
          - name: page
            match: GET /echo/page
            cache: {key: "page", ttl: 1m, ignore_cookies: [_ga, _gid, "_hj*"]}
          - name: cart
            match: GET /echo/cart
            cache: {key: "cart:{cookie.sessionid|sha256}", ttl: 1m, only_cookies: [sessionid]}
          - name: plain
            match: GET /echo/plain
            cache: {key: "plain", ttl: 1m}
    """

    /// An analytics cookie no longer makes a request bypass; it still reaches the origin on the miss. A session
    /// cookie the route keys on still gives each user an entry of their own.
    @Test(arguments: [false, true])
    func analyticsCookiesAreCachedAndSessionsStillSeparateUsers(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes))
        let analytics = [Header("Cookie", "_ga=GA1.2.3; _hjSession=9")]
        let first = try await scenario.request(trove, "/echo/page", headers: analytics)
        #expect(first.xCache == "MISS")
        #expect(first.body.contains("_ga=GA1.2.3"), "ignored cookies still go to the origin on a miss")
        #expect(try await scenario.request(trove, "/echo/page", headers: [Header("Cookie", "_gid=other")]).xCache == "HIT")
        #expect(try await scenario.request(trove, "/echo/page").xCache == "HIT")
        // A route without the option: any cookie is a credential, as before.
        _ = try await scenario.request(trove, "/echo/plain")
        #expect(try await scenario.request(trove, "/echo/plain", headers: analytics).xCache == "BYPASS")

        let alice = [Header("Cookie", "sessionid=alice; theme=dark")]
        let bob = [Header("Cookie", "theme=dark; sessionid=bob")]
        #expect(try await scenario.request(trove, "/echo/cart", headers: alice).xCache == "MISS")
        let bobsFirst = try await scenario.request(trove, "/echo/cart", headers: bob)
        #expect(bobsFirst.xCache == "MISS" && bobsFirst.body.contains("sessionid=bob"), "bob never gets alice's entry")
        let alicesAgain = try await scenario.request(trove, "/echo/cart", headers: [Header("Cookie", "theme=light; sessionid=alice")])
        #expect(alicesAgain.xCache == "HIT" && alicesAgain.body.contains("sessionid=alice"))
        await scenario.stop(trove)
    }
}
