internal import TroveHTTP

/// What a purge counter's value says, and how a purge changes it. One `Int64` per counter, so a lookup still
/// reads every counter in one `MGET` whether purges were hard or soft:
///
/// - the high 32 bits count **hard** purges: an entry whose recorded value differs there is gone;
/// - the low 32 bits are the **soft mark** of the latest soft purge: the second (since `epoch`) from which its
///   entries' stale window counts. An entry that differs only there is stale, never fresh: it may be served while
///   one refresh runs, within its route's `stale` window counted from the mark.
///
/// Race safety is the hard purge's, unchanged: every purge, hard or soft, makes the counter a value it never had
/// (a hard purge adds 2^32; a soft one moves the mark forward by at least 1), so an entry whose fetch began
/// before the purge records an older value and is never taken for fresh. A soft mark can only move forward; a
/// mark past 2^32 carries into the hard count, which makes that purge hard (in the year 2162).
public enum Generation {
    /// What one hard purge adds.
    public static let hardStep: Int64 = 1 << 32
    static let markMask: Int64 = hardStep - 1
    /// Soft marks count seconds from 2026-01-01T00:00:00Z (Unix milliseconds), so 32 bits last 136 years.
    public static let epoch: Int64 = 1_767_225_600_000

    /// The value after a hard purge.
    public static func afterHardPurge(_ value: Int64) -> Int64 {
        value.addingClamped(hardStep)
    }

    /// The value after a soft purge whose mark is `mark` (see `mark(now:extra:)`): the mark moves to `mark`, or
    /// one second past where it was when that is later (two soft purges in one second still differ).
    public static func afterSoftPurge(_ value: Int64, mark: Int64) -> Int64 {
        value.addingClamped(max(1, mark - (value & markMask)))
    }

    /// The soft mark of a purge made at `now` (Unix milliseconds) that gives its entries `extra` milliseconds of
    /// stale window beyond their route's: the second they count from, rounded up, within 32 bits.
    public static func mark(now: Int64, extra: Int64) -> Int64 {
        let since = now.addingClamped(max(0, extra)).subtractingClamped(epoch)
        return min(markMask, max(1, since / 1000 + (since % 1000 == 0 ? 0 : 1)))
    }

    /// What happened to an entry's counters since it recorded them.
    public enum Change: Sendable, Equatable {
        case none
        /// Only soft purges: stale since `since` (Unix milliseconds, the earliest mark among the counters moved).
        case softPurged(since: Int64)
        /// A hard purge, or a counter that expired and reads 0 again: the entry must not be served at all.
        case purged
    }

    /// Compares the values an entry recorded with the counters' current ones (`EntryAddress.counters` order).
    /// The value at `skipping` (the tag-purge sequence, `EntryAddress.sequenceIndex`) is not compared.
    public static func change(recorded: [Int64], current: [Int64], skipping: Int? = nil) -> Change {
        guard recorded.count == current.count else { return .purged }
        var since: Int64?
        for (index, (old, new)) in zip(recorded, current).enumerated() where old != new && index != skipping {
            guard new > old, new >> 32 == old >> 32 else { return .purged }
            let marked = epoch.addingClamped((new & markMask).multipliedClamped(by: 1000))
            since = min(since ?? marked, marked)
        }
        return since.map { .softPurged(since: $0) } ?? .none
    }
}
