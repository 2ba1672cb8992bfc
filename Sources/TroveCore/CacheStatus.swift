/// How Trove handled a request, as the `X-Cache` and RFC 9211 `Cache-Status` response headers say it.
public struct CacheStatus: Sendable, Equatable {
    /// The one-word summary in `X-Cache`.
    public enum Outcome: String, Sendable, Equatable, CaseIterable {
        /// Answered from a fresh entry; the origin was not asked.
        case hit = "HIT"
        /// Fetched from the origin (and stored, when it could be).
        case miss = "MISS"
        /// Answered from an entry past its TTL, within its stale window.
        case stale = "STALE"
        /// A cacheable route, but this request must not share an entry (credentials): forwarded, not stored.
        case bypass = "BYPASS"
        /// Not a cacheable request (pass route, write, no route): forwarded.
        case pass = "PASS"
    }

    /// `fwd` (RFC 9211 §2.2): why the origin was asked.
    public enum Forward: String, Sendable, Equatable {
        /// The request must not share an entry (credentials, a query the key does not name).
        case bypass
        /// The method is not cacheable (a write, or a pass route).
        case method
        /// No entry is stored under the key.
        case uriMiss = "uri-miss"
        /// An entry is stored, but not for this request's values of the headers the answer varies on.
        case varyMiss = "vary-miss"
        /// An entry is stored but cannot be used (expired past its windows, or purged).
        case miss
        /// The entry is stale: it is being refreshed (or revalidated).
        case stale
    }

    /// `detail` (RFC 9211 §2.8): Trove's own reason, in upper case, for what `fwd` does not say.
    public enum Detail: Sendable, Equatable, CustomStringConvertible {
        /// The request carries these credentials: `AUTHORIZATION`, `COOKIE`, comma-separated.
        case credentials([String])
        /// The query has parameters the key does not name (`UNKEYED-QUERY`).
        case unkeyedQuery
        /// The route reads the request token's claims and the token cannot be trusted (`UNVERIFIED-TOKEN`).
        case unverifiedToken
        /// No route matches (`NO-ROUTE`).
        case noRoute
        /// The answer may not be stored (`SET-COOKIE`, `PRIVATE`, `BODY-TOO-LARGE`, ...).
        case notStored(HeaderPolicy.NotStored)
        /// The store could not be asked, or could not take the answer (`STORE-UNAVAILABLE`).
        case storeUnavailable
        /// Stale served instead of the origin's 5xx or 429 (`ORIGIN-ERROR`), its silence (`ORIGIN-TIMEOUT`),
        /// a failed connection (`ORIGIN-UNREACHABLE`), or its queue being full (`ORIGIN-BUSY`).
        case originError, originTimeout, originUnreachable, originBusy
        /// A write's purge waits for the store (`PURGE-QUEUED`), or named too much (`PURGE-REFUSED`).
        case purgeQueued, purgeRefused
        /// Served stale because a soft purge covered it (a refresh runs).
        case softPurged

        public var description: String {
            switch self {
            case .credentials(let names): names.joined(separator: ",")
            case .unkeyedQuery: "UNKEYED-QUERY"
            case .unverifiedToken: "UNVERIFIED-TOKEN"
            case .noRoute: "NO-ROUTE"
            case .notStored(let reason): reason.rawValue
            case .storeUnavailable: "STORE-UNAVAILABLE"
            case .originError: "ORIGIN-ERROR"
            case .originTimeout: "ORIGIN-TIMEOUT"
            case .originUnreachable: "ORIGIN-UNREACHABLE"
            case .originBusy: "ORIGIN-BUSY"
            case .purgeQueued: "PURGE-QUEUED"
            case .purgeRefused: "PURGE-REFUSED"
            case .softPurged: "SOFT-PURGED"
            }
        }
    }

    public var outcome: Outcome
    /// `hit` parameter.
    public var hit: Bool = false
    /// `fwd` parameter: why the origin was asked.
    public var forward: Forward?
    /// `fwd-status`: what the origin answered.
    public var forwardStatus: Int?
    /// `ttl`: seconds of freshness left (negative when stale).
    public var ttl: Int?
    /// `stored`: the answer was stored.
    public var stored: Bool = false
    /// `collapsed`: the answer came from another request's fetch, which this one waited for.
    public var collapsed: Bool = false
    /// `detail`: why the answer was not stored or the store was not used.
    public var detail: Detail?

    public init(
        outcome: Outcome, hit: Bool = false, forward: Forward? = nil, forwardStatus: Int? = nil, ttl: Int? = nil,
        stored: Bool = false, collapsed: Bool = false, detail: Detail? = nil
    ) {
        self.outcome = outcome
        self.hit = hit
        self.forward = forward
        self.forwardStatus = forwardStatus
        self.ttl = ttl
        self.stored = stored
        self.collapsed = collapsed
        self.detail = detail
    }

    /// This cache's member of the `Cache-Status` list: `trove; hit; ttl=243`,
    /// `trove; fwd=uri-miss; fwd-status=200; stored`, `trove; fwd=bypass; fwd-status=200; detail=AUTHORIZATION`.
    public var member: String {
        var text = "trove"
        if hit { text += "; hit" }
        if let forward { text += "; fwd=\(forward.rawValue)" }
        if let forwardStatus { text += "; fwd-status=\(forwardStatus)" }
        if let ttl { text += "; ttl=\(ttl)" }
        if stored { text += "; stored" }
        if collapsed { text += "; collapsed" }
        if let detail { text += "; detail=\(detail)" }
        return text
    }

    /// The `Cache-Status` value to send: an origin's (or an earlier cache's) members first, then Trove's, as the
    /// RFC orders them from the origin toward the user.
    public func headerValue(appendingTo existing: String?) -> String {
        guard let existing, !existing.isEmpty else { return member }
        return existing + ", " + member
    }
}
