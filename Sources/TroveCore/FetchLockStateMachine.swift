internal import TroveHTTP

/// The leader of a coalesced miss, across Trove instances sharing one store: take the key's fetch lock and
/// fetch, or, when another instance holds it, wait for that instance's fetch and answer with what it stored.
///
/// Waiting is event-driven and bounded: a notice from the holder (`FetchNotifications`) or a tick (the caller
/// ticks every `tickInterval`, in case a notice is lost) makes the machine look the key up; a valid, fresh
/// entry answers, else it tries the lock again. Time passes in ticks: once they add up to the fetch window
/// (the lock's TTL, after which the holder's lock is gone anyway), the next look that finds nothing fetches on
/// its own. One lookup or lock attempt at a time, whatever number of notices and ticks arrive meanwhile.
///
/// Pure: events in, actions out; the entry's freshness is judged at the `now` given with a lookup. The server
/// performs the actions (`ProxyHandler`); the tests run two instances' machines against one lock, step by step.
public struct FetchLockStateMachine<Body: Sendable> {
    /// What the caller must do next.
    public enum Action {
        /// Ask the store for the key's fetch lock (`CacheStore.lockFetch`, for the fetch window).
        case lock
        /// Start watching the key's notices and ticking every `tickInterval`.
        case startWaiting
        /// Look the key up (`CacheStore.lookup` of `address`).
        case lookup
        /// Fetch from the origin, holding `lock` when there is one; stop watching and ticking first if waiting.
        case fetch(lock: FetchLock?, stopWaiting: Bool)
        /// Another instance stored the entry: answer with it; stop watching and ticking.
        case answer(EntryMeta, Body)
        /// Nothing to do until the next event.
        case none
    }

    private enum State {
        case idle
        /// The first lock attempt is out.
        case locking
        /// Another instance holds the lock; `waited` milliseconds of ticks so far.
        case waiting(waited: Int64, step: Step)
        case done
    }

    /// What a waiting machine has out: nothing, a lookup, or a lock attempt.
    private enum Step {
        case idle, lookingUp, locking
    }

    /// How often a waiter looks for itself, in milliseconds: notices make waiting short, looking makes it
    /// certain even when a notice is lost.
    public static var tickInterval: Int64 { 200 }

    public let address: EntryAddress
    /// How long the holder's fetch may take (the lock's TTL), in milliseconds.
    public let window: Int64
    private var state = State.idle

    public init(address: EntryAddress, window: Int64) {
        self.address = address
        self.window = window
    }

    /// True once the machine has said to fetch or to answer.
    public var isDone: Bool {
        if case .done = state { true } else { false }
    }

    public mutating func start() -> Action {
        guard case .idle = state else { return .none }
        state = .locking
        return .lock
    }

    /// The store answered a lock attempt.
    public mutating func lockCompleted(_ result: Result<FetchLock, StoreError>) -> Action {
        switch state {
        case .locking:
            switch result {
            case .success(.acquired(let token)):
                state = .done
                return .fetch(lock: .acquired(token: token), stopWaiting: false)
            case .success(.heldElsewhere):
                state = .waiting(waited: 0, step: .idle)
                return .startWaiting
            case .failure:
                // No store to coordinate through: fetch (this instance's own waiters still share it).
                state = .done
                return .fetch(lock: nil, stopWaiting: false)
            }
        case .waiting(let waited, .locking):
            switch result {
            case .success(.acquired(let token)):
                state = .done
                return .fetch(lock: .acquired(token: token), stopWaiting: true)
            case .success(.heldElsewhere):
                state = .waiting(waited: waited, step: .idle)
                return .none
            case .failure:
                state = .done
                return .fetch(lock: nil, stopWaiting: true)
            }
        case .idle, .waiting, .done:
            return .none
        }
    }

    /// The holder said its fetch ended (stored or released): look now, unless already looking.
    public mutating func notice() -> Action {
        guard case .waiting(let waited, .idle) = state else { return .none }
        state = .waiting(waited: waited, step: .lookingUp)
        return .lookup
    }

    /// `tickInterval` passed: look, in case a notice was lost (unless already looking).
    public mutating func tick() -> Action {
        guard case .waiting(let waited, let step) = state else { return .none }
        let total = waited.addingClamped(Self.tickInterval)
        guard case .idle = step else {
            state = .waiting(waited: total, step: step)
            return .none
        }
        state = .waiting(waited: total, step: .lookingUp)
        return .lookup
    }

    /// The lookup a notice or tick asked for came back; `now` judges the entry's freshness.
    public mutating func lookupCompleted(_ outcome: LookupOutcome<Body>, now: Int64) -> Action {
        guard case .waiting(let waited, .lookingUp) = state else { return .none }
        if case .found(let meta, let body, let generations, _) = outcome, !meta.isVaryMarker,
            meta.change(for: address, generations: generations) == .none, now < meta.freshUntil
        {
            state = .done
            return .answer(meta, body)
        }
        if waited >= window {
            state = .done
            return .fetch(lock: nil, stopWaiting: true)
        }
        state = .waiting(waited: waited, step: .locking)
        return .lock
    }
}
