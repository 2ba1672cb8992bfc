public import TroveHTTP
private import Crypto

/// A request as the rules see it: method, target and headers. The server builds one per request; `trove
/// explain` builds one from the command line.
public struct RequestHead: Sendable {
    public var method: String
    /// The request target as sent: `/api/v1/events?page=2`.
    public var target: String
    public var headers: [Header]
    /// When it arrived, in milliseconds since the epoch (from the server's clock): a token's `exp` is checked
    /// against it. Nil when not known: then no token is trusted.
    public var receivedAt: Int64?

    public init(method: String, target: String, headers: [Header] = [], receivedAt: Int64? = nil) {
        self.method = method
        self.target = target
        self.headers = headers
        self.receivedAt = receivedAt
    }

    /// True when a header with this name (any case) is present.
    public func hasHeader(_ lowercasedName: String) -> Bool {
        headers.contains { HTTPSyntax.name($0.name, is: lowercasedName) }
    }
}

/// What the rules say to do with one request, before any store or origin is asked.
public struct RequestPlan: Sendable {
    public let method: String
    /// The normalized target; nil when the request was rejected because it could not be parsed.
    public let target: RequestTarget?
    /// The route that matched; nil when none did.
    public let route: Route?
    /// Where the request goes if it goes anywhere.
    public let origin: Origin?
    public let decision: Decision
    /// In shadow (the route's `cache.shadow`, or every route with `trove serve --shadow`): the client gets the
    /// origin's answer with none of Trove's headers.
    public var inShadow = false

    public enum Decision: Sendable {
        /// Look the key up; answer fresh entries from the store, fetch and store the others.
        case cache(CacheTarget)
        /// A cacheable route, but this request must not share an entry: forward it, store nothing.
        case bypass(BypassReason)
        /// Forward; never store. `route` is nil when no route matched.
        case pass
        /// Forward the write; when the origin answers 2xx or 3xx, purge these.
        case write(PurgeSet)
        /// Answer without contacting an origin.
        case reject(status: Int, message: String)
    }

    /// The entry a cacheable request reads and writes.
    public struct CacheTarget: Sendable {
        /// The cache key, shortened by hashing when longer than `store.max_key_length`.
        public let key: String
        /// Tags the stored entry will carry, rendered from the request.
        public let tags: [String]
        public let policy: CachePolicy
        /// The credentials that made this entry per user, if any (the key holds them, hashed): those the route keys
        /// on that the request carries. None: the request gets the anonymous entry.
        public let perUser: Set<Credential>
        /// Credentials the request carries that a shared route ignores.
        public let sharedDespite: Set<Credential>
        /// The request's cookies the route says do not matter (`ignore_cookies`, `only_cookies`).
        public var ignoredCookies: [String] = []
        /// In shadow (`cache.shadow`, `trove serve --shadow`): the origin answers; Trove compares.
        public var shadow: ShadowSettings? = nil
    }

    public enum BypassReason: Sendable, Equatable {
        /// The request carries credentials the key does not hold, and the route is not shared.
        case credentials(Set<Credential>)
        /// The request carries query parameters the key does not tell apart (and the route does not ignore).
        case unkeyedQuery([String])
        /// The route reads the claims of the request's token, and the token cannot be trusted (why): it never
        /// selects an entry.
        case unverifiedToken(String)
    }
}

/// Everything one write purges, rendered from the write request.
public struct PurgeSet: Sendable, Equatable, Codable {
    public var tags: [String]
    public var keys: [String]
    public var routes: [String]
    public var everything: Bool
    /// Nil for a hard purge (entries gone); set for a soft one (entries stale, served while one refresh runs).
    public var soft: SoftPurge?

    public init(tags: [String] = [], keys: [String] = [], routes: [String] = [], everything: Bool = false, soft: SoftPurge? = nil) {
        self.tags = tags
        self.keys = keys
        self.routes = routes
        self.everything = everything
        self.soft = soft
    }

    public var isEmpty: Bool { tags.isEmpty && keys.isEmpty && routes.isEmpty && !everything }

    /// The counters the purge increases (one per tag, key and route, one for everything): what
    /// `limits.max_purge` bounds.
    public var counterCount: Int { tags.count + keys.count + routes.count + (everything ? 1 : 0) }

