internal import TroveHTTP
internal import NIOCore
internal import NIOHTTP1
internal import Synchronization
internal import TroveRules

/// Remembers, on one event loop, the plans of recent requests whose plan depends only on their method and
/// URL, so a repeated request skips parsing its target and rendering its key and tags.
///
/// `RuleSet.plan(for:)` is a pure function of the rules, the method, the target and the headers; the headers
/// matter only when the request carries credentials (`clients.credentialHeaders`) or the route's templates read
/// a header or cookie. Plans of those requests are never remembered, so a remembered plan is always the one
/// `plan(for:)` would make. A reload empties the cache (a new `RulesState.Loaded`).
///
/// Lives on its loop only; bounded (emptied when full).
final class PlanCache {
    /// Only GET and HEAD plans are remembered.
    struct Key: Hashable {
        let isHead: Bool
        let target: String
    }

    static let capacity = 4096

    private var plans: [Key: RequestPlan] = [:]
    /// The rules the plans were made with. Held, not just identified: a freed object's address can be reused
    /// by the next rules loaded, which must not look like the same rules.
    private var rules: RulesState.Loaded?
    private(set) var hits = 0

    var count: Int { plans.count }

    /// `now`: when the request arrived (a token's expiry is checked against it); read only when a plan is made,
    /// not for a remembered one.
    func plan(for head: HTTPRequestHead, headers: [Header], loaded: RulesState.Loaded, now: () -> Int64) -> RequestPlan {
        if rules !== loaded {
            plans.removeAll(keepingCapacity: true)
            rules = loaded
        }
        let key = Key(isHead: head.method == .HEAD, target: head.uri)
        let eligible = (head.method == .GET || head.method == .HEAD)
            && !ClientSettings.carriesCredentials(headers, among: loaded.credentialHeaders)
        if eligible, let plan = plans[key] {
            hits += 1
            return plan
        }
        let plan = loaded.rules.plan(for: RequestHead(method: head.method.token, target: head.uri, headers: headers, receivedAt: now()))
        if eligible, let route = plan.route, !route.readsHeaders, case .cache = plan.decision {
            if plans.count >= Self.capacity { plans.removeAll(keepingCapacity: true) }
            plans[key] = plan
        }
        return plan
    }
}

/// Each event loop's `PlanCache`.
public final class PlanCaches: Sendable {
    private let caches = Mutex<[ObjectIdentifier: NIOLoopBound<PlanCache>]>([:])

    public init() {}

    /// The cache of `loop`, made on first use. Call on that loop (once per connection, not per request).
    func cache(for loop: any EventLoop) -> PlanCache {
        caches.withLock { caches in
            if let bound = caches[ObjectIdentifier(loop)] { return bound.value }
            let cache = PlanCache()
            caches[ObjectIdentifier(loop)] = NIOLoopBound(cache, eventLoop: loop)
            return cache
        }
    }
}
