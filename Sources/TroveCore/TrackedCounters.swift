internal import Synchronization

/// The purge counters an in-process tier has read from Redis, kept while Redis tells this process about every
/// change to them (`tracked` mode: `CLIENT TRACKING … BCAST` on the counters' prefix), so that a hit on the tier
/// reads none of them again.
///
/// The rules that make a cached value safe to use:
/// - Values are kept only while tracking is on: from the moment the server confirmed it until the connection that
///   carries its invalidations is lost (`trackingStopped` forgets everything at once, and nothing is kept again
///   until `trackingStarted`).
/// - A value read from Redis is kept only if no invalidation at all arrived, and tracking was not restarted, between
///   asking for it (`ticket`) and its reply (`remember`): the invalidation of a counter may overtake the reply
///   that carries its old value (they come on different connections), so any invalidation in between voids it.
/// - A purge this process makes forgets its counters as soon as Redis has answered it (`forget`): its own
///   invalidation may arrive after the purge was answered to its caller.
///
/// Bounded: at most `capacity` counters in two generations; when the newer one is full the older is dropped
/// whole (its memory freed outside the lock) and counters still asked for move up as they are used, so the
/// counters hits need stay and those of entries long gone leave, with no scan.
public final class TrackedCounters: Sendable {
    /// A read's place in the order of invalidations: `remember` keeps its values only if nothing happened since.
    public struct Ticket: Sendable, Equatable {
        let epoch: UInt64
    }

    private struct State {
        var tracking = false
        /// Moves on every invalidation, reset, start and stop: a ticket from before any of them is void.
        var epoch: UInt64 = 0
        var newer: [String: Int64] = [:]
        var older: [String: Int64] = [:]
        let generationSize: Int

        mutating func value(_ key: String) -> Int64? {
            if let value = newer[key] { return value }
            guard let value = older.removeValue(forKey: key) else { return nil }
            insert(key, value)
            return value
        }

        /// Inserts; returns the generation dropped to make room, to be freed by the caller outside the lock.
        @discardableResult
        mutating func insert(_ key: String, _ value: Int64) -> [String: Int64]? {
            var dropped: [String: Int64]?
            if newer.count >= generationSize, newer[key] == nil {
                dropped = older
                older = newer
                newer = [:]
            }
            newer[key] = value
            return dropped
        }

        /// Empties both generations; returns them, to be freed by the caller outside the lock.
        mutating func forgetAll() -> ([String: Int64], [String: Int64]) {
            epoch &+= 1
            let dropped = (newer, older)
            newer = [:]
            older = [:]
            return dropped
        }
    }

    private let state: Mutex<State>

    /// `capacity`: counters kept at most (two generations of half as many).
    public init(capacity: Int) {
        state = Mutex(State(generationSize: max(1, capacity / 2)))
    }

    /// Whether cached values are being kept and used.
    public var isTracking: Bool { state.withLock { $0.tracking } }

    /// Counters kept now.
    public var count: Int { state.withLock { $0.newer.count + $0.older.count } }

    /// The values of every one of `keys`, if all are known and tracking is on; nil sends the caller to Redis.
    public func values(_ keys: [String]) -> [Int64]? {
        state.withLock { state in
            guard state.tracking else { return nil }
            var values: [Int64] = []
            values.reserveCapacity(keys.count)
            for key in keys {
                guard let value = state.value(key) else { return nil }
                values.append(value)
            }
            return values
        }
    }

    /// Taken before asking Redis for counters; nil when tracking is off (nothing would be kept).
    public func ticket() -> Ticket? {
        state.withLock { $0.tracking ? Ticket(epoch: $0.epoch) : nil }
    }

    /// Keeps `values` (read from Redis after `ticket` was taken) for `keys`, unless anything was invalidated since.
    public func remember(_ keys: [String], _ values: [Int64], ticket: Ticket) {
        var dropped: [[String: Int64]] = []
        state.withLock { state in
            guard state.tracking, state.epoch == ticket.epoch, keys.count == values.count else { return }
            for (key, value) in zip(keys, values) {
                if let old = state.insert(key, value) { dropped.append(old) }
            }
        }
        _ = dropped  // freed here, after the lock
    }

    /// Redis says these counters changed (or, with nil, that every key may have: FLUSHALL, FLUSHDB).
    public func invalidate(_ keys: [String]?) {
        let dropped = state.withLock { state -> ([String: Int64], [String: Int64])? in
            guard let keys else { return state.forgetAll() }
            state.epoch &+= 1
            for key in keys {
                state.newer.removeValue(forKey: key)
                state.older.removeValue(forKey: key)
            }
            return nil
        }
        _ = dropped
    }

    /// This process purged these counters and Redis answered: forget them before the purge is answered to its
    /// caller (their invalidation may come later), and void reads in flight.
    public func forget(_ keys: [String]) {
        invalidate(keys)
    }

    /// The server confirmed tracking (and the subscription to its invalidations): values may be kept from now on.
    public func trackingStarted() {
        let dropped = state.withLock { state in
            state.tracking = true
            return state.forgetAll()
        }
        _ = dropped
    }

    /// The connection carrying invalidations is gone (or was never made): forget everything, keep nothing more.
    public func trackingStopped() {
        let dropped = state.withLock { state in
            state.tracking = false
            return state.forgetAll()
        }
        _ = dropped
    }
}
