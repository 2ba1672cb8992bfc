internal import Synchronization
public import TroveRules

/// What the routes in shadow would have done, gathered as they run: per route, how many answers would have been
/// hits, misses and stale answers, the last few stale ones with what differed, and the writes Trove saw (each with
/// what it purged), so that `diagnosis` can say why an entry went stale. One per process, shared by every loop.
///
/// Bounded: routes are the rules' (a reload keeps the counts of routes that keep their names), each keeps at most
/// `maxExamples` examples and `maxParts` distinct differing parts, and the writes are a ring of `maxWrites`.
/// Recording takes the lock for a few appends; the diagnosis, which walks the writes, runs on the admin path.
public final class ShadowReport: Sendable {
    /// A stale answer Trove would have served: what, how old, what differed.
    public struct Example: Sendable, Equatable, Codable {
        public var key: String
        /// The request's path and query.
        public var target: String
        public var storedAt: Int64
        public var seenAt: Int64
        public var differences: [String]
        /// The tags the entry carries.
        public var tags: [String]
        /// In a summary: how old the entry was when it was found stale, in milliseconds, and the writes Trove saw
        /// between its store and then (at most `maxWritesPerExample`, the first ones), each with what it purged.
        public var ageMilliseconds: Int64?
        public var writesSince: [Write]?

        enum CodingKeys: String, CodingKey {
            case key, target, differences, tags
            case storedAt = "stored_at", seenAt = "seen_at", ageMilliseconds = "age_ms", writesSince = "writes_since"
        }
    }

    public static let maxWritesPerExample = 5

    /// A write that reached the origin through Trove, and what it purged.
    public struct Write: Sendable, Equatable, Codable {
        public var at: Int64
        public var route: String
        public var method: String
        public var target: String
        public var purged: PurgeSet
    }

    /// One route's counts.
    public struct RouteCounts: Sendable, Equatable, Codable {
        /// Would have been answered from the store, and the origin's answer is the same.
        public var hits = 0
        /// Would have been answered from the store, but the origin's answer differs.
        public var stale = 0
        /// Would have gone to the origin (and was stored, if storable).
        public var misses = 0
        /// Would have been answered from the store, but could not be compared (why → how often).
        public var notCompared: [String: Int] = [:]
        /// How often each part differed among the stale answers.
        public var parts: [String: Int] = [:]
        public var examples: [Example] = []

        enum CodingKeys: String, CodingKey {
            case hits, stale, misses, parts, examples
            case notCompared = "not_compared"
        }
    }

    public static let maxExamples = 5
    public static let maxParts = 32
    public static let maxWrites = 1000

    private struct State {
        var routes: [String: RouteCounts] = [:]
        var writes: [Write] = []
        /// Where the ring's next write goes once it is full.
        var nextWrite = 0
        /// Writes before this time were dropped from the ring: the evidence before it is incomplete.
        var completeSince: Int64 = .min
        var since: Int64

        /// Changes `route`'s counts, unless `maxRoutes` others are counted already.
        mutating func counting(_ route: String, _ change: (inout RouteCounts) -> Void) {
            guard routes[route] != nil || routes.count < ShadowReport.maxRoutes else { return }
            change(&routes[route, default: RouteCounts()])
        }
    }

    /// What a request in shadow came to, as `observe` hears of it (the metrics count these).
    public enum Outcome: String, Sendable, CaseIterable {
        case hit, stale, miss
        case notCompared = "not_compared"
    }

    /// Routes counted at once: the rules' routes, and those of earlier rules (reloads) until a reset.
    public static let maxRoutes = 1024
    /// Why a comparison was not made: each different text is counted apart, up to this many per route.
    static let maxReasons = 16

    private let state: Mutex<State>
    private let clock: any TroveClock
    private let observe: @Sendable (String, Outcome) -> Void

    /// - Parameter observe: told of every outcome, outside the lock (`ProxyMetrics.recordShadow`).
    public init(clock: any TroveClock = SystemClock(), observe: @escaping @Sendable (String, Outcome) -> Void = { _, _ in }) {
        self.clock = clock
        self.observe = observe
        self.state = Mutex(State(since: clock.nowMilliseconds()))
    }

    /// How many routes are counted (for the bound's test).
    var routesCounted: Int { state.withLock { $0.routes.count } }

    public func recordMiss(route: String) {
        observe(route, .miss)
        state.withLock { state in state.counting(route) { $0.misses += 1 } }
    }

    public func recordNotCompared(route: String, why: String) {
        observe(route, .notCompared)
        state.withLock { state in
            state.counting(route) { counts in
                let reason = counts.notCompared[why] != nil || counts.notCompared.count < Self.maxReasons ? why : "other"
                counts.notCompared[reason, default: 0] += 1
            }
        }
    }

