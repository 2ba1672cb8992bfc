internal import TroveHTTP
public import TroveCore
internal import Synchronization

/// A clock that moves only when a test says so, for TTL and stale logic without sleeping.
public final class ManualClock: TroveClock, Sendable {
    private let now: Mutex<Int64>

    /// Starts at `milliseconds` since the epoch (a fixed, recognisable instant by default).
    public init(milliseconds: Int64 = 1_800_000_000_000) {
        now = Mutex(milliseconds)
    }

    public func nowMilliseconds() -> Int64 {
        now.withLock { $0 }
    }

    /// Moves the clock forward.
    public func advance(by duration: Duration) {
        now.withLock { $0 += duration.milliseconds }
    }
}
