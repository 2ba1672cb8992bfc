internal import Synchronization
internal import TroveHTTP

/// Purge counters kept in this process: the memory store's, where no Redis keeps them. Each purge moves the
/// counters it names; an entry recorded their values when it was stored and may be served while they still have
/// them, exactly as with Redis' counters.
///
/// Bounded: counters expire after the purge's `counterLifetime` (every entry that recorded an older value is gone
/// by then) and are dropped as they come due, with no scan; at most `maxCounters` are kept, and a purge that would
/// need one more moves `everything` instead (see `makeRoom`).
public final class LocalCounters: Sendable {
    private let state: Mutex<State>
    private let clock: any TroveClock

    /// - Parameter maxCounters: counters kept at once (each costs about 200 bytes).
    public init(maxCounters: Int, clock: any TroveClock = SystemClock()) {
        self.state = Mutex(State(maxCounters: maxCounters))
        self.clock = clock
    }

    /// The values of `address`'s counters, in its order, then those of `more`.
    public func values(of address: EntryAddress, and more: [PurgeCounter] = []) -> [Int64] {
        let now = clock.nowMilliseconds()
        return state.withLock { state in
            var values: [Int64] = []
            values.reserveCapacity(address.counterCount + more.count)
            address.forEachCounter { values.append(state.value($0, now: now)) }
            for counter in more { values.append(state.value(counter, now: now)) }
            return values
        }
    }

    /// The values of `counters`, in their order.
    public func values(_ counters: [PurgeCounter]) -> [Int64] {
        let now = clock.nowMilliseconds()
        return state.withLock { state in counters.map { state.value($0, now: now) } }
    }

    /// Moves every counter `request` names (a tag's purge stamp first, see `OriginTags`).
    public func apply(_ request: PurgeRequest) {
        let now = clock.nowMilliseconds()
        state.withLock { state in
            for counter in request.counters {
                if case .tag(let tag) = counter { state.stampTagPurge(tag, now: now, lifetime: request.counterLifetime) }
                // `everything` never expires: it is one counter, and every entry depends on it.
                state.increase(counter, now: now, lifetime: counter == .everything ? nil : request.counterLifetime,
                    softMark: request.softMark(for: counter))
            }
        }
    }

    private struct State {
        var counters: [PurgeCounter: (value: Int64, expiresAt: Int64?)] = [:]
        /// The counters that expire, soonest first: expired ones are dropped without a scan.
        var expiries = ExpiryHeap<PurgeCounter>()
        let maxCounters: Int
        /// How many tags were purged, ever (`PurgeCounter.tagSequence`): kept apart from the counters, so that
        /// clearing them when they are too many never takes it back.
        var tagSequence: Int64 = 0

        init(maxCounters: Int) {
            self.maxCounters = maxCounters
        }

        func value(_ counter: PurgeCounter, now: Int64) -> Int64 {
            if case .tagSequence = counter { return tagSequence }
            guard let stored = counters[counter] else { return 0 }
            if let expiresAt = stored.expiresAt, expiresAt <= now { return 0 }
            return stored.value
        }

        /// Increases a counter. Counters expire after `lifetime`; expired ones are dropped as they come due, so
        /// templated tags (`event:{id}`) and writes to ever new URLs cannot grow the table forever.
        mutating func increase(_ counter: PurgeCounter, now: Int64, lifetime: Int64?, softMark: Int64?) {
            for expired in expiries.popExpired(now: now) { counters[expired] = nil }
            let current = value(counter, now: now)
            let next = softMark.map { Generation.afterSoftPurge(current, mark: $0) } ?? Generation.afterHardPurge(current)
            let expiresAt = lifetime.map { now.addingClamped($0) }
            makeRoom(for: counter, now: now)
            counters[counter] = (next, expiresAt)
            if let expiresAt { expiries.set(counter, expiresAt: expiresAt) } else { expiries.remove(counter) }
        }

        /// When the table is full of counters that have not expired (writes to a flood of new URLs) and `counter`
        /// is not among them: dropping one would make entries that recorded its old value valid again, so
        /// `everything` is increased instead, which invalidates every entry at once, after which no other
        /// counter matters.
        private mutating func makeRoom(for counter: PurgeCounter, now: Int64) {
            guard counters[counter] == nil, counters.count >= maxCounters else { return }
            let everything = value(.everything, now: now)
            counters.removeAll(keepingCapacity: true)
            expiries = ExpiryHeap()
            counters[.everything] = (Generation.afterHardPurge(everything), nil)
        }

        /// Moves the tag-purge sequence on and stamps `tag` with it, before the tag's counter moves (`OriginTags`).
        mutating func stampTagPurge(_ tag: String, now: Int64, lifetime: Int64) {
            for expired in expiries.popExpired(now: now) { counters[expired] = nil }
            tagSequence += 1
            let counter = PurgeCounter.tagPurged(tag)
            makeRoom(for: counter, now: now)
            let expiresAt = now.addingClamped(lifetime)
            counters[counter] = (tagSequence, expiresAt)
            expiries.set(counter, expiresAt: expiresAt)
        }
    }
}
