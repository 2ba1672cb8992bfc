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
