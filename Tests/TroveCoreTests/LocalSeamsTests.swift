import Testing
import TroveCore
import TroveTestSupport

/// The fetch locks and delivery claims of a store one instance uses alone (the memory store's).
@Suite struct LocalSeamsTests {
    let clock = ManualClock()

    private func claim(_ claims: LocalDeliveryClaims, _ id: String, ttl: Int64 = 60_000) -> Bool? {
        var first: Bool?
        claims.claimOnce(id, ttl: ttl) { first = try? $0.get() }
        return first
    }

    /// A delivery is claimed once within its window, again after it, and the table is bounded: past its capacity
    /// the claim seen longest ago is forgotten.
    @Test func deliveriesAreClaimedOnceAndBounded() {
        let claims = LocalDeliveryClaims(clock: clock, capacity: 3)
        #expect(claim(claims, "a") == true)
        #expect(claim(claims, "a") == false)
        clock.advance(by: .seconds(61))
        #expect(claim(claims, "a") == true, "past its window")
        #expect(claim(claims, "b") == true)
        #expect(claim(claims, "c") == true)
        #expect(claim(claims, "d") == true, "at capacity: the oldest is forgotten")
        #expect(claim(claims, "a") == true, "forgotten (a redelivery purges twice, never serves stale)")
        #expect(claim(claims, "d") == false)
    }

    /// One instance coalesces in process: its fetch lock is always its own.
    @Test func localFetchLocksAreAlwaysGranted() {
        var lock: FetchLock?
        LocalFetchLocks().lockFetch("k", ttl: 1000) { lock = try? $0.get() }
        #expect(lock == .acquired(token: "local"))
    }
}
