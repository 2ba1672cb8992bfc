/// The time source of the decision core. Freshness, stale windows and backoff read the time only through
/// this, so tests drive them with a manual clock instead of sleeping.
public protocol TroveClock: Sendable {
    /// Wall-clock time as milliseconds since the Unix epoch: entries store it, so it must mean the same on
    /// every Trove instance that shares a Redis.
    func nowMilliseconds() -> Int64
}
