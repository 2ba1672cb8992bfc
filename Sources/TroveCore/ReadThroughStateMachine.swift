public import TroveHTTP
public import TroveRules

/// Decides, one step at a time, what a request needs: a lookup, a fetch, a store, a purge, an answer.
///
/// It does no I/O. The server feeds it events (`start`, `lookupCompleted`, `originResponded`, …), each of which
/// returns the one `Action` to perform next; the bodies of entries and answers stay with the server, the
/// machine sees only heads. The request's steps follow Varnish's vocabulary: recv → lookup → hit | miss →
/// fetch → (store) → deliver, or pass, or a write that purges after the origin accepted it.
///
/// Staleness: within a route's `stale` window after expiry, an entry is answered at once and refreshed in
/// the background (`respondAndRefresh`); within its `stale_if_error` window, it is answered instead of an
/// origin failure (connection error, timeout, 5xx, 429, or the origin's limit reached). A purged entry is
/// never served, not even stale.
public struct ReadThroughStateMachine: Sendable {
    /// The next thing the server must do.
    public enum Action: Sendable, Equatable {
        /// Look `EntryAddress.key` up, with the counters it depends on.
        case lookup(EntryAddress)
        /// Send the request to the route's origin.
        case fetch(Fetch)
        /// Store the origin's answer (with this head; the server adds the body), then answer.
        case store(PendingStore, then: ResponsePlan)
        /// Answer the client with the origin's answer as it arrives, and keep it for the store; once it is whole,
        /// tell `bodyReceived` (or `bodyFailed`).
        case respondWhileStoring(PendingStore, then: ResponsePlan)
        /// The answer went out already (streamed): record this outcome of it.
        case finished(ResponsePlan)
        /// Apply the write's purges, then answer.
        case purge(PurgeSet, then: ResponsePlan)
        /// Answer the client.
        case respond(ResponsePlan)
        /// Answer the client from the stale entry now, and refresh the entry in the background (once, however
        /// many requests ask: the server's fetch coordination decides).
        case respondAndRefresh(ResponsePlan, Refresh)
    }

    /// How to send the request to the origin.
    public struct Fetch: Sendable, Equatable {
        /// The method to send: `GET` for a HEAD on a cacheable route, so the full answer can be stored.
        public var method: String
        /// Whether the client's body goes along (writes and passed requests).
        public var sendsBody: Bool
        /// The answer may be stored, so ask for it uncompressed (see `HeaderPolicy`).
        public var forStorage: Bool
        /// Concurrent misses for the same key may share this fetch (see the server's `Coalescer`).
        public var coalesce: Bool
        /// `If-None-Match` / `If-Modified-Since` from a stale entry's validators: the origin may answer 304
        /// and the entry is refreshed without its body being sent again.
        public var validators: [Header]

        public init(method: String, sendsBody: Bool, forStorage: Bool, coalesce: Bool = false, validators: [Header] = []) {
            self.method = method
            self.sendsBody = sendsBody
            self.forStorage = forStorage
            self.coalesce = coalesce
            self.validators = validators
        }
    }

    /// An entry to store, without its body.
    public struct PendingStore: Sendable, Equatable {
        public var address: EntryAddress
        public var meta: EntryMeta
        /// Milliseconds from now until the store may drop it.
        public var expireAfter: Int64
        /// The origin answered 304 to a revalidation: store the entry's own body (the one looked up) again
        /// under the refreshed head, not the origin's empty one.
        public var reusesStoredBody = false
        /// The answer varies: it is stored as a variant, and this marker goes under the request's cache key
        /// (`address.counterKey`) to say which headers pick the variant.
        public var marker: EntryMeta?
    }

    /// A background refresh of a stale entry: what to fetch again, and the counters read before it began.
    public struct Refresh: Sendable, Equatable {
        public var address: EntryAddress
        public var generations: [Int64]
        /// The stale entry being refreshed, for its validators.
        public var entry: EntryMeta?

        public init(address: EntryAddress, generations: [Int64], entry: EntryMeta? = nil) {
            self.address = address
            self.generations = generations
            self.entry = entry
        }
    }

    /// What to answer with.
    public struct ResponsePlan: Sendable, Equatable {
        public enum Source: Sendable, Equatable {
            /// The entry the lookup (or the fetch this request waited for) found.
            case entry
            /// The origin's answer.
            case origin
            /// Trove's own answer: a status and a short text saying why.
            case trove(status: Int, message: String)
        }

