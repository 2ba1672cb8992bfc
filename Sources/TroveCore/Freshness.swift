public import TroveHTTP
public import TroveRules

/// How long an origin's answer stays fresh, and how long past that it may be served stale, under a route's
/// policy: the rule's TTLs (`freshness: rules`, the default), or the origin's own caching headers
/// (`freshness: origin`, RFC 9111 §4.2 and RFC 5861) with the rule's values as fallback and bound.
///
/// With `freshness: origin`, in order:
/// 1. the lifetime is `s-maxage`, else `max-age`, else `Expires` − `Date` (an invalid `Expires` means already
///    expired); without any of them, the rule's TTL for the status (the heuristic a shared cache may use);
/// 2. the `Age` the origin (or a cache before it) reports is subtracted;
/// 3. `max_ttl` caps the result;
/// 4. `no-cache` makes it 0: stored, but never served without asking the origin again;
/// 5. `stale-while-revalidate=N` and `stale-if-error=N` replace the rule's `stale` and `stale_if_error`;
///    `must-revalidate`, `proxy-revalidate`, `s-maxage` and `no-cache` forbid serving it stale at all.
/// `no-store` and `private` keep the answer out of the store altogether (`HeaderPolicy.refusal`).
public struct Freshness: Sendable, Equatable {
    /// Milliseconds fresh from now; 0 when it must be revalidated before any use.
    public var ttl: Int64
    /// Milliseconds after expiry during which it may be served while one request refreshes it.
    public var stale: Int64
    /// Milliseconds after expiry during which it may be served instead of an origin error.
    public var staleIfError: Int64

    public init(ttl: Int64, stale: Int64, staleIfError: Int64) {
        self.ttl = ttl
        self.stale = stale
        self.staleIfError = staleIfError
    }

    /// The freshness of an answer with `status` and `headers` received at `now`; nil when the route does not
    /// store answers with this status (with `statuses: any`, when the origin gives it no explicit freshness and
    /// it is not heuristically cacheable).
    public static func of(status: Int, headers: [Header], policy: CachePolicy, now: Int64) -> Freshness? {
        let ruleTTL = policy.ttl(forStatus: status)
        let rule = Freshness(ttl: ruleTTL?.milliseconds ?? 0, stale: policy.stale.milliseconds, staleIfError: policy.staleIfError.milliseconds)
        guard policy.freshness == .origin else { return ruleTTL == nil ? nil : rule }

        let directives = CacheControl(headers)
        var revalidate = directives.has("must-revalidate") || directives.has("proxy-revalidate")
        let lifetime = explicitLifetime(directives, headers: headers, now: now)
        // s-maxage carries proxy-revalidate's meaning for shared caches (RFC 9111 §5.2.2.10).
        if directives.has("s-maxage") { revalidate = true }
        guard ruleTTL != nil || (lifetime != nil && policy.storesWithExplicitFreshness(status)) else { return nil }
        var ttl = lifetime ?? rule.ttl
        if lifetime != nil { ttl = ttl.subtractingClamped(initialAge(headers).multipliedClamped(by: 1000)) }
        if let maxTTL = policy.maxTTL { ttl = min(ttl, maxTTL.milliseconds) }
        ttl = max(0, ttl)
        let noCache = directives.has("no-cache")
        if noCache { ttl = 0 }

        var stale = directives.seconds("stale-while-revalidate").map { $0 * 1000 } ?? rule.stale
        var staleIfError = directives.seconds("stale-if-error").map { $0 * 1000 } ?? rule.staleIfError
        if revalidate || noCache {
            stale = 0
            staleIfError = 0
        }
        return Freshness(ttl: ttl, stale: stale, staleIfError: staleIfError)
    }

    /// Milliseconds the origin says the answer is fresh for, before `Age`: `s-maxage`, else `max-age`, else
    /// `Expires` − `Date`; nil when it says nothing.
    private static func explicitLifetime(_ directives: CacheControl, headers: [Header], now: Int64) -> Int64? {
        // A max-age that is present but not a whole number (`max-age='3600'`, `max-age = 60`, `3600.0`) makes the
        // answer stale rather than falling back to a guess (RFC 9111 §4.2.1 encourages exactly that).
        if directives.has("s-maxage") { return (directives.seconds("s-maxage") ?? 0) * 1000 }
        if directives.has("max-age") { return (directives.seconds("max-age") ?? 0) * 1000 }
        guard let expires = headers.value(of: "expires") else { return nil }
        // An invalid Expires, such as 0, means already expired (RFC 9111 §5.3).
        guard let expiresAt = HTTPDate.milliseconds(expires) else { return 0 }
        let date = headers.value(of: "date").flatMap(HTTPDate.milliseconds) ?? now
        return max(0, expiresAt.subtractingClamped(date))
    }

