internal import Foundation

/// The time source of the decision core. Freshness, ages and stale windows read the time only through this,
/// so tests drive them with a manual clock instead of sleeping.
public protocol TroveClock: Sendable {
    /// Wall-clock time as milliseconds since the Unix epoch. Entries store it, so it must mean the same on
    /// every Trove instance that shares a Redis.
    func nowMilliseconds() -> Int64
}

/// The real wall clock.
public struct SystemClock: TroveClock {
    public init() {}

    public func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