    /// A would-be hit compared with the origin's answer: `differences` empty when they were the same.
    public func recordHit(route: String, key: String, target: String, storedAt: Int64, tags: [String], differences: [String]) {
        let now = clock.nowMilliseconds()
        observe(route, differences.isEmpty ? .hit : .stale)
        state.withLock { state in
            guard state.routes[route] != nil || state.routes.count < Self.maxRoutes else { return }
            var counts = state.routes[route, default: RouteCounts()]
            defer { state.routes[route] = counts }
            guard !differences.isEmpty else { return counts.hits += 1 }
            counts.stale += 1
            for part in differences where counts.parts[part] != nil || counts.parts.count < Self.maxParts {
                counts.parts[part, default: 0] += 1
            }
            if counts.examples.count == Self.maxExamples { counts.examples.removeFirst() }
            counts.examples.append(Example(key: key, target: target, storedAt: storedAt, seenAt: now, differences: differences, tags: tags))
        }
    }

    /// A write the origin accepted, with what it purged (nothing, for a write no rule purges for).
    public func recordWrite(route: String, method: String, target: String, purged: PurgeSet) {
        let write = Write(at: clock.nowMilliseconds(), route: route, method: method, target: target, purged: purged)
        state.withLock { state in
            guard state.writes.count == Self.maxWrites else { return state.writes.append(write) }
            state.completeSince = state.writes[state.nextWrite].at
            state.writes[state.nextWrite] = write
            state.nextWrite = (state.nextWrite + 1) % Self.maxWrites
        }
    }

    /// Forgets everything (`DELETE /shadow`): after fixing the rules, a report of the new rules alone.
    public func reset() {
        let now = clock.nowMilliseconds()
        state.withLock { $0 = State(since: now) }
    }

    /// The counts, the examples and a diagnosis of each route with stale answers, under `rules`.
    public func summary(rules: RuleSet) -> ShadowSummary {
        let (routes, writes, completeSince, since) = state.withLock { state in
            (state.routes, Array(state.writes[state.nextWrite...] + state.writes[..<state.nextWrite]), state.completeSince, state.since)
        }
        var summaries: [ShadowSummary.Route] = []
        for route in rules.shadowRoutes {
            var counts = routes[route.name] ?? RouteCounts()
            for index in counts.examples.indices {
                let example = counts.examples[index]
                counts.examples[index].ageMilliseconds = example.seenAt - example.storedAt
                counts.examples[index].writesSince = Array(writes.lazy.filter { $0.at > example.storedAt && $0.at <= example.seenAt }
                    .prefix(Self.maxWritesPerExample))
            }
            summaries.append(ShadowSummary.Route(name: route.name, match: route.match, counts: counts,
                diagnosis: ShadowDiagnosis.diagnose(route: route, counts: counts, writes: writes, completeSince: completeSince, rules: rules)))
        }
        return ShadowSummary(since: since, now: clock.nowMilliseconds(), routes: summaries, writesSeen: writes.count,
            recentWrites: Array(writes.suffix(20)))
    }
}

/// `GET /shadow`: what the routes in shadow would have done, and why some would have served stale answers.
public struct ShadowSummary: Sendable, Equatable, Codable {
    public struct Route: Sendable, Equatable, Codable {
        public var name: String
        public var match: String
        public var counts: ShadowReport.RouteCounts
        /// Would-be hits (stale ones too) over every answer that would have come from the store or the origin.
        public var hitRatio: Double
        /// Nil when nothing stale was seen.
        public var diagnosis: ShadowDiagnosis?

        enum CodingKeys: String, CodingKey {
            case name, match, counts, diagnosis
            case hitRatio = "hit_ratio"
        }

        public init(name: String, match: String, counts: ShadowReport.RouteCounts, diagnosis: ShadowDiagnosis?) {
            self.name = name
            self.match = match
            self.counts = counts
            self.diagnosis = diagnosis
            let served = counts.hits + counts.stale + counts.misses
            hitRatio = served == 0 ? 0 : Double(counts.hits + counts.stale) / Double(served)
        }
    }

    /// Milliseconds since 1970: when counting began (start, or the last reset), and now.
    public var since: Int64
    public var now: Int64
    public var routes: [Route]
    public var writesSeen: Int
    /// The last writes seen, oldest first.
    public var recentWrites: [ShadowReport.Write]

    enum CodingKeys: String, CodingKey {
        case since, now, routes
        case writesSeen = "writes_seen", recentWrites = "recent_writes"
    }
}
