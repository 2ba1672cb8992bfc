import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Tags from the origin (`tags_from`) through running Troves and a real origin: the header's tags purge what they
/// name, on every instance sharing the store; the header is taken off the answer; the entry's tags go on to a CDN
/// (`send_tags`); a fetch that was at the origin when one of its tags was purged is not stored.
@Suite(.serialized) struct OriginTagsTests {
    static let routes = """
          - name: products
            match: GET /respond/products
            cache: {key: "products:{query}", ttl: 10m, tags: [products], tags_from: Surrogate-Key, send_tags: Cache-Tag}
          - name: everything-else
            match: ANY /**
            pass: true
        """

    static let tagged = "/respond/products?header=Surrogate-Key:product-1%20collection-7"

    @Test(arguments: [false, true])
    func originTagsPurgeWhatTheyNameOnEveryInstance(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        let rules = try scenario.rules(routes: Self.routes)
        let one = try await scenario.trove(rules)
        // Two instances share entries and purges only through Redis; with the memory store, one instance.
        let other = redis ? try await scenario.trove(rules) : one
        let path = "/respond/products"
        let miss = try await scenario.request(one, Self.tagged)
        #expect(miss.xCache == "MISS")
        #expect(miss.header("Surrogate-Key") == nil, "the origin's tags header is not passed on")
        #expect(miss.header("Cache-Tag") == "products,product-1,collection-7")
        // The entry is stored as the answer streams: the other instance finds it once the store is done.
        var hit = try await scenario.request(other, Self.tagged)
        try await eventually("the other instance finds the entry") {
            hit = try await scenario.request(other, Self.tagged)
            return hit.xCache == "HIT"
        }
        #expect(hit.header("Surrogate-Key") == nil)
        #expect(hit.header("Cache-Tag") == "products,product-1,collection-7")

        // A tag the origin did not name changes nothing; one it named purges the entry, on every instance.
        #expect(try await scenario.admin(other, "POST", "/purge", json: #"{"tags": ["product-2"]}"#).status == 200)
        #expect(try await scenario.request(one, Self.tagged).xCache == "HIT")
        #expect(try await scenario.admin(other, "POST", "/purge", json: #"{"tags": ["collection-7"]}"#).status == 200)
        let after = try await scenario.request(one, Self.tagged)
        #expect(after.xCache == "MISS", "purged through a tag only the origin named: \(after.cacheStatus ?? "")")
        #expect(scenario.origin.stats.count(path: path) == 2)
        try await eventually("stored again") { try await scenario.request(other, Self.tagged).xCache == "HIT" }
        #expect(scenario.origin.stats.count(path: path) == 2)
        if redis { await scenario.stop(one, other) } else { await scenario.stop(one) }
    }

    /// A fetch that was at the origin when a tag its answer names was purged is passed on but not stored (it may
    /// predate the purge); the next request fetches again and stores.
    @Test(arguments: [false, true])
    func aFetchOvertakenByAPurgeOfItsTagsIsNotStored(redis: Bool) async throws {
        let scenario = try await Scenario(redis: redis)
        // The origin timeout outlasts the hold: on a loaded machine the second member can take seconds to arrive.
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes, timeout: "30s"))
        let held = [Header("X-Origin-Gather", "2"), Header("X-Origin-Gather-Group", "tags"), Header("X-Origin-Gather-Ms", "10000")]
        async let first = scenario.request(trove, Self.tagged, headers: held)
        try await eventually("the fetch reached the origin") { scenario.origin.stats.count(path: "/respond/products") == 1 }
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["product-1"]}"#).status == 200)
        _ = try await scenario.request(url: scenario.origin.url + Self.tagged, headers: held)
        let raced = try await first
        #expect(raced.status == 200 && raced.xCache == "MISS")
        // Its Cache-Status went out before the store was refused (the answer streams while it is stored); the
        // core's transcript tests what a refused store that has not answered yet says.
        #expect(try await scenario.request(trove, Self.tagged).xCache == "MISS", "nothing was stored")
        try await eventually("stored by the fetch after the purge") { try await scenario.request(trove, Self.tagged).xCache == "HIT" }
        #expect(scenario.origin.stats.count(path: "/respond/products") == 3, "the raced fetch, its partner, one fetch after")
        let metrics = try await scenario.admin(trove, "/metrics").body
        #expect(!metrics.contains(#"trove_store_errors_total{store="redis",op="store"} 1"#), "not a store error")
        await scenario.stop(trove)
    }
}
