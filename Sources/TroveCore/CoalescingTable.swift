internal import TroveHTTP

/// Which requests are fetching which key right now, and which keys recently answered something that could not
/// be shared: the bookkeeping behind request coalescing.
///
/// The first miss for a key leads (it fetches); later misses wait for its outcome. A key whose last answer
/// could not be stored is remembered for `hitForMiss` (as Varnish's hit-for-miss): its requests then fetch on
/// their own at once, instead of queueing behind each other for answers they cannot share.
public struct CoalescingTable<Waiter> {
    /// What a request for a key should do.
    public enum Join: Equatable {
        /// Fetch, and tell the waiters afterwards (`finish`).
        case lead
        /// Another request is fetching: wait for it.
        case wait
        /// The key's answers cannot be shared lately: fetch on your own, nobody waits for you.
        case alone
    }

    private var fetching: [String: [Waiter]] = [:]
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
        if fetching[key] != nil {
            fetching[key]!.append(waiter)
            return .wait
        }
        fetching[key] = []
        return .lead
    }

    /// Starts a background refresh for `key` unless some fetch of it is already running.
    public mutating func startRefresh(_ key: String) -> Bool {
        guard fetching[key] == nil else { return false }
        fetching[key] = []
        return true
    }

    /// Hands back who waits for `key` now, and keeps its fetch running (its answer is being shared as it arrives:
    /// later requests join that instead of waiting).
    public mutating func takeWaiters(_ key: String) -> [Waiter] {
        guard let waiters = fetching[key] else { return [] }
        fetching[key] = []
        return waiters
    }

    /// True while a fetch of `key` is running.
    public func isFetching(_ key: String) -> Bool { fetching[key] != nil }

    /// Ends the fetch of `key` and hands back who waited for it. `shareable` false remembers the key as
    /// unshareable for `hitForMiss`.
    public mutating func finish(_ key: String, shareable: Bool, now: Int64) -> [Waiter] {
        let waiters = fetching.removeValue(forKey: key) ?? []
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
    public var count: Int { fetching.count }

    /// Keys remembered as unshareable now (expired ones included until they are next looked at).
    public var unshareableCount: Int { unshareable.count }
}