        public var source: Source
        /// Nil for Trove's own answers (RFC 9211: a cache does not describe responses it generates).
        public var cacheStatus: CacheStatus?
        /// The `Age` header, in seconds, for answers from an entry.
        public var age: Int?
        /// A HEAD: headers only.
        public var omitBody: Bool
        /// The `Retry-After` header, in seconds, when Trove answers 503 because the origin is at its limit.
        public var retryAfter: Int?
        /// Answer 304 Not Modified instead of the entry: the client's conditional request matches it.
        public var notModified: Bool

        public init(source: Source, cacheStatus: CacheStatus?, age: Int?, omitBody: Bool, retryAfter: Int? = nil, notModified: Bool = false) {
            self.source = source
            self.cacheStatus = cacheStatus
            self.age = age
            self.omitBody = omitBody
            self.retryAfter = retryAfter
            self.notModified = notModified
        }
    }

    /// What became of the fetch another request made for the same key, which this one waited for.
    public enum Coalesced: Sendable, Equatable {
        /// It stored this entry (the server holds its body).
        case entry(EntryMeta)
        /// Its answer could not be shared (not storable, or that fetch went away): fetch on your own.
        case released
        /// The origin gave no answer.
        case failed(OriginError)
    }

    private enum State: Sendable {
        case idle
        case lookingUp(RequestPlan.CacheTarget, EntryAddress)
        case fetching(Fetching)
        case storing(ResponsePlan, streamed: Bool)
        /// A storable answer is being received and answered at once; it is stored once whole.
        case receiving(PendingStore, ResponsePlan, maxBody: Int)
        case purging(ResponsePlan)
        case done
    }

    private enum Fetching: Sendable {
        /// A cacheable request; `generations` is nil when the store could not be asked. `stale` is an entry that
        /// may be answered if the origin fails.
        case cache(RequestPlan.CacheTarget, EntryAddress, generations: [Int64]?, forward: CacheStatus.Forward, stale: EntryMeta?)
        case forward(CacheStatus.Outcome, detail: CacheStatus.Detail?)
        case write(PurgeSet)
    }

    private var state: State = .idle
    /// The stale entry a conditional fetch is revalidating (its validators went to the origin).
    private var revalidating: EntryMeta?
    /// In shadow: the entry the lookup found and Trove would have served (nil: it would have fetched). The origin is
    /// asked anyway and answers the client; its answer is compared with this entry's.
    public private(set) var shadowServed: EntryMeta?
    /// In shadow, with `shadowServed`: whether the origin's answer is stored too (an entry served stale would have
    /// been refreshed; a fresh one would have been left as it is, to age as it would in service).
    private var shadowStores = true
    private let plan: RequestPlan
    private let requestHeaders: [Header]
    private let clock: any TroveClock
    private let invalidationKey: (@Sendable (String) -> String?)?

    /// - Parameters:
    ///   - plan: what the rules say (`RuleSet.plan(for:)`).
    ///   - requestHeaders: the client's headers, for `Vary` checks.
    ///   - invalidationKey: for writes, the key a GET of a path would use (`RuleSet.invalidationKey`), so that
    ///     a successful write also purges what its answer's `Location` and `Content-Location` name.
    public init(
        plan: RequestPlan, requestHeaders: [Header], clock: any TroveClock,
        invalidationKey: (@Sendable (String) -> String?)? = nil
    ) {
        self.plan = plan
        self.requestHeaders = requestHeaders
        self.clock = clock
        self.invalidationKey = invalidationKey
    }

    /// A machine for a background refresh: it starts by fetching, and stores what it may.
    public static func refreshing(
        plan: RequestPlan, refresh: Refresh, requestHeaders: [Header], clock: any TroveClock
    ) -> (ReadThroughStateMachine, Action)? {
        guard case .cache(let target) = plan.decision else { return nil }
        var machine = ReadThroughStateMachine(plan: plan, requestHeaders: requestHeaders, clock: clock)
        machine.state = .fetching(.cache(target, refresh.address, generations: refresh.generations, forward: .stale, stale: nil))
        let validators = refresh.entry.map(Self.validators) ?? []
        if !validators.isEmpty { machine.revalidating = refresh.entry }
        return (machine, .fetch(Fetch(method: "GET", sendsBody: false, forStorage: true, validators: validators)))
    }

    private var isHead: Bool { plan.method == "HEAD" }

