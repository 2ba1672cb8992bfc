internal import TroveHTTP
internal import NIOCore
internal import NIOHTTP1
internal import Synchronization
internal import TroveRules
internal import TroveCore

/// Remembers, on one event loop, the plans of recent requests whose plan depends only on their method and
/// URL, so a repeated request skips parsing its target and rendering its key and tags.
///
/// `RuleSet.plan(for:)` is a pure function of the rules, the method, the target and the headers; the headers
/// matter only when the request carries credentials (`clients.credentialHeaders`) or the route's templates read
/// a header or cookie. Plans of those requests are never remembered, so a remembered plan is always the one
/// `plan(for:)` would make. A reload empties the cache (a new `RulesState.Loaded`).
///
/// The hit fast path (`HitFastPath`) finds a plan by the raw bytes of the request target, so the key holds bytes,
/// not a `String`: a lookup builds nothing.
///
/// Lives on its loop only; bounded (emptied when full).
final class PlanCache {
    /// Only GET and HEAD plans are remembered.
    struct Key: Hashable {
        let isHead: Bool
        /// The request target's bytes, exactly as received.
        let target: ByteBuffer
    }

    /// A remembered plan, with what a hit needs besides: the entry's address and the route's counters. A class: the
    /// fast path takes one on every hit, and a reference is one retain where the plan's fields are dozens.
    final class Remembered {
        let plan: RequestPlan
        let address: EntryAddress
        let counters: RouteCounters

        init(plan: RequestPlan, address: EntryAddress, counters: RouteCounters) {
            self.plan = plan
            self.address = address
            self.counters = counters
        }
    }

    static let capacity = 4096

    private var plans: [Key: Remembered] = [:]
    private let stats: ProxyStats
    /// The rules the plans were made with. Held, not just identified: a freed object's address can be reused
    /// by the next rules loaded, which must not look like the same rules.
    private var rules: RulesState.Loaded?
    /// `RulesState.version` when the plans' rules were found in force (read before them, so never newer).
    private var rulesVersion = -1
    /// The rules name as a credential a header a plain read may carry (`RequestFraming.harmlessNames`): the fast
    /// path cannot tell such a request from one without, so it takes none.
    private var credentialsLookHarmless = false
    private(set) var hits = 0

    var count: Int { plans.count }

    /// `stats`: whose counters a remembered plan's requests are counted in.
    init(stats: ProxyStats = ProxyStats()) {
        self.stats = stats
    }

    /// The plan remembered for a GET (or HEAD) of `target` (its bytes as received) under `loaded`, if any; for a
    /// request without credentials (the caller checks).
    /// `version`: `RulesState.version` now (a plan made under older rules is not handed out).
    func remembered(isHead: Bool, target: ByteBuffer, version: Int) -> Remembered? {
        guard version == rulesVersion, !credentialsLookHarmless, let found = plans[Key(isHead: isHead, target: target)] else { return nil }
        hits += 1
        return found
    }

    /// `now`: when the request arrived (a token's expiry is checked against it); read only when a plan is made,
    /// not for a remembered one.
    /// `version`: `RulesState.version`, read before `loaded` was (see `remembered`).
    func plan(for head: HTTPRequestHead, headers: [Header], loaded: RulesState.Loaded, version: Int = -1, now: () -> Int64) -> RequestPlan {
        if rules !== loaded {
            plans.removeAll(keepingCapacity: true)
            rules = loaded
            credentialsLookHarmless = RequestFraming.harmlessNames.contains { loaded.credentialHeaders.contains($0) }
        }
        rulesVersion = version
        let eligible = (head.method == .GET || head.method == .HEAD)
            && !ClientSettings.carriesCredentials(headers, among: loaded.credentialHeaders)
        let key = eligible ? Key(isHead: head.method == .HEAD, target: ByteBuffer(string: head.uri)) : nil
        if let key, let found = plans[key] {
            hits += 1
            return found.plan
        }
        let plan = loaded.rules.plan(for: RequestHead(method: head.method.token, target: head.uri, headers: headers, receivedAt: now()))
        // A route in shadow is never answered from a remembered plan: the fast path answers hits, and shadow never does.
        if let key, let route = plan.route, !route.readsHeaders, case .cache(let target) = plan.decision, target.shadow == nil {
            if plans.count >= Self.capacity { plans.removeAll(keepingCapacity: true) }
            // The same address `ReadThroughStateMachine.start` makes for this plan.
            let address = EntryAddress(key: target.key, route: route.name, tags: target.tags, learnsTags: target.policy.tagsFrom != nil)
            plans[key] = Remembered(plan: plan, address: address, counters: stats.counters(route: route.name))
        }
        return plan
    }
}

/// Each event loop's `PlanCache`.
public final class PlanCaches: Sendable {
    private let caches = Mutex<[ObjectIdentifier: NIOLoopBound<PlanCache>]>([:])

    private let stats: ProxyStats

    public init(stats: ProxyStats = ProxyStats()) {
        self.stats = stats
    }

    /// The cache of `loop`, made on first use. Call on that loop (once per connection, not per request).
    func cache(for loop: any EventLoop) -> PlanCache {
        caches.withLock { caches in
            if let bound = caches[ObjectIdentifier(loop)] { return bound.value }
            let cache = PlanCache(stats: stats)
            caches[ObjectIdentifier(loop)] = NIOLoopBound(cache, eventLoop: loop)
            return cache
        }
    }
}
