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
        /// Its storable answer is arriving: read it from `fill` as reader `reader` (already joined; `leave` it
        /// if it is not wanted).
        case filling(EntryMeta, EntryFill<ByteBuffer>, reader: Int)
        /// Its answer cannot be shared: fetch on your own.
        case released
        /// The origin gave no answer.
        case failed(OriginError)
    }

    struct Waiter: Sendable {
        let loop: any EventLoop
        let deliver: @Sendable (Outcome) -> Void
        /// Where the body comes, piece by piece, when the answer is shared as it arrives (called on any thread).
        let read: @Sendable (EntryFill<ByteBuffer>.Event) -> Void
    }

    /// What a request for a key should do.
    enum Join {
        case lead
        case wait
        case alone
        /// The key's answer is arriving and shared: read it (joined already as `reader`).
        case shared(EntryMeta, EntryFill<ByteBuffer>, reader: Int)
    }

    private struct Flights {
        var table: CoalescingTable<Waiter>
        /// Answers being shared as they arrive, by key: only while their fetch runs.
        var shared: [String: (EntryMeta, EntryFill<ByteBuffer>)] = [:]
    }

    private let flights: Mutex<Flights>
    private let clock: any TroveClock
    /// Notices from other instances, when the store is shared (Redis); nil for the memory store.
    public let notifications: (any FetchNotifications)?

    /// - Parameter hitForMiss: how long a key whose answer could not be shared is fetched without waiting.
    public init(clock: any TroveClock, notifications: (any FetchNotifications)?, hitForMiss: Duration = .seconds(30)) {
        self.clock = clock
        self.notifications = notifications
        flights = Mutex(Flights(table: CoalescingTable(hitForMiss: hitForMiss.components.seconds * 1000)))
    }

    /// How long one fetch of `plan` may take, in milliseconds, before others stop counting on it: the origin's
    /// timeout and 5 s of slack (waiting at the origin's gate, writing the store). The store's fetch lock expires
    /// after it, and a request waiting for another's fetch gives up after it and fetches on its own.
    static func fetchWindow(_ plan: RequestPlan) -> Int64 {
        (plan.origin?.timeout ?? .seconds(30)).milliseconds.addingClamped(5000)
    }

    /// Joins the fetch of `key`, or starts it (`.lead`). A waiter's `deliver` runs on `loop`; `read` gets the body
    /// when the answer is shared as it arrives.
    func join(
        _ key: String, on loop: any EventLoop, deliver: @escaping @Sendable (Outcome) -> Void,
        read: @escaping @Sendable (EntryFill<ByteBuffer>.Event) -> Void
    ) -> Join {
        let now = clock.nowMilliseconds()
        return flights.withLock { flights -> Join in
            if let (meta, fill) = flights.shared[key], flights.table.isFetching(key) {
                // Nil: the answer outgrew what is kept and its first bytes are gone; fetch on your own.
                guard let reader = fill.join(read) else { return .alone }
                return .shared(meta, fill, reader: reader)
            }
            switch flights.table.join(key, waiter: Waiter(loop: loop, deliver: deliver, read: read), now: now) {
            case .lead: return .lead
            case .wait: return .wait
            case .alone: return .alone
            }
        }
    }

    /// The fetch of `key` has a storable answer arriving in `fill`: every waiter reads it from now on, and so do
    /// requests that join while the fetch runs. The fetch still ends with `finish`.
    func share(_ key: String, _ meta: EntryMeta, _ fill: EntryFill<ByteBuffer>) {
        let waiters = flights.withLock { flights -> [Waiter] in
            guard flights.table.isFetching(key) else { return [] }
            flights.shared[key] = (meta, fill)
            return flights.table.takeWaiters(key)
        }
        for waiter in waiters {
            let outcome: Outcome = fill.join(waiter.read).map { .filling(meta, fill, reader: $0) } ?? .released
            waiter.loop.execute { waiter.deliver(outcome) }
        }
    }

    /// Starts a background refresh of `key`, unless some fetch of it runs already.
    public func startRefresh(_ key: String) -> Bool {
        flights.withLock { $0.table.startRefresh(key) }
    }

    /// Ends the fetch of `key`: every waiter gets `outcome` on its loop.
    public func finish(_ key: String, _ outcome: Outcome) {
        let shareable: Bool
        switch outcome {
        case .entry, .filling: shareable = true
        case .released: shareable = false
        case .failed: shareable = true  // an origin failure is not an unshareable answer: do not stop coalescing
        }
        let now = clock.nowMilliseconds()
        let waiters = flights.withLock { flights in
            flights.shared[key] = nil
            return flights.table.finish(key, shareable: shareable, now: now)
        }
        for waiter in waiters {
            waiter.loop.execute { waiter.deliver(outcome) }
        }
    }

    /// Fetches running now.
    public var inFlight: Int { flights.withLock { $0.table.count } }
}