    /// What a fetch for storage will be stored under: the cache key, or one variant of it. Concurrent misses
    /// coalesce on it, and instances lock it.
    public var fetchingAddress: EntryAddress? {
        if case .fetching(.cache(_, let address, _, _, _)) = state { address } else { nil }
    }

    // MARK: Events

    /// The request has arrived and been planned.
    public mutating func start() -> Action {
        guard case .idle = state else { return invalid("start") }
        switch plan.decision {
        case .reject(let status, let message):
            state = .done
            return .respond(ResponsePlan(source: .trove(status: status, message: message), cacheStatus: nil, age: nil,
                omitBody: isHead))
        case .cache(let target):
            let address = EntryAddress(key: target.key, route: plan.route?.name ?? "", tags: target.tags,
                learnsTags: target.policy.tagsFrom != nil)
            state = .lookingUp(target, address)
            return .lookup(address)
        case .bypass(.credentials(let credentials)):
            let names = credentials.sorted { $0.rawValue < $1.rawValue }.map { $0.rawValue.uppercased() }
            state = .fetching(.forward(.bypass, detail: .credentials(names)))
            return .fetch(Fetch(method: plan.method, sendsBody: true, forStorage: false))
        case .bypass(.unkeyedQuery):
            state = .fetching(.forward(.bypass, detail: .unkeyedQuery))
            return .fetch(Fetch(method: plan.method, sendsBody: true, forStorage: false))
        case .bypass(.unverifiedToken):
            state = .fetching(.forward(.bypass, detail: .unverifiedToken))
            return .fetch(Fetch(method: plan.method, sendsBody: true, forStorage: false))
        case .pass:
            state = .fetching(.forward(.pass, detail: plan.route == nil ? .noRoute : nil))
            return .fetch(Fetch(method: plan.method, sendsBody: true, forStorage: false))
        case .write(let purges):
            state = .fetching(.write(purges))
            return .fetch(Fetch(method: plan.method, sendsBody: true, forStorage: false))
        }
    }

    /// In shadow: the origin's answer differs from `shadowServed`, so it is stored in its place (as a purge and a miss
    /// would have stored it), so that each change is caught once and what follows is compared with the current answer.
    public mutating func shadowFoundStale() {
        guard shadowServed != nil else { return }
        shadowStores = true
    }

    /// The route runs in shadow: the origin answers every request (see `lookupCompleted`).
    public var isShadow: Bool {
        if case .cache(let target) = plan.decision { target.shadow != nil } else { false }
    }

    /// The store answered the lookup. In shadow, what would have been answered from the entry is remembered
    /// (`shadowServed`) and the origin is asked instead; every fetch is whole (no validators) and alone (never
    /// coalesced), so that each client gets the origin's own answer.
    public mutating func lookupCompleted(_ result: LookupResult) -> Action {
        guard isShadow else { return decideLookup(result) }
        guard case .lookingUp(let target, let address) = state else { return invalid("lookupCompleted") }
        let action = decideLookup(result)
        switch action {
        case .respond(let response) where response.source == .entry:
            shadowStores = false
        case .respondAndRefresh:
            shadowStores = true
        case .fetch(var fetch):
            fetch.coalesce = false
            fetch.validators = []
            revalidating = nil
            if case .fetching(.cache(let target, let address, let generations, let forward, _)) = state {
                state = .fetching(.cache(target, address, generations: generations, forward: forward, stale: nil))
            }
            return .fetch(fetch)
        default:
            return action
        }
        guard case .found(let meta, let generations) = result else { return invalid("lookupCompleted (shadow)") }
        shadowServed = meta
        state = .fetching(.cache(target, address, generations: generations, forward: .miss, stale: nil))
        return .fetch(Fetch(method: "GET", sendsBody: false, forStorage: true, coalesce: false))
    }