    /// Seconds the answer had already spent in caches before Trove (the `Age` it came with, RFC 9111 §5.1):
    /// 0 when absent or not a non-negative whole number. Entries are dated back by it, so the `Age` Trove sends
    /// counts that time too.
    public static func initialAge(_ headers: [Header]) -> Int64 {
        headers.value(of: "age").flatMap { deltaSeconds($0.trimmingWhitespace()) } ?? 0
    }

    /// A delta-seconds value (RFC 9111 §1.2.2): digits only; nil otherwise. Values past 2^31 are clamped to it.
    static func deltaSeconds(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return min(Int64(text.prefix(12)) ?? Int64(Int32.max), Int64(Int32.max))
    }
}

/// The directives of every `Cache-Control` header of a message, names lower-cased.
struct CacheControl {
    private var directives: [(name: String, value: String?)] = []

    init(_ headers: [Header]) {
        for header in headers where HTTPSyntax.name(header.name, is: "cache-control") {
            for part in header.value.split(separator: ",") {
                let item = part.trimmingWhitespace()
                guard !item.isEmpty else { continue }
                if let equals = item.firstIndex(of: "=") {
                    // No whitespace is allowed around `=`: `max-age = 60` keeps its spaces and reads as invalid.
                    var value = String(item[item.index(after: equals)...])
                    if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
                    if item[..<equals].last?.isWhitespace == true { value = " " + value }
                    directives.append((item[..<equals].trimmingWhitespace().lowercased(), value))
                } else {
                    directives.append((item.lowercased(), nil))
                }
            }
        }
    }

    /// Present, with or without a value (`no-cache` and `no-cache="Set-Cookie"` both count: a cache that does not
    /// track field names must treat the latter as the former).
    func has(_ name: String) -> Bool {
        directives.contains { $0.name == name }
    }

    /// True when the message states how long it stays fresh (`s-maxage`, `max-age` or `Expires`), even if what
    /// it states is unreadable (which means "already stale"): exactly when `Freshness` finds an explicit lifetime.
    func statesLifetime(_ headers: [Header]) -> Bool {
        has("s-maxage") || has("max-age") || headers.value(of: "expires") != nil
    }

    /// A delta-seconds value (the first, if repeated); nil when absent or not a number. Values past 2^31 are
    /// clamped to it (RFC 9111 §1.2.2).
    func seconds(_ name: String) -> Int64? {
        directives.first(where: { $0.name == name })?.value.flatMap(Freshness.deltaSeconds)
    }
}

/// A client's conditional GET or HEAD against a stored answer (RFC 9110 §13.1): `If-None-Match` compared
/// with the entry's `ETag` (weakly), else `If-Modified-Since` with its `Last-Modified` (or its `Date`).
public enum ConditionalRequest {
    /// True when the client already has what the entry holds, so a 304 answers it. Only 200 answers are
    /// compared (a conditional is evaluated against a selected representation).
    public static func notModified(request: [Header], entryStatus: Int, entryHeaders: [Header]) -> Bool {
        guard entryStatus == 200 else { return false }
        if let ifNoneMatch = request.value(of: "if-none-match") {
            guard let etag = entryHeaders.value(of: "etag") else { return false }
            let candidates = ifNoneMatch.split(separator: ",").map { $0.trimmingWhitespace() }
            return candidates.contains { $0 == "*" || opaque($0) == opaque(etag.trimmingWhitespace()) }
        }
        // Without a Last-Modified, the entry's Date stands in: the representation was current then (RFC 9111 §4.3.2).
        if let ifModifiedSince = request.value(of: "if-modified-since").flatMap(HTTPDate.milliseconds),
            let lastModified = (entryHeaders.value(of: "last-modified") ?? entryHeaders.value(of: "date")).flatMap(HTTPDate.milliseconds)
        {
            return lastModified <= ifModifiedSince
        }
        return false
    }

    /// The headers a 304 carries (RFC 9110 §15.4.5): those a 200 would have that describe the representation's
    /// metadata for caches, not its content.
    public static func notModifiedHeaders(_ headers: [Header]) -> [Header] {
        let kept: Set<String> = ["cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"]
        return headers.filter { kept.contains($0.name.lowercased()) }
    }

    /// An entity tag without its weakness indicator: weak comparison (RFC 9110 §8.8.3.2).
    private static func opaque(_ tag: String) -> String {
        tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag
    }
}
