public import TroveRules

/// Where a purge came from, for metrics and logs.
public enum PurgeSource: String, Sendable, CaseIterable {
    /// A write: its route's `purge:` lists, the entry a GET of its target reads, what its answer's `Location`
    /// names (RFC 9111 §4.4).
    case writeRule = "write_rule"
    /// `POST /purge` on the admin API (or `trove purge`).
    case admin
    /// A Shopify webhook.
    case webhook
}

/// What one purge became, as `Purger` reports it (once) to whoever counts and logs purges.
public struct PurgeOutcome: Sendable {
    public enum Result: Sendable, Equatable {
        /// Every counter was increased.
        case applied(PurgeReport)
        /// The store could not be reached; it applies the purge when it is back, and serves nothing meanwhile.
        case queued(StoreError)
        /// Nothing was purged: the purge names more counters than `limits.max_purge`. The sentence says what
        /// to do instead.
        case refused(String)
    }

    public let source: PurgeSource
    public let purges: PurgeSet
    public let result: Result
    /// Whatever the caller wants logged with it: the route, the webhook's topic and delivery.
    public let context: [String: String]
}

/// What a purge needs from the rules in force: how many counters one may name, and how long its counters must
/// live. Derived once per version of the rules.
public struct PurgeSettings: Sendable, Equatable {
    public let maxPurge: Int
    /// Milliseconds; see `PurgeRequest.counterLifetime`.
    public let counterLifetime: Int64

    public init(rules: RuleSet) {
        maxPurge = rules.limits.maxPurge
        counterLifetime = rules.counterLifetime
    }
}

/// Makes every purge the one way, whoever asks for it (a write, the admin API, a webhook): refused past
/// `limits.max_purge`, rendered into the counters to increase, applied to the store, and reported once to the
/// observer that counts and logs it. Callers only decide what to purge and what to answer.
public struct Purger: Sendable {
    private let observe: @Sendable (PurgeOutcome) -> Void
    /// When a soft purge happened is part of what it writes (`Generation.mark`).
    private let clock: any TroveClock

    /// `observe` is called once per purge, on the thread the store answers on.
    public init(clock: any TroveClock = SystemClock(), observe: @escaping @Sendable (PurgeOutcome) -> Void = { _ in }) {
        self.clock = clock
        self.observe = observe
    }

    /// Purges `purges` from `store`; `completion` is called once, after the observer.
    public func purge<Body>(
        _ purges: PurgeSet, from source: PurgeSource, context: [String: String] = [:], settings: PurgeSettings,
        in store: any CacheStore<Body>, completion: @escaping (PurgeOutcome.Result) -> Void
    ) {
        let observe = self.observe
        func finish(_ result: PurgeOutcome.Result) {
            observe(PurgeOutcome(source: source, purges: purges, result: result, context: context))
            completion(result)
        }
        if let refusal = purges.refusal(maxPurge: settings.maxPurge) { return finish(.refused(refusal)) }
        let request = PurgeRequest(counters: purges.counters, counterLifetime: settings.counterLifetime,
            softMark: purges.soft.map { Generation.mark(now: clock.nowMilliseconds(), extra: $0.extraStale) }, softKeys: purges.soft?.keys ?? true)
        store.purge(request) { result in
            switch result {
            case .success(let report): finish(.applied(report))
            case .failure(let error): finish(.queued(error))
            }
        }
    }
}

extension PurgeSet {
    /// The counters the purge increases, in the order stores apply them: everything, routes, tags, keys.
    public var counters: [PurgeCounter] {
        var counters: [PurgeCounter] = []
        counters.reserveCapacity(counterCount)
        if everything { counters.append(.everything) }
        counters.append(contentsOf: routes.lazy.map(PurgeCounter.route))
        counters.append(contentsOf: tags.lazy.map(PurgeCounter.tag))
        counters.append(contentsOf: keys.lazy.map(PurgeCounter.key))
        return counters
    }
}