    private mutating func decideLookup(_ result: LookupResult) -> Action {
        guard case .lookingUp(let target, let address) = state else { return invalid("lookupCompleted") }
        let fetch = Fetch(method: "GET", sendsBody: false, forStorage: true, coalesce: true)
        switch result {
        case .unavailable:
            state = .fetching(.cache(target, address, generations: nil, forward: .uriMiss, stale: nil))
            return .fetch(fetch)
        case .notFound(let generations):
            state = .fetching(.cache(target, address, generations: generations, forward: .uriMiss, stale: nil))
            return .fetch(fetch)
        case .found(let meta, let generations):
            let now = clock.nowMilliseconds()
            if meta.isVaryMarker {
                // The answer varies: read the variant for this request's values, unless the marker was purged or
                // turned up where a variant was expected.
                // A soft-purged marker still names the headers: the variant's own counters say what it may serve.
                guard address.key == address.counterKey, meta.change(for: address, generations: generations) != .purged else {
                    state = .fetching(.cache(target, address, generations: generations, forward: .miss, stale: nil))
                    return .fetch(fetch)
                }
                let variant = address.variant(HeaderPolicy.values(of: meta.varyNames, in: requestHeaders))
                state = .lookingUp(target, variant)
                return .lookup(variant)
            }
            let change = meta.change(for: address, generations: generations)
            if change == .purged {
                // Purged since it was stored, or stored under other rules: never served, not even stale.
                state = .fetching(.cache(target, address, generations: generations, forward: .miss, stale: nil))
                return .fetch(fetch)
            }
            if !HeaderPolicy.matches(variant: meta.variant, request: requestHeaders) {
                state = .fetching(.cache(target, address, generations: generations, forward: .varyMiss, stale: nil))
                return .fetch(fetch)
            }
            if case .softPurged(let since) = change {
                // Stale, never fresh: served while one refresh runs (which records the counters as they are now,
                // so what it stores is fresh), within the entry's stale window counted from the purge.
                guard now < meta.softStaleUntil(since: since) else {
                    state = .fetching(.cache(target, address, generations: generations, forward: .miss, stale: nil))
                    return .fetch(fetch)
                }
                state = .done
                let status = CacheStatus(outcome: .stale, forward: .stale, ttl: min(0, meta.remainingTTL(at: now)), detail: .softPurged)
                return .respondAndRefresh(fromEntry(meta, status, now: now), Refresh(address: address, generations: generations, entry: meta))
            }
            if now < meta.freshUntil {
                state = .done
                return .respond(fromEntry(meta, Self.hitStatus(meta, now: now), now: now))
            }
            if now < meta.staleUntil {
                state = .done
                let status = CacheStatus(outcome: .stale, forward: .stale, ttl: meta.remainingTTL(at: now))
                return .respondAndRefresh(fromEntry(meta, status, now: now),
                    Refresh(address: address, generations: generations, entry: meta))
            }
            let stale = now < meta.errorUntil ? meta : nil
            state = .fetching(.cache(target, address, generations: generations, forward: .stale, stale: stale))
            var conditional = fetch
            conditional.validators = Self.validators(meta)
            if !conditional.validators.isEmpty { revalidating = meta }
            return .fetch(conditional)
        }
    }

    /// The origin answered (any status), its body whole.
    public mutating func originResponded(status: Int, headers: [Header], bodyLength: Int) -> Action {
        responded(status: status, headers: headers, bodyLength: bodyLength, streaming: false)
    }

    /// The origin's head arrived; its body follows (`declaredLength` when it said how long). A storable answer is
    /// answered as it arrives (`respondWhileStoring`), and stored once `bodyReceived`.
    public mutating func originStarted(status: Int, headers: [Header], declaredLength: Int?) -> Action {
        responded(status: status, headers: headers, bodyLength: declaredLength, streaming: true)
    }

    /// A streamed answer's body is whole: store it, unless it outgrew the route's `max_body` (or was not kept:
    /// `kept` false, the response body budget was full).
    public mutating func bodyReceived(length: Int, kept: Bool) -> Action {
        guard case .receiving(var pending, var response, let maxBody) = state else { return invalid("bodyReceived") }
        guard kept, length <= maxBody else {
            state = .done
            response.cacheStatus?.stored = false
            response.cacheStatus?.detail = .notStored(.tooLarge)
            return .finished(response)
        }
        pending.meta.bodyLength = length
        guard shadowStores else {
            // In shadow, a fresh entry was found: it stays as it is (the answer was kept only to compare).
            state = .done
            response.cacheStatus?.stored = false
            return .finished(response)
        }
        response.cacheStatus?.stored = true
        state = .storing(response, streamed: true)
        return .store(pending, then: response)
    }

    /// A streamed answer broke off: nothing is stored.
    public mutating func bodyFailed(_ error: OriginError) -> Action {
        guard case .receiving(_, var response, _) = state else { return invalid("bodyFailed") }
        state = .done
        response.cacheStatus?.stored = false
        return .finished(response)
    }