    /// Why the purge is refused under `limits.max_purge`, or nil when it is within it.
    public func refusal(maxPurge: Int) -> String? {
        guard counterCount > maxPurge else { return nil }
        return "the purge names \(counterCount) tags, keys and routes, more than limits.max_purge (\(maxPurge)); nothing was "
            + "purged. Purge a tag the entries share, or their route, or split the purge"
    }
}

/// How a soft purge treats what it covers: stale instead of gone, within each entry's stale window counted from
/// the purge, plus `extraStale`.
public struct SoftPurge: Sendable, Equatable, Codable {
    /// Milliseconds of stale window the purge gives beyond each route's own `stale` (a route with none still
    /// serves its entries stale this long after the purge).
    public var extraStale: Int64
    /// Whether the purge's keys are soft too (an admin's purge); a write's keys stay hard: RFC 9111 §4.4 wants the
    /// written resource's entries invalid.
    public var keys: Bool

    public init(extraStale: Int64 = 0, keys: Bool = true) {
        self.extraStale = extraStale
        self.keys = keys
    }
}

extension RuleSet {
    /// The first route whose methods and path match, with the parameters its path captured.
    public func match(method: String, target: RequestTarget) -> (route: Route, parameters: [String: String])? {
        for route in routes where route.methods.contains(method) {
            if let parameters = route.path.match(target.segments) { return (route, parameters) }
        }
        return nil
    }

    /// Decides what to do with a request, from the rules alone.
    ///
    /// A write (any method not defined as safe) also purges the entry a GET of the same target would use, whether or not its
    /// route names it (RFC 9111 §4.4): `PUT /api/v1/events/42` purges what `GET /api/v1/events/42` stored.
    public func plan(for request: RequestHead) -> RequestPlan {
        var plan = invalidatingPlan(for: request)
        // `trove serve --shadow`: users see no change at all, on any route (a route's own `cache.shadow` quiets that
        // route's answers only).
        if shadowEverything {
            plan.inShadow = true
        } else if case .cache(let target) = plan.decision, target.shadow != nil {
            plan.inShadow = true
        }
        return plan
    }

    /// The route's plan, a write's extended to purge the entry its own target would read (RFC 9111 §4.4).
    private func invalidatingPlan(for request: RequestHead) -> RequestPlan {
        let plan = routePlan(for: request)
        guard MethodSet.invalidates(plan.method), let target = plan.target,
            let key = invalidationKey(for: target.forwardTarget, headers: request.headers)
        else { return plan }
        var purges: PurgeSet
        switch plan.decision {
        case .write(let named): purges = named
        case .pass: purges = PurgeSet()
        case .cache, .bypass, .reject: return plan
        }
        if !purges.keys.contains(key) { purges.keys.append(key) }
        return RequestPlan(method: plan.method, target: plan.target, route: plan.route, origin: plan.origin, decision: .write(purges))
    }

    /// The key of the entry a GET of `target` (with these headers) would read; nil when no cacheable route
    /// would store one. Writes purge it, and so do their answers' `Location` and `Content-Location`.
    public func invalidationKey(for target: String, headers: [Header]) -> String? {
        let plan = routePlan(for: RequestHead(method: "GET", target: target, headers: headers))
        switch plan.decision {
        case .cache(let cache):
            return cache.key
        case .bypass(.unkeyedQuery(let names)):
            // That exact URL is never stored, but the entry it would share without the parameters the key does not
            // name is about the same resource: purging more is always safe.
            guard let stripped = plan.target?.removingQueryItems(where: names.contains),
                case .cache(let cache) = routePlan(for: RequestHead(method: "GET", target: stripped.forwardTarget, headers: headers)).decision
            else { return nil }
            return cache.key
        default:
            return nil
        }
    }

