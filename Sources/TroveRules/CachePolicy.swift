internal import TroveHTTP

public final class CachePolicy: Sendable {
    public let key: Template
    public let tags: [Template]
    /// How long an answer of each storable status stays fresh, in the order written.
    public let statusTTLs: [(status: Int, ttl: Duration)]
    /// How long after it stops being fresh an entry may still be served while it is refreshed.
    public let stale: Duration
    /// How long after it stops being fresh an entry may still be served when the origin fails.
    public let staleIfError: Duration
    /// Answers with a bigger body are passed through unstored.
    public let maxBodyBytes: Int
    /// One entry for everyone, even for requests carrying credentials.
    public let shared: Bool
    /// The route's requests carry credentials (the endpoint needs a login).
    public let authenticated: Bool
    /// Store answers even when the origin says `Cache-Control: private` or `no-store`: the route's TTL
    /// decides. Answers with `Set-Cookie` are never stored, whatever this says.
    public let overrideCacheControl: Bool
    /// Whose word sets how long an answer stays fresh: the rule's TTLs, or the origin's caching headers.
    public let freshness: FreshnessSource
    /// With `freshness: origin`, no answer stays fresh longer than this, whatever the origin says.
    public let maxTTL: Duration?
    /// `statuses: any` (with `freshness: origin`): an answer of any final status except 206 and 304 is stored when
    /// the origin gives it explicit freshness; `statusTTLs` then lists the heuristically cacheable statuses, which
    /// fall back to the rule's TTL when the origin says nothing (RFC 9111 §3, RFC 9110 §15.1).
    public let anyStatus: Bool
    /// Query parameters that change nothing in the answer (`utm_*`, `fbclid`): removed before the key is rendered
    /// and before the request is forwarded. Names, or prefixes ending in `*`.
    public let ignoreQuery: [String]
    /// Which cookies count as the user's (`ignore_cookies`, `only_cookies`): a request whose cookies all do not
    /// matter (analytics, consent) is cached as if it carried none. They still go to the origin on a miss.
    public let cookies: CookieFilter
    /// A response header whose values are tags the entry carries too (`tags_from`).
    public let tagsFrom: OriginTagHeader?
    /// A header that carries the entry's tags on to a CDN in front (`send_tags`).
    public let sendTags: CDNTagHeader?
    /// Run in shadow: answered by the origin, compared with what Trove would have served (`cache.shadow`).
    public let shadow: ShadowSettings?

    init(key: Template, tags: [Template], statusTTLs: [(status: Int, ttl: Duration)], stale: Duration, staleIfError: Duration, maxBodyBytes: Int, shared: Bool, authenticated: Bool, overrideCacheControl: Bool, freshness: FreshnessSource = .rules, maxTTL: Duration? = nil, anyStatus: Bool = false, ignoreQuery: [String] = [], cookies: CookieFilter = .all, tagsFrom: OriginTagHeader? = nil, sendTags: CDNTagHeader? = nil, keyedCredentials: Set<Credential>? = nil, shadow: ShadowSettings? = nil) {
        self.shadow = shadow
        self.ignoreQuery = ignoreQuery
        self.tagsFrom = tagsFrom
        self.sendTags = sendTags
        self.cookies = cookies
        self.keyedCredentials = keyedCredentials ?? key.credentials
        self.keyedQueryNames = Self.queryNames(of: key)
        self.freshness = freshness
        self.anyStatus = anyStatus
        self.maxTTL = maxTTL
        self.key = key
        self.tags = tags
        self.statusTTLs = statusTTLs
        self.stale = stale
        self.staleIfError = staleIfError
        self.maxBodyBytes = maxBodyBytes
        self.shared = shared
        self.authenticated = authenticated
        self.overrideCacheControl = overrideCacheControl
    }

    /// How long an answer with this status stays fresh when the origin says nothing; nil when such answers are
    /// only stored with explicit freshness (`statuses: any`) or not at all.
    public func ttl(forStatus status: Int) -> Duration? {
        statusTTLs.first { $0.status == status }?.ttl
    }

    /// True when an answer with this status may be stored if the origin gives it explicit freshness.
    public func storesWithExplicitFreshness(_ status: Int) -> Bool {
        anyStatus ? HTTPStatus.isStorable(status) : ttl(forStatus: status) != nil
    }

    /// True when query parameter `name` (decoded) is one the route ignores.
    public func ignoresQuery(_ name: String) -> Bool {
        Self.matches(ignoreQuery, name)
    }

    /// True when `name` is one of `patterns`: names, or prefixes ending in `*` (`ignore_query`, `ignore_cookies`).
    static func matches(_ patterns: [String], _ name: String) -> Bool {
        patterns.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }

    /// The query parameters the key tells apart; nil when it reads the whole query (`{query}`), which tells every
    /// parameter apart. A request with any other parameter must not be stored under the key: an origin that
    /// reads it (`?callback=...`) would answer differently, and that answer would be served for the key.
    public let keyedQueryNames: Set<String>?

    private static func queryNames(of key: Template) -> Set<String>? {
        var names = Set<String>()
        for placeholder in key.placeholders {
            switch placeholder.source {
            case .query: return nil
            case .queryParameter(let name): names.insert(name)
            case .queryParameters(let listed): names.formUnion(listed)
            default: break
            }
        }
        return names
    }

    /// The credentials the key holds, hashed: requests carrying them get entries of their own.
    public let keyedCredentials: Set<Credential>
}

/// Whose word sets how long a route's answers stay fresh.
public enum FreshnessSource: String, Sendable, Equatable {
    /// The rule's `ttl` and `statuses` (legacy APIs send no caching headers): the default.
    case rules
    /// The origin's `Cache-Control` (`s-maxage`, `max-age`, `no-cache`, `must-revalidate`,
    /// `stale-while-revalidate`, `stale-if-error`), `Expires` and `Age`, as RFC 9111 says; the rule's TTL
    /// when the origin says nothing, `max_ttl` as a cap.
    case origin
}

/// Which of a request's cookies matter to a route: all (the default: any cookie may be a session), all but some
/// (`ignore_cookies: [_ga, _gid, "_hj*"]`), or only some (`only_cookies: [sessionid]`).
public enum CookieFilter: Sendable, Equatable {
    case all
    /// Names, or prefixes ending in `*`, that never matter.
    case ignoring([String])
    /// The names that matter; every other cookie does not.
    case only([String])

    public func matters(_ name: String) -> Bool {
        switch self {
        case .all: true
        case .ignoring(let patterns): !CachePolicy.matches(patterns, name)
        case .only(let names): names.contains(name)
        }
    }

    /// The names of the cookies in these `Cookie` header values, in order. A piece without `=` counts as a cookie
    /// of that name, and one with no name as a cookie named "": what cannot be read is never taken for ignorable.
    public static func names(in values: [String]) -> [String] {
        var names: [String] = []
        TemplateContext.forEachCookie(in: values) { name, _ in
            names.append(String(name))
            return true
        }
        return names
    }
}
