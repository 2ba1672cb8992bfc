public import TroveRules

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
    /// The generations of everything that can invalidate it, read before its fetch began (see `Dependencies`).
    public var generations: [Int64]
    /// The request's values of the headers the origin's `Vary` names (lower-case names, empty values for
    /// absent headers): the entry answers only requests with the same values.
    public var variant: [Header]
    public var bodyLength: Int

    public init(
        status: Int, headers: [Header], storedAt: Int64, freshUntil: Int64, staleUntil: Int64, errorUntil: Int64? = nil,
        route: String, tags: [String], generations: [Int64], variant: [Header] = [], bodyLength: Int
    ) {
        self.status = status
        self.headers = headers
        self.storedAt = storedAt
        self.freshUntil = freshUntil
        self.staleUntil = staleUntil
        self.errorUntil = errorUntil ?? freshUntil
        self.route = route
        self.tags = tags
        self.generations = generations
        self.variant = variant
        self.bodyLength = bodyLength
    }

    /// True when the entry may answer a request for `dependencies` whose counters now read `generations`: no
    /// purge since it was stored, and stored under the same route and tags. (Freshness and `Vary` are checked
    /// apart.)
    public func isValid(for dependencies: Dependencies, generations: [Int64]) -> Bool {
        self.generations == generations && tags == dependencies.tags && route == dependencies.route
    }

    /// An answer that varies is stored as variants, each under its own key; the request's cache key holds this
    /// marker, naming the headers it varies on, so that a lookup knows which variant to read (one more round
    /// trip, for answers that vary only). Never answered itself.
    public static func varyMarker(names: [String], route: String, tags: [String], generations: [Int64], storedAt: Int64, until: Int64) -> EntryMeta {
        EntryMeta(status: 0, headers: [Header("Vary", names.joined(separator: ", "))], storedAt: storedAt, freshUntil: until,
            staleUntil: until, errorUntil: until, route: route, tags: tags, generations: generations, bodyLength: 0)
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

/// One HTTP header field (declared with the rules, which read request headers too).
public typealias Header = TroveRules.Header

/// What an entry depends on: the counters whose increase invalidates it.
///
/// A purge never scans: it increases one counter (for everything, a route, a key or a tag). An entry records
/// the values of its counters as they were *before its fetch began*; a lookup reads the entry and the
/// counters' current values together and treats any difference as a miss. So a purge that happens while a
/// fetch is running invalidates what that fetch stores, and every Trove instance on the same Redis sees a
/// purge at once.
public struct Dependencies: Sendable, Equatable {
    /// Where the entry is stored.
    public let key: String
    /// The key whose purge invalidates it: `key` itself, or for one variant of an answer that varies (stored
    /// under `KEY#vHASH`), the cache key of the request, so that purging the key purges every variant.
    public let counterKey: String
    public let route: String
    public let tags: [String]

    public init(key: String, route: String, tags: [String], counterKey: String? = nil) {
        self.key = key
        self.counterKey = counterKey ?? key
        self.route = route
        self.tags = tags
    }

    /// The dependencies of the request's cache key itself: these, for an answer that does not vary; for a
    /// variant, where its marker is stored.
    public var unvaried: Dependencies {
        key == counterKey ? self : Dependencies(key: counterKey, route: route, tags: tags)
    }

    /// The dependencies of whatever is stored under `key` (a variant's key names its cache key before `#v`).
    public static func ofStored(_ key: String, route: String, tags: [String]) -> Dependencies {
        let bytes = Array(key.utf8)
        guard let mark = bytes.indices.dropLast().last(where: { bytes[$0] == UInt8(ascii: "#") && bytes[$0 + 1] == UInt8(ascii: "v") }) else {
            return Dependencies(key: key, route: route, tags: tags)
        }
        return Dependencies(key: key, route: route, tags: tags, counterKey: String(decoding: bytes[..<mark], as: UTF8.self))
    }

    /// Separates a cache key from a variant's hash. `#` never appears in a rendered key (`KeyEscaping`).
    public static let variantMark = "#v"

    /// Where the variant of the request with these values of the headers the answer varies on is stored.
    public func variant(_ values: [Header]) -> Dependencies {
        var hash = FNV1a()
        for header in values {
            hash.add(header.name.utf8)
            hash.add([0x3D])
            hash.add(header.value.utf8)
            hash.add([0x0A])
        }
        return Dependencies(key: counterKey + Self.variantMark + String(hash.value, radix: 16), route: route, tags: tags, counterKey: counterKey)
    }

    /// The counters, in the order generations are recorded: everything, the route, the key, then each tag.
    public var counters: [Counter] {
        [.everything, .route(route), .key(counterKey)] + tags.map(Counter.tag)
    }

    /// A counter that invalidates entries when it increases.
    public enum Counter: Sendable, Hashable {
        case everything
        case route(String)
        case key(String)
        case tag(String)
    }
}
