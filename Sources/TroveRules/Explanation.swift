internal import TroveHTTP
/// Why Trove would treat a request the way it does, for people: the matched route, the rendered key, TTLs,
/// tags, and the reason it would or would not be cached (or what a write would purge).
///
/// `trove explain` prints `text`; the admin API's `/explain` answers the same fields as JSON.
public struct Explanation: Sendable, Codable, Equatable {
    public struct RouteInfo: Sendable, Codable, Equatable {
        public var name: String
        public var match: String
        public var line: Int
    }

    public struct StatusTTL: Sendable, Codable, Equatable {
        public var status: Int
        public var ttl: String
        public var seconds: Int64
    }

    public var request: String
    public var route: RouteInfo?
    /// Origin name.
    public var origin: String?
    /// The URL the request would be forwarded to.
    public var forwardTo: String?
    /// `cache`, `bypass`, `pass`, `write` or `reject`.
    public var decision: String
    /// One sentence saying why.
    public var reason: String
    public var key: String?
    public var ttl: [StatusTTL]?
    public var stale: String?
    /// How long past its TTL the entry answers when the origin fails.
    public var staleIfError: String?
    public var tags: [String]?
    /// The response header the origin names more tags in (`tags_from`), and whether it stays on the answer.
    public var tagsFrom: String?
    /// The header that carries the entry's tags on to a CDN (`send_tags`).
    public var sendTags: String?
    /// In shadow: what the client gets, and what is compared.
    public var shadow: String?
    public var maxBody: String?
    /// `shared`, `per-user` or `anonymous`.
    public var sharing: String?
    public var purge: PurgeSet?
    /// The answer status Trove would give itself, for `reject`.
    public var status: Int?

    public init(plan: RequestPlan, rules: RuleSet, request: RequestHead) {
        self.request = "\(plan.method) \(request.target)"
        self.route = plan.route.map { RouteInfo(name: $0.name, match: $0.match, line: $0.line) }
        self.origin = plan.origin?.name
        if let origin = plan.origin, let target = plan.target {
            forwardTo = origin.url + target.forwardTarget
        }
        let routeName = plan.route.map { "'\($0.name)'" } ?? ""
        switch plan.decision {
        case .cache(let cache):
            decision = "cache"
            key = cache.key
            ttl = cache.policy.statusTTLs.map {
                StatusTTL(status: $0.status, ttl: Units.format($0.ttl), seconds: $0.ttl.seconds)
            }
            stale = Units.format(cache.policy.stale)
            staleIfError = Units.format(cache.policy.staleIfError)
            tags = cache.tags
            tagsFrom = cache.policy.tagsFrom.map { "each answer's \($0.name) header" + ($0.keep ? " (kept on the answer)" : " (taken off the answer)") }
            sendTags = cache.policy.sendTags.map { "\($0.name), to the CDN in front" }
            shadow = cache.shadow.map { settings in
                "the origin answers every request; Trove stores, purges and compares what it would have served"
                    + (settings.ignoredPaths.isEmpty && settings.ignoredHeaders.isEmpty ? ""
                        : ", ignoring " + (settings.ignoredPaths.map(\.description) + settings.ignoredHeaders.sorted()).joined(separator: ", "))
                    + " (GET /shadow)"
            }
            maxBody = Units.format(bytes: cache.policy.maxBodyBytes)
            if !cache.perUser.isEmpty {
                sharing = "per-user"
                reason = "route \(routeName) caches \(plan.method == "HEAD" ? "HEAD (from the GET entry)" : plan.method) "
                    + "answers; the key holds the user's identity (" + Self.names(cache.perUser) + ", hashed), so each "
                    + "user has an entry of their own"
            } else if cache.policy.shared {
                sharing = "shared"
                reason = "route \(routeName) caches answers shared by all users (shared: true)"
                    + (cache.sharedDespite.isEmpty ? "" : "; the request's " + Self.names(cache.sharedDespite)
                        + " is forwarded on a miss but does not change the key")
            } else if !cache.policy.keyedCredentials.isEmpty {
                sharing = "anonymous"
                reason = "route \(routeName) keys on the user's identity (" + Self.names(cache.policy.keyedCredentials)
                    + ", hashed), but this request carries none: it is served the anonymous entry, one for every request "
                    + "without credentials"
            } else {
                sharing = "anonymous"
                reason = "route \(routeName) caches answers to requests without credentials, and this one carries none"
            }
            if !cache.ignoredCookies.isEmpty {
                let one = cache.ignoredCookies.count == 1
                let option = if case .only = cache.policy.cookies { "only_cookies" } else { "ignore_cookies" }
                reason += "; its cookie" + (one ? " " : "s ") + cache.ignoredCookies.joined(separator: ", ") + (one ? " does" : " do")
                    + " not matter to the route (\(option)): sent to the origin on a miss, never in the key"
            }
        case .bypass(.credentials(let credentials)):
            decision = "bypass"
            reason = "the request carries " + Self.names(credentials) + ", which the key of route \(routeName) does "
                + "not hold, and the route is not shared: it is forwarded and its answer is not stored, so no user is "
                + "served another's answer (Cache-Status detail=" + credentials.sorted { $0.rawValue < $1.rawValue }
                    .map { $0.rawValue.uppercased() }.joined(separator: ",") + ")"
        case .bypass(.unkeyedQuery(let names)):
            decision = "bypass"
            reason = "the request carries query parameter" + (names.count == 1 ? " " : "s ") + names.joined(separator: ", ")
                + ", which the key of route \(routeName) does not tell apart: the origin may answer differently because of "
                + (names.count == 1 ? "it" : "them") + ", so the answer is forwarded and not stored (Cache-Status "
                + "detail=UNKEYED-QUERY); name " + (names.count == 1 ? "it" : "them") + " in the key, or list "
                + (names.count == 1 ? "it" : "them") + " in the route's ignore_query if " + (names.count == 1 ? "it changes" : "they change")
                + " nothing"
        case .bypass(.unverifiedToken(let why)):
            decision = "bypass"
            reason = "route \(routeName) reads the claims of the request's token, and this token cannot be trusted (\(why)): it "
                + "is forwarded and its answer is not stored, so it never selects an entry (Cache-Status detail=UNVERIFIED-TOKEN)"
        case .pass:
            decision = "pass"
            if plan.route == nil {
                reason = "no route matches; unmatched requests are passed to the default origin and never stored "
                    + "(set unmatched: reject to answer 404 instead)"
            } else {
                reason = "route \(routeName) passes requests through (pass: true); nothing is stored"
            }
        case .write(let purges):
            decision = "write"
            purge = purges
            reason = "route \(routeName) forwards the write; when the origin answers 2xx or 3xx it purges what is "
                + "listed below before answering, and a failed write purges nothing"
        case .reject(let status, let message):
            decision = "reject"
            self.status = status
            reason = "Trove answers \(status) itself: \(message)"
        }
    }

