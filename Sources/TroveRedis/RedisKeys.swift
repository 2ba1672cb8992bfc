internal import TroveCore

/// Where everything Trove keeps in Redis lives, under the namespace `NS`: the one place that says so.
///
/// - `NS:e:KEY` an entry: `EntryCodec` head then body, with a Redis TTL past its stale window; a body larger than
///   `RedisStore.chunkSize` is kept apart, in `NS:c:NONCE:I` (hexadecimal nonce, chunk index), written before the
///   head and living `RedisStore.chunkSlack` longer, so a head found names whole chunks and a client that started
///   reading finishes;
/// - `NS:g:all`, `NS:g:r:ROUTE`, `NS:g:k:KEY`, `NS:g:t:TAG` the purge counters (see `EntryAddress`); `NS:g:seq`
///   and `NS:g:tp:TAG` the tag-purge sequence and each tag's stamp (`OriginTags`);
/// - `NS:l:KEY` a key's fetch lock, and `NS:fetched` the channel its holder announces the fetch's end on;
/// - `NS:w:ID` a webhook delivery already handled.
///
/// The lookup, which runs for every request, writes the same prefixes straight into its command buffer
/// (`RedisStore.writeCounters`) rather than build these strings; `entryPrefix` and the counters' prefixes are
/// what both use.
struct RedisKeys: Sendable {
    let namespace: String

    static let entryPrefix: StaticString = ":e:"
    static let everything: StaticString = ":g:all"
    static let routePrefix: StaticString = ":g:r:"
    static let keyPrefix: StaticString = ":g:k:"
    static let tagPrefix: StaticString = ":g:t:"
    static let tagSequence: StaticString = ":g:seq"
    static let tagStampPrefix: StaticString = ":g:tp:"

    func entry(_ key: String) -> String { "\(namespace)\(Self.entryPrefix)\(key)" }

    func chunk(_ chunks: EntryChunks, _ index: Int) -> String {
        "\(namespace):c:\(String(chunks.nonce, radix: 16)):\(index)"
    }

    func counter(_ counter: PurgeCounter) -> String {
        switch counter {
        case .everything: "\(namespace)\(Self.everything)"
        case .route(let route): "\(namespace)\(Self.routePrefix)\(route)"
        case .key(let key): "\(namespace)\(Self.keyPrefix)\(key)"
        case .tag(let tag): "\(namespace)\(Self.tagPrefix)\(tag)"
        case .tagSequence: "\(namespace)\(Self.tagSequence)"
        case .tagPurged(let tag): "\(namespace)\(Self.tagStampPrefix)\(tag)"
        }
    }

    func fetchLock(_ key: String) -> String { "\(namespace):l:\(key)" }

    /// The channel instances publish fetch notices on: `NOTICE\nKEY`.
    var noticeChannel: String { "\(namespace):fetched" }

    func delivery(_ id: String) -> String { "\(namespace):w:\(id)" }
}
