internal import Synchronization
internal import TroveHTTP

/// Remembers webhook deliveries already handled, so a delivery sent twice purges once, whichever instance it
/// reaches: Redis' `SET NX PX`, or a bounded table in process.
public protocol DeliveryClaims {
    /// Records `id` for `ttl` milliseconds: true the first time, false when any instance sharing the claims
    /// recorded it within that time. `completion` is called exactly once, on the calling thread.
    func claimOnce(_ id: String, ttl: Int64, completion: @escaping (Result<Bool, StoreError>) -> Void)
}

/// Delivery claims in this process (the memory store's instance), bounded: past `capacity` the claim seen
/// longest ago is forgotten (a redelivery of it would purge twice, which costs a few misses, never a stale
/// answer). Expired claims are dropped as they come due, without a scan.
public final class LocalDeliveryClaims: DeliveryClaims, Sendable {
    private let claims = Mutex(ExpiryHeap<String>())
    private let clock: any TroveClock
    let capacity: Int

    public init(clock: any TroveClock = SystemClock(), capacity: Int = 10_000) {
        self.clock = clock
        self.capacity = capacity
    }

    public func claimOnce(_ id: String, ttl: Int64, completion: (Result<Bool, StoreError>) -> Void) {
        let now = clock.nowMilliseconds()
        let first = claims.withLock { claims in
            _ = claims.popExpired(now: now)
            if claims.expiry(of: id) != nil { return false }
            if claims.count >= capacity { _ = claims.popFirst() }
            claims.set(id, expiresAt: now.addingClamped(ttl))
            return true
        }
        completion(.success(first))
    }
}