    private mutating func responded(status: Int, headers: [Header], bodyLength: Int?, streaming: Bool) -> Action {
        guard case .fetching(let fetching) = state else { return invalid("originResponded") }
        switch fetching {
        case .forward(let outcome, let detail):
            let related = (200..<400).contains(status) ? locationKeys(headers) : []
            guard related.isEmpty else {
                // An unsafe request through a pass route whose answer points at a stored resource.
                let response = ResponsePlan(source: .origin, cacheStatus: CacheStatus(outcome: .pass, forward: .method, forwardStatus: status),
                    age: nil, omitBody: isHead)
                state = .purging(response)
                return .purge(PurgeSet(keys: related), then: response)
            }
            state = .done
            let status = CacheStatus(outcome: outcome, forward: .bypass, forwardStatus: status, detail: detail)
            return .respond(ResponsePlan(source: .origin, cacheStatus: status, age: nil, omitBody: isHead))
        case .write(var purges):
            let cacheStatus = CacheStatus(outcome: .pass, forward: .method, forwardStatus: status)
            let response = ResponsePlan(source: .origin, cacheStatus: cacheStatus, age: nil, omitBody: isHead)
            if (200..<400).contains(status) {
                for key in locationKeys(headers) where !purges.keys.contains(key) { purges.keys.append(key) }
            }
            // Only a write the origin accepted changes anything; a failed one purges nothing.
            guard (200..<400).contains(status), !purges.isEmpty else {
                state = .done
                return .respond(response)
            }
            state = .purging(response)
            return .purge(purges, then: response)
        case .cache(let target, let address, let generations, let forward, let stale):
            if status >= 500 || status == 429, let stale, let answer = serveStale(stale, forwardStatus: status, detail: .originError) {
                return answer
            }
            if status == 304, let validated = revalidating {
                return revalidated(validated, headers: headers, target: target, address: address, generations: generations, forward: forward)
            }
            var cacheStatus = CacheStatus(outcome: .miss, forward: forward, forwardStatus: status)
            // The client's own conditions were not sent (the answer is fetched whole, to store): Trove applies them.
            var response = ResponsePlan(source: .origin, cacheStatus: cacheStatus, age: nil, omitBody: isHead,
                notModified: ConditionalRequest.notModified(request: requestHeaders, entryStatus: status, entryHeaders: headers))
            // The origin's tags (`tags_from`) are recorded with the entry; an answer naming more than can be
            // recorded is not stored (a purge of the tags left out would not reach it).
            var originTags: [String]?
            var tagsRefusal: HeaderPolicy.NotStored?
            if let from = target.policy.tagsFrom {
                originTags = from.tags(in: headers)
                if originTags == nil { tagsRefusal = .originTags }
            }
            if let refusal = HeaderPolicy.refusal(status: status, headers: headers, bodyLength: bodyLength ?? 0, policy: target.policy)
                ?? tagsRefusal
            {
                cacheStatus.detail = .notStored(refusal)
                response.cacheStatus = cacheStatus
                state = .done
                return .respond(response)
            }
            let now = clock.nowMilliseconds()
            guard let generations, let freshness = Freshness.of(status: status, headers: headers, policy: target.policy, now: now) else {
                cacheStatus.detail = .storeUnavailable
                response.cacheStatus = cacheStatus
                state = .done
                return .respond(response)
            }
            let stored = HeaderPolicy.storedHeaders(headers)
            var meta = Self.entry(status: status, headers: target.policy.tagsFrom?.strip(stored) ?? stored, origin: headers,
                freshness: freshness, now: now, route: address.route, tags: target.tags, generations: generations,
                variant: HeaderPolicy.variant(vary: headers, request: requestHeaders), bodyLength: bodyLength ?? 0)
            meta.originTags = originTags
            // A streamed answer of unknown length is not said to be stored until it is (it may outgrow `max_body`).
            cacheStatus.stored = !streaming || bodyLength != nil
            response.cacheStatus = cacheStatus
            let lastUse = max(meta.staleUntil, meta.errorUntil)
            // An answer that varies is stored as the variant for this request's values, with a marker under the
            // cache key; one that does not is stored under the cache key itself (replacing any marker).
            let base = address.unvaried
            var pending = PendingStore(address: meta.variant.isEmpty ? base : base.variant(meta.variant), meta: meta,
                expireAfter: Self.expireAfter(now: now, until: lastUse))
            if !meta.variant.isEmpty {
                pending.marker = EntryMeta.varyMarker(names: meta.variant.map(\.name), route: base.route, tags: base.tags,
                    learnsTags: base.learnsTags, generations: Array(generations.prefix(base.counters.count)), storedAt: now, until: lastUse)
            }
            if streaming {
                state = .receiving(pending, response, maxBody: target.policy.maxBodyBytes)
                return .respondWhileStoring(pending, then: response)
            }
            guard shadowStores else {
                state = .done
                response.cacheStatus?.stored = false
                return .respond(response)
            }
            state = .storing(response, streamed: false)
            return .store(pending, then: response)
        }
    }

