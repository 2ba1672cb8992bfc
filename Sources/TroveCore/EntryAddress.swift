public import TroveHTTP

/// Where an entry is stored and what can invalidate it: its key, and the purge counters (everything, its route,
/// its key, its tags) whose increase makes it unservable. A lookup reads both at once.
///
/// A purge never scans: it increases one counter (for everything, a route, a key or a tag). An entry records
/// the values of its counters as they were *before its fetch began*; a lookup reads the entry and the
/// counters' current values together and treats a difference as a miss (or, when only soft purges moved them,
/// as stale: see `Generation`). So a purge that happens while a
/// fetch is running invalidates what that fetch stores, and every Trove instance on the same Redis sees a
/// purge at once.
public struct EntryAddress: Sendable, Equatable {
    /// Where the entry is stored.
    public let key: String
    /// The key whose purge invalidates it: `key` itself, or for one variant of an answer that varies (stored
    /// under `KEY#vHASH`), the cache key of the request, so that purging the key purges every variant.
    public let counterKey: String
    public let route: String
    public let tags: [String]
    /// The route takes tags from the origin's answers (`tags_from`): its entries also depend on tags no one
    /// knows before the fetch. A lookup then reads the tag-purge sequence too (see `PurgeCounter.tagSequence`).
    public let learnsTags: Bool

    public init(key: String, route: String, tags: [String], counterKey: String? = nil, learnsTags: Bool = false) {
        self.key = key
        self.counterKey = counterKey ?? key
        self.route = route
        self.tags = tags
        self.learnsTags = learnsTags
    }

    /// The address of the request's cache key itself: these, for an answer that does not vary; for a
    /// variant, where its marker is stored.
    public var unvaried: EntryAddress {
        key == counterKey ? self : EntryAddress(key: counterKey, route: route, tags: tags, learnsTags: learnsTags)
    }

    /// The address of whatever is stored under `key` (a variant's key names its cache key before `#v`) by an entry
    /// with this head.
    public static func ofStored(_ key: String, meta: EntryMeta) -> EntryAddress {
        let (route, tags, learnsTags) = (meta.route, meta.tags, meta.originTags != nil)
        let bytes = Array(key.utf8)
        guard let mark = bytes.indices.dropLast().last(where: { bytes[$0] == UInt8(ascii: "#") && bytes[$0 + 1] == UInt8(ascii: "v") }) else {
            return EntryAddress(key: key, route: route, tags: tags, learnsTags: learnsTags)
        }
        return EntryAddress(key: key, route: route, tags: tags, counterKey: String(decoding: bytes[..<mark], as: UTF8.self),
            learnsTags: learnsTags)
    }

    /// Separates a cache key from a variant's hash. `#` never appears in a rendered key (`KeyEscaping`).
    public static let variantMark = "#v"

    /// Where the variant of the request with these values of the headers the answer varies on is stored.
    public func variant(_ values: [Header]) -> EntryAddress {
        var hash = FNV1a()
        for header in values {
            hash.add(header.name.utf8)
            hash.add([0x3D])
            hash.add(header.value.utf8)
            hash.add([0x0A])
        }
        return EntryAddress(key: counterKey + Self.variantMark + String(hash.value, radix: 16), route: route, tags: tags,
            counterKey: counterKey, learnsTags: learnsTags)
    }

    /// The counters a lookup reads, in the order their generations are recorded: everything, the route, the key,
    /// each tag, then (for a route that learns tags) the tag-purge sequence. An entry with tags from the origin
    /// records theirs after these (`OriginTags`).
    public var counters: [PurgeCounter] {
        var counters: [PurgeCounter] = []
        counters.reserveCapacity(counterCount)
        forEachCounter { counters.append($0) }
        return counters
    }

    /// Each of `counters`, in order, without building the array (the memory store reads them on every hit).
    @inlinable
    public func forEachCounter(_ body: (PurgeCounter) -> Void) {
        body(.everything)
        body(.route(route))
        body(.key(counterKey))
        for tag in tags { body(.tag(tag)) }
        if learnsTags { body(.tagSequence) }
    }

    /// How many counters `counters` holds (without building them: a lookup encodes them straight into its command).
    public var counterCount: Int { 3 + tags.count + (learnsTags ? 1 : 0) }

    /// Where the tag-purge sequence sits among the generations, for a route that learns tags: a lookup reads it
    /// to know where a fetch began, but it is not a counter the entry depends on (any tag's purge moves it).
    public var sequenceIndex: Int? {
        learnsTags ? counterCount - 1 : nil
    }
}

/// A counter that invalidates entries when it increases. Its value is a **generation**: an entry records the
/// generations of its counters when its fetch began, and is served only while they are unchanged.
public enum PurgeCounter: Sendable, Hashable {
    case everything
    case route(String)
    case key(String)
    case tag(String)
    /// How many tag purges there have been, ever: moved on by every purge of a tag, before the tag's own
    /// counter. Never purged itself. A fetch for a route that learns its tags from the origin reads it before it
    /// begins; when the answer names its tags, a purge of one of them since then is told by `tagPurged`.
    case tagSequence
    /// The tag-purge sequence number of a tag's last purge (kept as long as the tag's counter).
    case tagPurged(String)
}
