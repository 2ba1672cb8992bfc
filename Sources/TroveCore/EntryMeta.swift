public import TroveHTTP

/// Everything about a stored answer except its body: what to answer with, when it was stored, until when it
/// is fresh, and what it depends on for invalidation.
///
/// The body travels beside it in whatever form the store keeps bytes (a NIO `ByteBuffer` on the server), so
/// the decision core never copies it.
public struct EntryMeta: Sendable, Equatable {
    /// The origin's status.
    public var status: Int
    /// The origin's end-to-end headers, as stored (no hop-by-hop headers, no `Set-Cookie`, no
    /// `Content-Length`: that is the body's length).
    public var headers: [Header]
    /// When the origin's answer was stored, in milliseconds since the epoch.
    public var storedAt: Int64
    /// Fresh until this instant (exclusive).
    public var freshUntil: Int64
    /// May be served stale, while one refresh runs, until this instant (`freshUntil` when the route has no
    /// stale window).
    public var staleUntil: Int64
    /// May be served stale when the origin fails until this instant (`freshUntil` when the route has no
    /// `stale_if_error` window).
    public var errorUntil: Int64
    /// The route that stored it.
    public var route: String
    /// The tags it carries.
    public var tags: [String]
    /// The tags the origin named (`tags_from`), for a route that learns them; nil for other routes. Their
    /// generations follow the address's in `generations`.
    public var originTags: [String]?
    /// The generations of everything that can invalidate it, read before its fetch began (see `EntryAddress`).
    public var generations: [Int64]
    /// The request's values of the headers the origin's `Vary` names (lower-case names, empty values for
    /// absent headers): the entry answers only requests with the same values.
    public var variant: [Header]
    public var bodyLength: Int
    /// Set when the body is stored apart from the head, in chunks (`EntryChunks`); the body handed out with the
    /// head is then empty, and the chunks are read one at a time.
    public var chunks: EntryChunks?

    public init(
        status: Int, headers: [Header], storedAt: Int64, freshUntil: Int64, staleUntil: Int64, errorUntil: Int64? = nil,
        route: String, tags: [String], originTags: [String]? = nil, generations: [Int64], variant: [Header] = [], bodyLength: Int,
        chunks: EntryChunks? = nil
    ) {
        self.status = status
        self.headers = headers
        self.storedAt = storedAt
        self.freshUntil = freshUntil
        self.staleUntil = staleUntil
        self.errorUntil = errorUntil ?? freshUntil
        self.route = route
        self.tags = tags
        self.originTags = originTags
        self.generations = generations
        self.variant = variant
        self.bodyLength = bodyLength
        self.chunks = chunks
    }

    /// What purges did to the entry since it was stored, for a request for `address` whose counters now read
    /// `generations` (the address's counters, then its origin tags'): `.none` when it may answer (freshness and
    /// `Vary` are checked apart); an entry stored under another route or other tags counts as purged. The
    /// tag-purge sequence is not compared: it only says where a fetch began.
    public func change(for address: EntryAddress, generations: [Int64]) -> Generation.Change {
        guard tags == address.tags && route == address.route && (originTags != nil) == address.learnsTags else { return .purged }
        if let skipped = address.sequenceIndex {
            return Generation.change(recorded: self.generations, current: generations, skipping: skipped)
        }
        return self.generations == generations ? .none : Generation.change(recorded: self.generations, current: generations)
    }

    /// Until when an entry soft-purged `since` then may be served stale: its stale window (`staleUntil` past
    /// `freshUntil`) counted from the purge, never past its own `staleUntil` (a soft purge never lengthens a life).
    public func softStaleUntil(since: Int64) -> Int64 {
        min(staleUntil, since.addingClamped(staleUntil.subtractingClamped(freshUntil)))
    }

    /// An answer that varies is stored as variants, each under its own key; the request's cache key holds this
    /// marker, naming the headers it varies on, so that a lookup knows which variant to read (one more round
    /// trip, for answers that vary only). Never answered itself.
    public static func varyMarker(
        names: [String], route: String, tags: [String], learnsTags: Bool = false, generations: [Int64], storedAt: Int64, until: Int64
    ) -> EntryMeta {
        EntryMeta(status: 0, headers: [Header("Vary", names.joined(separator: ", "))], storedAt: storedAt, freshUntil: until,
            staleUntil: until, errorUntil: until, route: route, tags: tags, originTags: learnsTags ? [] : nil, generations: generations,
            bodyLength: 0)
    }

    /// True for a marker (`varyMarker`), not an answer.
    public var isVaryMarker: Bool { status == 0 }

    /// The header names a marker says the answer varies on.
    public var varyNames: [String] {
        headers.first.map { $0.value.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty } } ?? []
    }

    /// Whole seconds since it was stored, never negative (clocks of instances differ slightly). The instants
    /// come from the store, which another instance (or anyone with access to Redis) wrote: the arithmetic
    /// clamps rather than trap on absurd values.
    public func age(at now: Int64) -> Int {
        Int(max(0, now.subtractingClamped(storedAt)) / 1000)
    }

    /// Whole seconds of freshness left; negative once it has expired (as RFC 9211's `ttl` parameter).
    public func remainingTTL(at now: Int64) -> Int {
        let remaining = freshUntil.subtractingClamped(now)
        return remaining >= 0 ? Int(remaining / 1000) : -Int((remaining.magnitude + 999) / 1000)
    }
}