    /// The origin gave no answer.
    public mutating func originFailed(_ error: OriginError) -> Action {
        guard case .fetching(let fetching) = state else { return invalid("originFailed") }
        if case .cache(_, _, _, _, let stale?) = fetching,
            let answer = serveStale(stale, forwardStatus: nil, detail: error.kind == .timeout ? .originTimeout : .originUnreachable)
        {
            return answer
        }
        state = .done
        return .respond(ResponsePlan(source: .trove(status: error.status, message: error.description), cacheStatus: nil,
            age: nil, omitBody: isHead))
    }

    /// The origin is at the limit the rules set (rate, concurrency, queue): nothing was sent to it.
    public mutating func originBusy(retryAfter: Int, reason: String) -> Action {
        guard case .fetching(let fetching) = state else { return invalid("originBusy") }
        if case .cache(_, _, _, _, let stale?) = fetching, let answer = serveStale(stale, forwardStatus: nil, detail: .originBusy) {
            return answer
        }
        state = .done
        return .respond(ResponsePlan(source: .trove(status: 503, message: reason), cacheStatus: nil, age: nil,
            omitBody: isHead, retryAfter: max(1, retryAfter)))
    }

    /// The fetch this request waited for has ended.
    public mutating func coalesced(_ outcome: Coalesced) -> Action {
        guard case .fetching(.cache(let target, let address, let generations, _, let stale)) = state else {
            return invalid("coalesced")
        }
        switch outcome {
        case .entry(let meta):
            let now = clock.nowMilliseconds()
            guard HeaderPolicy.matches(variant: meta.variant, request: requestHeaders) else {
                // Stored for other Vary values: this request needs a fetch of its own.
                state = .fetching(.cache(target, address, generations: generations, forward: .varyMiss, stale: stale))
                return .fetch(Fetch(method: "GET", sendsBody: false, forStorage: true, coalesce: false))
            }
            state = .done
            let status = CacheStatus(outcome: .hit, hit: true, ttl: meta.remainingTTL(at: now), collapsed: true)
            return .respond(fromEntry(meta, status, now: now))
        case .released:
            return .fetch(Fetch(method: "GET", sendsBody: false, forStorage: true, coalesce: false))
        case .failed(let error):
            return originFailed(error)
        }
    }

    /// The store has the entry (or could not take it).
    public mutating func storeCompleted(_ result: Result<Void, StoreError>) -> Action {
        guard case .storing(var response, let streamed) = state else { return invalid("storeCompleted") }
        state = .done
        if case .failure(let error) = result {
            response.cacheStatus?.stored = false
            response.cacheStatus?.detail = error.isPurgedWhileFetched ? .notStored(.purgedWhileFetched)
                : error.isNotAdmitted ? .notStored(.notAdmitted) : .storeUnavailable
        }
        return streamed ? .finished(response) : .respond(response)
    }

    /// The write's purges are done, queued until the store is back, or refused (`limits.max_purge`).
    public mutating func purgeCompleted(_ result: PurgeOutcome.Result) -> Action {
        guard case .purging(var response) = state else { return invalid("purgeCompleted") }
        state = .done
        switch result {
        case .applied: break
        case .queued: response.cacheStatus?.detail = .purgeQueued
        case .refused: response.cacheStatus?.detail = .purgeRefused
        }
        return .respond(response)
    }

    /// Answers from `stale` if it is still within its error window.
    private mutating func serveStale(_ stale: EntryMeta, forwardStatus: Int?, detail: CacheStatus.Detail) -> Action? {
        let now = clock.nowMilliseconds()
        guard now < stale.errorUntil else { return nil }
        state = .done
        let status = CacheStatus(outcome: .stale, forward: .stale, forwardStatus: forwardStatus, ttl: stale.remainingTTL(at: now),
            detail: detail)
        return .respond(fromEntry(stale, status, now: now))
    }

