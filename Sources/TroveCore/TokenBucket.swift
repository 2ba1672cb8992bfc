internal import TroveHTTP

/// A token bucket: `rate` tokens a second, holding at most `capacity`, for origin rate limits.
///
/// Time comes in as monotonic nanoseconds from the caller, so the arithmetic is tested without a clock.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let capacity: Double
    private var tokens: Double
    private var updatedAt: Int64

    /// Starts full.
    public init(rate: Double, capacity: Int, now: Int64) {
        self.rate = rate
        self.capacity = Double(max(1, capacity))
        self.tokens = self.capacity
        self.updatedAt = now
    }

    private mutating func refill(_ now: Int64) {
        guard now > updatedAt else { return }
        tokens = min(capacity, tokens + Double(now - updatedAt) / 1e9 * rate)
        updatedAt = now
    }

    /// Takes a token if one is there.
    public mutating func take(now: Int64) -> Bool {
        refill(now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Nanoseconds until a token is there (0 when one is).
    public mutating func wait(now: Int64) -> Int64 {
        refill(now)
        guard tokens < 1 else { return 0 }
        // Clamped: the rules refuse tiny rates, but a wait of centuries must still not trap.
        return Int64(clamping: ((1 - tokens) / rate * 1e9).rounded(.up))
    }

    /// Empties the bucket until `until`: the origin asked Trove to slow down (429 with `Retry-After`).
    public mutating func pause(until: Int64, now: Int64) {
        refill(now)
        tokens = min(tokens, 0) - Double(max(0, until - now)) / 1e9 * rate
        updatedAt = now
    }
}

/// Which requests are fetching which key right now, and which keys recently answered something that could not
/// be shared: the bookkeeping behind request coalescing.
///
/// The first miss for a key leads (it fetches); later misses wait for its outcome. A key whose last answer
/// could not be stored is remembered for `hitForMiss` (as Varnish's hit-for-miss): its requests then fetch on
/// their own at once, instead of queueing behind each other for answers they cannot share.
public struct FlightTable<Waiter> {
    /// What a request for a key should do.
    public enum Join: Equatable {
        /// Fetch, and tell the waiters afterwards (`finish`).
        case lead
        /// Another request is fetching: wait for it.
        case wait
        /// The key's answers cannot be shared lately: fetch on your own, nobody waits for you.
        case alone
    }

    private var flights: [String: [Waiter]] = [:]
    /// Keys whose answers could not be shared lately, until when: forgotten as they expire, soonest first (never
    /// by scanning the table under the lock), and bounded: past `maxUnshareable`, the soonest to expire goes.
    private var unshareable = ExpiryHeap<String>()
    public let hitForMiss: Int64
    public let maxUnshareable: Int

    /// - Parameter hitForMiss: milliseconds a key stays "unshareable" after an answer that could not be stored.
    public init(hitForMiss: Int64, maxUnshareable: Int = 100_000) {
        self.hitForMiss = hitForMiss
        self.maxUnshareable = maxUnshareable
    }

    /// Joins the fetch for `key`, or starts it.
    public mutating func join(_ key: String, waiter: Waiter, now: Int64) -> Join {
        if let until = unshareable.expiry(of: key) {
            if until > now { return .alone }
            unshareable.remove(key)
        }
        if flights[key] != nil {
            flights[key]!.append(waiter)
            return .wait
        }
        flights[key] = []
        return .lead
    }

    /// Starts a background refresh for `key` unless some fetch of it is already running.
    public mutating func startRefresh(_ key: String) -> Bool {
        guard flights[key] == nil else { return false }
        flights[key] = []
        return true
    }

    /// True while a fetch of `key` is running.
    public func isFetching(_ key: String) -> Bool { flights[key] != nil }

    /// Ends the fetch of `key` and hands back who waited for it. `shareable` false remembers the key as
    /// unshareable for `hitForMiss`.
    public mutating func finish(_ key: String, shareable: Bool, now: Int64) -> [Waiter] {
        let waiters = flights.removeValue(forKey: key) ?? []
        _ = unshareable.popExpired(now: now)
        if !shareable {
            if unshareable.expiry(of: key) == nil, unshareable.count >= maxUnshareable { _ = unshareable.popFirst() }
            unshareable.set(key, expiresAt: now.addingClamped(hitForMiss))
        } else {
            unshareable.remove(key)
        }
        return waiters
    }

    /// Fetches running now.
    public var count: Int { flights.count }

    /// Keys remembered as unshareable now (expired ones included until they are next looked at).
    public var unshareableCount: Int { unshareable.count }
}
