internal import NIOCore
internal import TroveCore

/// Where everything Trove keeps in Redis lives, under the namespace `NS`: the one place that says so.
///
/// An entry's own keys carry its cache key `CK` as a Redis Cluster hash tag, so they share a slot (one node holds
/// them, one command may name them together); the counters every lookup reads carry the namespace as theirs, so
/// they share another:
/// - `NS:e:{CK}` an entry (`NS:e:{CK}#vHASH` one variant of an answer that varies): `EntryCodec` head then body,
///   with a Redis TTL past its stale window; a body larger than `RedisStore.chunkSize` is kept apart, in
///   `NS:c:{CK}:NONCE:I` (hexadecimal nonce, chunk index), written before the head and living
///   `RedisStore.chunkSlack` longer, so a head found names whole chunks and a client that started reading finishes;
/// - `NS:g:k:{CK}` the key's purge counter, beside its entry;
/// - `NS:g:{NS}:all`, `NS:g:{NS}:r:ROUTE`, `NS:g:{NS}:t:TAG` the shared purge counters (see `EntryAddress`), and
///   `NS:g:{NS}:seq`, `NS:g:{NS}:tp:TAG` the tag-purge sequence and each tag's stamp (`OriginTags`), all together;
/// - `NS:l:KEY` a key's fetch lock, and `NS:fetched` the channel its holder announces the fetch's end on;
/// - `NS:w:ID` a webhook delivery already handled.
///
/// A `CK` that is empty or begins with `}` would make an empty tag (Redis then hashes the whole name, and the
/// entry and its counter could part): it is tagged as `~CK` instead.
///
/// The lookup, which runs for every request, writes these names straight into its command buffer (`writeEntry`,
/// `writeCounters`) rather than build Strings.
struct RedisKeys: Sendable {
    let namespace: String

    func entry(_ key: String) -> String {
        let (counterKey, variant) = Self.split(key)
        return "\(namespace):e:{\(Self.tag(counterKey))}\(variant)"
    }

    func chunk(_ key: String, _ chunks: EntryChunks, _ index: Int) -> String {
        "\(namespace):c:{\(Self.tag(Self.split(key).counterKey))}:\(String(chunks.nonce, radix: 16)):\(index)"
    }

    func counter(_ counter: PurgeCounter) -> String {
        switch counter {
        case .everything: "\(namespace):g:{\(namespace)}:all"
        case .route(let route): "\(namespace):g:{\(namespace)}:r:\(route)"
        case .key(let key): "\(namespace):g:k:{\(Self.tag(key))}"
        case .tag(let tag): "\(namespace):g:{\(namespace)}:t:\(tag)"
        case .tagSequence: "\(namespace):g:{\(namespace)}:seq"
        case .tagPurged(let tag): "\(namespace):g:{\(namespace)}:tp:\(tag)"
        }
    }

    /// What every purge counter's name begins with (and nothing else's): what `CounterTracking` asks Redis to watch.
    var counterPrefix: String { "\(namespace):g:" }

    /// Whether a counter lives with the shared ones (else beside its key's entry).
    static func isShared(_ counter: PurgeCounter) -> Bool {
        if case .key = counter { false } else { true }
    }

    func fetchLock(_ key: String) -> String { "\(namespace):l:\(key)" }

    /// The channel instances publish fetch notices on: `NOTICE\nKEY`.
    var noticeChannel: String { "\(namespace):fetched" }

    func delivery(_ id: String) -> String { "\(namespace):w:\(id)" }

    /// A cache key and its variant's suffix (`#vHASH`, or nothing).
    static func split(_ key: String) -> (counterKey: Substring, variant: Substring) {
        // `#` never appears in a rendered key (`KeyEscaping`): the first one begins the variant's mark.
        guard let mark = key.firstIndex(of: "#"), key[mark...].hasPrefix(EntryAddress.variantMark) else { return (key[...], "") }
        return (key[..<mark], key[mark...])
    }

    /// What goes between the braces for a cache key.
    static func tag<S: StringProtocol>(_ counterKey: S) -> String {
        counterKey.isEmpty || counterKey.hasPrefix("}") ? "~" + counterKey : String(counterKey)
    }

    // MARK: Written straight into a command (the lookup)

    /// `NS:e:{CK}` (or a variant's) as one bulk string.
    func writeEntry(_ key: String, into buffer: inout ByteBuffer) {
        let (counterKey, variant) = Self.split(key)
        let tilde: Substring = counterKey.isEmpty || counterKey.hasPrefix("}") ? "~" : ""
        Self.writeBulk(namespace[...], ":e:{", tilde, counterKey, "}", variant, into: &buffer)
    }

    /// The counters a lookup reads, in `EntryAddress.counters`' order: everything, the route, the key, each tag,
    /// the tag-purge sequence (for a route that learns tags). `shared` and `own` choose which of them: all, for
    /// one command to a single Redis; the shared ones, or the key's own, for a cluster's two nodes.
    func writeCounters(of address: EntryAddress, shared: Bool = true, own: Bool = true, into buffer: inout ByteBuffer) {
        let ns = namespace[...]
        if shared {
            Self.writeBulk(ns, ":g:{", ns, "}:all", into: &buffer)
            Self.writeBulk(ns, ":g:{", ns, "}:r:", address.route[...], into: &buffer)
        }
        if own {
            let key = address.counterKey[...]
            let tilde: Substring = key.isEmpty || key.hasPrefix("}") ? "~" : ""
            Self.writeBulk(ns, ":g:k:{", tilde, key, "}", into: &buffer)
        }
        if shared {
            for tag in address.tags { Self.writeBulk(ns, ":g:{", ns, "}:t:", tag[...], into: &buffer) }
            if address.learnsTags { Self.writeBulk(ns, ":g:{", ns, "}:seq", into: &buffer) }
        }
    }

    /// One bulk string of up to six parts, with no array or String made for it (the hit path writes several).
    private static func writeBulk(
        _ a: Substring, _ b: Substring, _ c: Substring, _ d: Substring, _ e: Substring = "", _ f: Substring = "",
        into buffer: inout ByteBuffer
    ) {
        buffer.writeInteger(UInt8(ascii: "$"))
        RESPEncoder.writeDecimal(a.utf8.count + b.utf8.count + c.utf8.count + d.utf8.count + e.utf8.count + f.utf8.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeSubstring(a)
        buffer.writeSubstring(b)
        buffer.writeSubstring(c)
        buffer.writeSubstring(d)
        buffer.writeSubstring(e)
        buffer.writeSubstring(f)
        buffer.writeStaticString("\r\n")
    }
}