    /// The keys of what a write's answer names in `Location` and `Content-Location`, when they are on the same
    /// host (RFC 9111 §4.4): a relative reference, or an absolute one whose authority is the request's `Host`.
    private func locationKeys(_ headers: [Header]) -> [String] {
        guard let invalidationKey, MethodSet.invalidates(plan.method) else { return [] }
        let host = requestHeaders.value(of: "host")?.lowercased()
        var keys: [String] = []
        for header in headers where HTTPSyntax.name(header.name, is: "location") || HTTPSyntax.name(header.name, is: "content-location") {
            var reference = Substring(header.value.trimmingWhitespace())
            if let colon = reference.firstIndex(of: ":"), reference[colon...].hasPrefix("://"),
                reference[..<colon].allSatisfy(\.isLetter)
            {
                let rest = reference[reference.index(colon, offsetBy: 3)...]
                let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
                guard let host, rest[..<authorityEnd].lowercased() == host else { continue }
                reference = rest[authorityEnd...]
                if reference.isEmpty { reference = "/" }
            }
            guard reference.hasPrefix("/"), !reference.hasPrefix("//"), let key = invalidationKey(String(reference)),
                !keys.contains(key)
            else { continue }
            keys.append(key)
            // HTTP allows one Location and one Content-Location; an origin sending thousands gets a few honoured.
            if keys.count >= 8 { break }
        }
        return keys
    }

    /// The validators of an entry, as a conditional request sends them (RFC 9110 §13.1); only 200 answers
    /// are revalidated.
    static func validators(_ meta: EntryMeta) -> [Header] {
        guard meta.status == 200 else { return [] }
        var headers: [Header] = []
        if let etag = meta.headers.value(of: "etag") { headers.append(Header("If-None-Match", etag)) }
        if let lastModified = meta.headers.value(of: "last-modified") { headers.append(Header("If-Modified-Since", lastModified)) }
        return headers
    }

    /// The origin answered 304 to a revalidation: the stored head is updated with the 304's headers (RFC 9111
    /// §4.3.4), its freshness computed again, and the entry stored again with its own body and answered.
    private mutating func revalidated(
        _ validated: EntryMeta, headers: [Header], target: RequestPlan.CacheTarget, address: EntryAddress, generations: [Int64]?,
        forward: CacheStatus.Forward
    ) -> Action {
        let now = clock.nowMilliseconds()
        let updates = HeaderPolicy.storedHeaders(headers)
        let names = Set(updates.map { $0.name.lowercased() })
        let merged = validated.headers.filter { !names.contains($0.name.lowercased()) } + updates
        var cacheStatus = CacheStatus(outcome: .hit, forward: forward, forwardStatus: 304)
        // The 304 may say what the first answer did not (no-store, private, Set-Cookie): checked again, as for any
        // answer, on the headers as the origin sent them. Answered from the entry, but not stored again.
        let received = validated.headers.filter { !names.contains($0.name.lowercased()) } + headers
        if let refusal = HeaderPolicy.refusal(status: validated.status, headers: received, bodyLength: validated.bodyLength,
            policy: target.policy)
        {
            state = .done
            var meta = validated
            meta.headers = merged
            cacheStatus.detail = .notStored(refusal)
            return .respond(fromEntry(meta, cacheStatus, now: now))
        }
        guard let generations, let freshness = Freshness.of(status: validated.status, headers: merged, policy: target.policy, now: now) else {
            state = .done
            var meta = validated
            meta.headers = merged
            return .respond(fromEntry(meta, cacheStatus, now: now))
        }
        var meta = Self.entry(status: validated.status, headers: target.policy.tagsFrom?.strip(merged) ?? merged, origin: headers,
            freshness: freshness, now: now, route: address.route, tags: target.tags, generations: generations,
            variant: validated.variant, bodyLength: validated.bodyLength)
        // A 304 that names tags names them all (RFC 9111 §4.3.4: its headers replace the stored ones); one that
        // names none leaves the entry's.
        if let from = target.policy.tagsFrom {
            let named = from.isPresent(in: headers) ? from.tags(in: headers) : validated.originTags
            guard let named else {
                state = .done
                cacheStatus.detail = .notStored(.originTags)
                return .respond(fromEntry(meta, cacheStatus, now: now))
            }
            meta.originTags = named
        }
        meta.chunks = validated.chunks  // the body stays where it is: in the stored value, or in its chunks
        cacheStatus.ttl = meta.remainingTTL(at: now)
        cacheStatus.stored = true
        let response = fromEntry(meta, cacheStatus, now: now)
        state = .storing(response, streamed: false)
        var pending = PendingStore(address: address, meta: meta,
            expireAfter: Self.expireAfter(now: now, until: max(meta.staleUntil, meta.errorUntil)))
        pending.reusesStoredBody = true
        return .store(pending, then: response)
    }