    private func routePlan(for request: RequestHead) -> RequestPlan {
        // Methods arrive upper-case (NIO's parser); only others pay for the conversion.
        let method = request.method.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") })
            ? request.method.uppercased() : request.method
        let target: RequestTarget
        do {
            target = try RequestTarget(parsing: request.target)
        } catch {
            return RequestPlan(method: method, target: nil, route: nil, origin: nil,
                decision: .reject(status: 400, message: error.description))
        }
        guard let (route, parameters) = match(method: method, target: target) else {
            switch unmatched {
            case .pass:
                return RequestPlan(method: method, target: target, route: nil, origin: origin(named: defaultOrigin),
                    decision: .pass)
            case .reject:
                return RequestPlan(method: method, target: target, route: nil, origin: nil,
                    decision: .reject(status: 404, message: "no route matches \(method) \(target.path)"))
            }
        }
        let origin = origin(named: route.origin)
        // The token's claims, for routes whose templates read them: only a verified token's. A pass route renders
        // nothing, so its requests' tokens are not checked.
        var claims: [String: String] = [:]
        var unverified: String?
        if let verifier = route.tokenVerifier, route.action.rendersTemplates {
            switch verifier.verify(request.headers, now: request.receivedAt) {
            case .absent: break
            case .verified(let verified): claims = verified
            case .refused(let reason): unverified = reason
            }
        }
        let context = TemplateContext(method: method, target: target, pathParameters: parameters, headers: request.headers,
            tokenClaims: claims)
        switch route.action {
        case .pass:
            return RequestPlan(method: method, target: target, route: route, origin: origin, decision: .pass)
        case .purge(let rule):
            let purges = PurgeSet(
                tags: rule.tags.map { $0.render(context) },
                keys: rule.keys.map { storeKey($0.render(context)) },
                routes: rule.routes,
                everything: rule.everything,
                soft: rule.soft)
            return RequestPlan(method: method, target: target, route: route, origin: origin, decision: .write(purges))
        case .cache(let policy):
            var target = target
            if !policy.ignoreQuery.isEmpty, target.queryItems.contains(where: { policy.ignoresQuery($0.name) }) {
                target = target.removingQueryItems(where: policy.ignoresQuery)
            }
            var carried = clients.credentials(in: request.headers)
            var ignoredCookies: [String] = []
            if carried.contains(.cookie), policy.cookies != .all {
                // Cookies that do not matter (analytics, consent) make no request per user: with none that
                // matters, it is cached as if it carried no cookie. They still go to the origin on a miss.
                let names = CookieFilter.names(in: TemplateContext.headerValues("cookie", in: request.headers))
                ignoredCookies = names.filter { !policy.cookies.matters($0) }
                if ignoredCookies.count == names.count { carried.remove(.cookie) }
            }
            let keyed = policy.keyedCredentials
            let uncovered = carried.subtracting(keyed)
            if !uncovered.isEmpty && !policy.shared {
                return RequestPlan(method: method, target: target, route: route, origin: origin,
                    decision: .bypass(.credentials(uncovered)))
            }
            if let keyed = policy.keyedQueryNames, target.queryItems.contains(where: { !keyed.contains($0.name) }) {
                var unkeyed: [String] = []
                for item in target.queryItems where !keyed.contains(item.name) && !unkeyed.contains(item.name) { unkeyed.append(item.name) }
                return RequestPlan(method: method, target: target, route: route, origin: origin,
                    decision: .bypass(.unkeyedQuery(unkeyed)))
            }
            if let unverified {
                return RequestPlan(method: method, target: target, route: route, origin: origin,
                    decision: .bypass(.unverifiedToken(unverified)))
            }
            let context = TemplateContext(method: method, target: target, pathParameters: parameters, headers: request.headers,
                tokenClaims: claims)
            let cacheTarget = RequestPlan.CacheTarget(
                key: storeKey(policy.key.render(context)),
                tags: policy.tags.map { $0.render(context) },
                policy: policy,
                perUser: keyed.intersection(carried),
                sharedDespite: policy.shared ? carried : [],
                ignoredCookies: ignoredCookies,
                shadow: policy.shadow ?? (shadowEverything ? ShadowSettings() : nil))
            return RequestPlan(method: method, target: target, route: route, origin: origin,
                decision: .cache(cacheTarget))
        }
    }

    /// A rendered key as the store sees it: unchanged when short enough, otherwise a prefix of it, `#`, and the
    /// SHA-256 of all of it. `#` never appears in a rendered key (templates refuse it and values escape it), so a
    /// shortened key cannot equal another request's unshortened one.
    public func storeKey(_ rendered: String) -> String {
        let limit = store.maxKeyLength
        guard rendered.utf8.count > limit else { return rendered }
        let digest = SHA256.hash(data: Array(rendered.utf8)).hexString
        // Rendered keys are ASCII, so cutting at a byte count never splits a character.
        let prefix = rendered.utf8.prefix(limit - digest.utf8.count - 1)
        return String(decoding: prefix, as: UTF8.self) + "#" + digest
    }
}
