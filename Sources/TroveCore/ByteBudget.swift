internal import Synchronization

/// Bytes that all requests together may hold in memory at once (request bodies being received, origin answers
/// being received), so that many clients each within their own limit cannot together exhaust the process:
/// ten 300 MB answers at once, or ten connections each holding a 31 MiB partial upload.
///
/// A reservation that does not fit is refused whole, and the caller answers 503 (or from a stale entry);
/// nothing waits. The capacity is passed with each reservation, so a reload's new limit applies at once.
public final class ByteBudget: Sendable {
    private let used = Atomic<Int>(0)

    public init() {}

    /// Bytes reserved now.
    public var inUse: Int { used.load(ordering: .relaxed) }

    /// Reserves `bytes` if the total stays within `capacity`; false (and nothing reserved) otherwise.
    public func reserve(_ bytes: Int, capacity: Int) -> Bool {
        guard bytes > 0 else { return true }
        var current = used.load(ordering: .relaxed)
        while true {
            let (total, overflow) = current.addingReportingOverflow(bytes)
            guard !overflow, total <= capacity else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: total, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Gives back bytes reserved earlier.
    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.subtract(bytes, ordering: .relaxed)
    }
}

/// What one message holds of a `ByteBudget`: grows as its bytes arrive, and gives everything back when it is
/// dropped, however the exchange ended (answered, failed, connection closed), so nothing leaks from the budget.
///
/// Grown from one thread at a time (an event loop, the curl thread, or under an `EntryFill`'s lock); the count
/// is atomic so that it may be handed between them.
public final class BudgetReservation: Sendable {
    private let budget: ByteBudget
    private let capacity: Int
    private let held = Atomic<Int>(0)

    public init(budget: ByteBudget, capacity: Int) {
        self.budget = budget
        self.capacity = capacity
    }

    public var bytes: Int { held.load(ordering: .relaxed) }

    /// Reserves `more` bytes; false when the budget has no room for them.
    public func grow(by more: Int) -> Bool {
        guard budget.reserve(more, capacity: capacity) else { return false }
        held.add(more, ordering: .relaxed)
        return true
    }

    deinit {
        budget.release(held.load(ordering: .relaxed))
    }
}