    /// The entry for an origin answer received `now`: dated back by the `Age` it came with (`origin`: the headers
    /// as received), fresh, stale-while-revalidate and stale-if-error windows from `freshness`.
    private static func entry(
        status: Int, headers: [Header], origin: [Header], freshness: Freshness, now: Int64, route: String, tags: [String],
        generations: [Int64], variant: [Header], bodyLength: Int
    ) -> EntryMeta {
        let freshUntil = now.addingClamped(freshness.ttl)
        return EntryMeta(status: status, headers: headers, storedAt: now.subtractingClamped(Freshness.initialAge(origin).multipliedClamped(by: 1000)),
            freshUntil: freshUntil, staleUntil: freshUntil.addingClamped(freshness.stale),
            errorUntil: freshUntil.addingClamped(freshness.staleIfError), route: route, tags: tags,
            generations: generations, variant: variant, bodyLength: bodyLength)
    }

    private static func hitStatus(_ meta: EntryMeta, now: Int64) -> CacheStatus {
        CacheStatus(outcome: .hit, hit: true, ttl: meta.remainingTTL(at: now))
    }

    /// What a lookup that found `meta` (with its counters at `generations`) comes to when the entry is a fresh,
    /// unpurged answer that varies on nothing: the hit's `Cache-Status` and its `Age`, exactly as `lookupCompleted`
    /// answers it for a request without conditional headers. nil for everything else (a marker, a variant, purged,
    /// stale), which the machine decides. The hit fast path asks this, and runs no machine.
    public static func freshHit(_ meta: EntryMeta, address: EntryAddress, generations: [Int64], now: Int64) -> (status: CacheStatus, age: Int)? {
        guard !meta.isVaryMarker, meta.variant.isEmpty, now < meta.freshUntil, meta.change(for: address, generations: generations) == .none else {
            return nil
        }
        return (hitStatus(meta, now: now), meta.age(at: now))
    }

    /// An answer from a stored entry: the entry itself, or 304 when the client's conditional request matches it.
    private func fromEntry(_ meta: EntryMeta, _ status: CacheStatus, now: Int64) -> ResponsePlan {
        ResponsePlan(source: .entry, cacheStatus: status, age: meta.age(at: now), omitBody: isHead,
            notModified: ConditionalRequest.notModified(request: requestHeaders, entryStatus: meta.status, entryHeaders: meta.headers))
    }

    /// Store entries a little past the last moment they may be served, so a few seconds of clock difference
    /// between Trove instances never makes one drop what another still considers servable.
    static func expireAfter(now: Int64, until: Int64) -> Int64 {
        max(1000, until.subtractingClamped(now)).addingClamped(5000)
    }

    private mutating func invalid(_ event: String) -> Action {
        assertionFailure("\(event) in state \(state)")
        state = .done
        return .respond(ResponsePlan(source: .trove(status: 500, message: "internal error: \(event) out of order"),
            cacheStatus: nil, age: nil, omitBody: isHead))
    }
}

/// What a lookup found, without the body (see `LookupOutcome`).
public enum LookupResult: Sendable, Equatable {
    case found(EntryMeta, generations: [Int64])
    case notFound(generations: [Int64])
    case unavailable
}

extension LookupOutcome {
    /// The outcome without its body, for the state machine.
    public var result: LookupResult {
        switch self {
        case .found(let meta, _, let generations, _): .found(meta, generations: generations)
        case .notFound(let generations): .notFound(generations: generations)
        case .unavailable: .unavailable
        }
    }
}

extension RuleSet {
    /// How long purge counters must outlive the purge (milliseconds): longer than any entry that recorded the
    /// old value can live (its fetch, its TTL, its stale windows, the store's slack), twice over.
    public var counterLifetime: Int64 {
        let longestEntry = routes.compactMap(\.cachePolicy).map { policy in
            (policy.statusTTLs.map(\.ttl).max() ?? .zero) + max(policy.stale, policy.staleIfError)
        }.max() ?? .zero
        let longestFetch = origins.map(\.timeout).max() ?? .zero
        return 2 * (longestEntry.milliseconds + longestFetch.milliseconds + 6000)
    }
}
