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

    public var outcome: Outcome
    /// `hit` parameter.
    public var hit: Bool = false
    /// `fwd` parameter: why the origin was asked (`uri-miss`, `miss`, `stale`, `vary-miss`, `bypass`, `method`).
    public var forward: String?
    /// `fwd-status`: what the origin answered.
    public var forwardStatus: Int?
    /// `ttl`: seconds of freshness left (negative when stale).
    public var ttl: Int?
    /// `stored`: the answer was stored.
    public var stored: Bool = false
    /// `collapsed`: the answer came from another request's fetch, which this one waited for.
    public var collapsed: Bool = false
    /// `detail`: why the answer was not stored or the store was not used, e.g. `AUTHORIZATION`,
    /// `STORE-UNAVAILABLE`, `SET-COOKIE`.
    public var detail: String?

    public init(
        outcome: Outcome, hit: Bool = false, forward: String? = nil, forwardStatus: Int? = nil, ttl: Int? = nil,
        stored: Bool = false, collapsed: Bool = false, detail: String? = nil
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
        if let forward { text += "; fwd=\(forward)" }
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
