internal import Foundation
internal import Synchronization
internal import TroveCore
internal import TroveRules

/// The most recent purges, whoever made them, for `GET /purges`: what an operator asks first when a purge "did
/// not purge". Bounded twice: at most `capacity` purges (the oldest forgotten first, in O(1)), and at most
/// `namesKept` of each list a purge named (a purge of 10,000 tags is kept as its first names and its counts).
final class PurgeHistory: Sendable {
    /// One purge as `GET /purges` shows it.
    struct Record: Codable, Sendable, Equatable {
        /// When the purge was made (ISO 8601, the injected clock).
        var at: String
        var source: String
        var mode: Mode
        /// Milliseconds of stale window a soft purge gave beyond each route's own.
        var extraStaleMs: Int64?
        var result: Result
        /// Why, when refused or queued.
        var reason: String?
        var all: Bool
        var routes: [String]
        var tags: [String]
        var keys: [String]
        /// How many of each the purge named, when more than are kept.
        var counts: Counts
        /// The counters moved: as many as were named when applied or queued, none when refused.
        var countersMoved: Int
        /// What the caller logged with it: the write's route, the webhook's topic and delivery.
        var context: [String: String]

        enum Mode: String, Codable, Sendable {
            case hard, soft
        }

        enum Result: String, Codable, Sendable {
            case applied
            /// The store was away: applied when it is back.
            case queued
            /// Past `limits.max_purge`: nothing was purged.
            case refused

            /// What `POST /purge` answers for it.
            var status: Int {
                switch self {
                case .applied: 200
                case .queued: 202
                case .refused: 413
                }
            }
        }

        struct Counts: Codable, Sendable, Equatable {
            var routes: Int
            var tags: Int
            var keys: Int
        }
    }

    let capacity: Int
    static let namesKept = 20
    private let records: Mutex<(ring: [Record], next: Int)>

    init(capacity: Int = 100) {
        self.capacity = max(1, capacity)
        records = Mutex(([], 0))
    }

    /// Keeps `outcome`, made at `milliseconds`, and returns what was kept.
    @discardableResult
    func record(_ outcome: PurgeOutcome, at milliseconds: Int64) -> Record {
        let purges = outcome.purges
        var result = Record.Result.applied
        var reason: String?
        var moved = purges.counterCount
        switch outcome.result {
        case .applied: break
        case .queued(let error):
            result = .queued
            reason = "the store is unavailable (\(error)); the purge is applied when it is back"
        case .refused(let why):
            result = .refused
            reason = why
            moved = 0
        }
        let record = Record(
            at: AccessLogHandler.timestamp(Date(timeIntervalSince1970: Double(milliseconds) / 1000)), source: outcome.source.rawValue,
            mode: purges.soft == nil ? .hard : .soft, extraStaleMs: purges.soft.map(\.extraStale), result: result, reason: reason,
            all: purges.everything, routes: Array(purges.routes.prefix(Self.namesKept)), tags: Array(purges.tags.prefix(Self.namesKept)),
            keys: Array(purges.keys.prefix(Self.namesKept)),
            counts: Record.Counts(routes: purges.routes.count, tags: purges.tags.count, keys: purges.keys.count),
            countersMoved: moved, context: outcome.context)
        records.withLock { records in
            if records.ring.count < capacity {
                records.ring.append(record)
            } else {
                records.ring[records.next] = record
            }
            records.next = (records.next + 1) % capacity
        }
        return record
    }

    /// The purges kept, newest first.
    var recent: [Record] {
        let (ring, next) = records.withLock { ($0.ring, $0.next) }
        guard ring.count == capacity else { return ring.reversed() }
        return Array((ring[next...] + ring[..<next]).reversed())
    }
}