    private static func names(_ credentials: Set<Credential>) -> String {
        credentials.sorted { $0.rawValue < $1.rawValue }.map(\.description).joined(separator: " and ")
    }

    /// The explanation as aligned `label  value` lines.
    public var text: String {
        var lines: [(String, String)] = [("request", request)]
        if let route {
            lines.append(("route", "\(route.name) (line \(route.line): \(route.match))"))
        } else {
            lines.append(("route", "none matched"))
        }
        if let origin, let forwardTo { lines.append(("origin", "\(origin) → \(forwardTo)")) }
        lines.append(("decision", decision.uppercased()))
        lines.append(("why", reason))
        if let key { lines.append(("key", key)) }
        if let ttl {
            lines.append(("fresh for", ttl.map { "\($0.ttl) (\($0.status))" }.joined(separator: ", ")))
        }
        if let stale, stale != "0s" { lines.append(("stale", "\(stale) more, served while one refresh runs")) }
        if let staleIfError, staleIfError != "0s" { lines.append(("if error", "\(staleIfError) more, served when the origin fails")) }
        if let tags {
            let none = tagsFrom == nil ? "none (purge by key or route)" : "none of its own"
            lines.append(("tags", tags.isEmpty ? none : tags.joined(separator: ", ")))
        }
        if let tagsFrom { lines.append(("tags from", tagsFrom)) }
        if let sendTags { lines.append(("sends tags", sendTags)) }
        if let shadow { lines.append(("shadow", shadow)) }
        if let maxBody { lines.append(("max body", "\(maxBody); bigger answers are passed through unstored")) }
        if let sharing { lines.append(("users", sharing)) }
        if let purge {
            if purge.everything { lines.append(("purge", "every entry")) }
            if !purge.tags.isEmpty { lines.append(("purge tags", purge.tags.joined(separator: ", "))) }
            if !purge.keys.isEmpty { lines.append(("purge keys", purge.keys.joined(separator: ", "))) }
            if !purge.routes.isEmpty { lines.append(("purge routes", purge.routes.joined(separator: ", "))) }
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { label, value in
            label.padded(to: width) + "  " + value
        }.joined(separator: "\n")
    }
}
