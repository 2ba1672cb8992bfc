internal import TroveHTTP
public import NIOCore
internal import Synchronization
public import TroveCore
internal import TroveRules

/// Makes concurrent misses for one key share one origin fetch, within this instance; across instances on one
/// Redis, the store's fetch lock and `FetchNotifications` do the same (see `ProxyHandler`).
///
/// Shared by every event loop. Outcomes are delivered on each waiter's own loop.
public final class Coalescer: Sendable {
    /// What became of a fetch, for the requests that waited for it.
    public enum Outcome: Sendable {
        /// It produced a shareable answer (stored, or storable but the store was down): answer with it.
        case entry(EntryMeta, ByteBuffer)
        /// Its answer cannot be shared: fetch on your own.
        case released
        /// The origin gave no answer.
        case failed(OriginError)
    }

    struct Waiter: Sendable {
        let loop: any EventLoop
        let deliver: @Sendable (Outcome) -> Void
    }

    private let table: Mutex<CoalescingTable<Waiter>>
    private let clock: any TroveClock
    /// Notices from other instances, when the store is shared (Redis); nil for the memory store.
    public let notifications: (any FetchNotifications)?

    /// - Parameter hitForMiss: how long a key whose answer could not be shared is fetched without waiting.
    public init(clock: any TroveClock, notifications: (any FetchNotifications)?, hitForMiss: Duration = .seconds(30)) {
        self.clock = clock
        self.notifications = notifications
        table = Mutex(CoalescingTable(hitForMiss: hitForMiss.components.seconds * 1000))
    }

    /// How long one fetch of `plan` may take, in milliseconds, before others stop counting on it: the origin's
    /// timeout and 5 s of slack (waiting at the origin's gate, writing the store). The store's fetch lock expires
    /// after it, and a request waiting for another's fetch gives up after it and fetches on its own.
    static func fetchWindow(_ plan: RequestPlan) -> Int64 {
        (plan.origin?.timeout ?? .seconds(30)).milliseconds.addingClamped(5000)
    }

    /// Joins the fetch of `key`, or starts it (`.lead`). A waiter's `deliver` runs on `loop`.
    func join(_ key: String, on loop: any EventLoop, deliver: @escaping @Sendable (Outcome) -> Void) -> CoalescingTable<Waiter>.Join {
        let now = clock.nowMilliseconds()
        return table.withLock { $0.join(key, waiter: Waiter(loop: loop, deliver: deliver), now: now) }
    }

    /// Starts a background refresh of `key`, unless some fetch of it runs already.
    public func startRefresh(_ key: String) -> Bool {
        table.withLock { $0.startRefresh(key) }
    }

    /// Ends the fetch of `key`: every waiter gets `outcome` on its loop.
    public func finish(_ key: String, _ outcome: Outcome) {
        let shareable: Bool
        switch outcome {
        case .entry: shareable = true
        case .released: shareable = false
        case .failed: shareable = true  // an origin failure is not an unshareable answer: do not stop coalescing
        }
        let now = clock.nowMilliseconds()
        let waiters = table.withLock { $0.finish(key, shareable: shareable, now: now) }
        for waiter in waiters {
            waiter.loop.execute { waiter.deliver(outcome) }
        }
    }

    /// Fetches running now.
    public var inFlight: Int { table.withLock { $0.count } }
}
