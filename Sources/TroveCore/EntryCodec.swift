internal import TroveHTTP

/// Writes and reads the bytes of a stored entry: a small binary head (`EntryMeta`) followed by the body.
///
/// Layout, all integers big-endian:
/// ```
/// "TRV" u8(version=5)  u16 status  i64 storedAt  i64 freshUntil  i64 staleUntil  i64 errorUntil  u64 nonce  u32 bodyLength
/// u32 chunkSize  str route  u16 n × str tag  u16 n × str origin tag (n = 0xFFFF: none, the route does not learn
/// tags)  u16 n × i64 generation  u16 n × (str name, lstr value) as headers
/// u16 n × (str name, lstr value) as variant  body (bodyLength bytes, or none when chunkSize is not 0)
/// ```
/// A chunk size other than 0 says the body is stored apart, in chunks named by the nonce (`EntryChunks`).
/// `str` is a u16 length and UTF-8 bytes, `lstr` a u32 length and UTF-8 bytes. The nonce is random per store, so
/// no two stores write the same head: a head names one body exactly (instances keep large bodies by their
/// head). A value that does not start
/// with the magic and version, or is cut short, decodes as nil, so an old format or a foreign value in the
/// namespace is a miss, never a crash.
public enum EntryCodec {
    static let magic: [UInt8] = Array("TRV".utf8) + [5]
    /// The origin-tag count that says the route does not learn tags (`EntryMeta.originTags` is nil).
    static let noOriginTags = UInt16.max
    /// Chunk sizes a head may name: anything else is not a head of this format.
    static let chunkSizes = 4096...(64 << 20)

    /// The head bytes; the body follows them in the stored value, unless `meta.chunks` keeps it apart (its nonce
    /// is then the head's).
    public static func encodeHead(_ meta: EntryMeta, nonce: UInt64 = .random(in: .min ... .max)) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + meta.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 6 })
        out += magic
        append(UInt16(clamping: meta.status), to: &out)
        append(UInt64(bitPattern: meta.storedAt), to: &out)
        append(UInt64(bitPattern: meta.freshUntil), to: &out)
        append(UInt64(bitPattern: meta.staleUntil), to: &out)
        append(UInt64(bitPattern: meta.errorUntil), to: &out)
        append(meta.chunks?.nonce ?? nonce, to: &out)
        append(UInt32(clamping: meta.bodyLength), to: &out)
        append(UInt32(clamping: meta.chunks?.size ?? 0), to: &out)
        appendString(meta.route, to: &out)
        append(UInt16(clamping: meta.tags.count), to: &out)
        for tag in meta.tags { appendString(tag, to: &out) }
        if let originTags = meta.originTags {
            // At most `OriginTags.maxCount`: never the count that means "none".
            append(UInt16(clamping: min(originTags.count, Int(noOriginTags) - 1)), to: &out)
            for tag in originTags.prefix(Int(noOriginTags) - 1) { appendString(tag, to: &out) }
        } else {
            append(noOriginTags, to: &out)
        }
        append(UInt16(clamping: meta.generations.count), to: &out)
        for generation in meta.generations { append(UInt64(bitPattern: generation), to: &out) }
        appendHeaders(meta.headers, to: &out)
        appendHeaders(meta.variant, to: &out)
        return out
    }

    private static func appendHeaders(_ headers: [Header], to out: inout [UInt8]) {
        append(UInt16(clamping: headers.count), to: &out)
        for header in headers {
            appendString(header.name, to: &out)
            append(UInt32(clamping: header.value.utf8.count), to: &out)
            out += header.value.utf8
        }
    }

    /// The head, and where the body starts; nil when the bytes are not a whole entry of this format.
    public static func decodeHead(_ bytes: UnsafeRawBufferPointer) -> (meta: EntryMeta, bodyOffset: Int)? {
        guard let (meta, offset) = decodeHead(prefix: bytes), bytes.count - offset == (meta.chunks == nil ? meta.bodyLength : 0) else {
            return nil
        }
        return (meta, offset)
    }

    /// The head from the first bytes of a value (the body may be cut short or absent); nil when they do not hold
    /// a whole head of this format.
    public static func decodeHead(prefix bytes: UnsafeRawBufferPointer) -> (meta: EntryMeta, bodyOffset: Int)? {
        var reader = Reader(bytes: bytes)
        guard reader.take(4).map(Array.init) == magic,
            let status = reader.u16(), let storedAt = reader.u64(), let freshUntil = reader.u64(),
            let staleUntil = reader.u64(), let errorUntil = reader.u64(), let nonce = reader.u64(), let bodyLength = reader.u32(),
            let chunkSize = reader.u32(), chunkSize == 0 || chunkSizes.contains(Int(chunkSize)),
            let route = reader.string16(),
            let tagCount = reader.u16()
        else { return nil }
        var tags: [String] = []
        tags.reserveCapacity(Int(tagCount))
        for _ in 0..<tagCount {
            guard let tag = reader.string16() else { return nil }
            tags.append(tag)
        }
        guard let originTagCount = reader.u16() else { return nil }
        var originTags: [String]?
        if originTagCount != noOriginTags {
            var learned: [String] = []
            learned.reserveCapacity(Int(originTagCount))
            for _ in 0..<originTagCount {
                guard let tag = reader.string16() else { return nil }
                learned.append(tag)
            }
            originTags = learned
        }
        guard let generationCount = reader.u16() else { return nil }
        var generations: [Int64] = []
        generations.reserveCapacity(Int(generationCount))
        for _ in 0..<generationCount {
            guard let generation = reader.u64() else { return nil }
            generations.append(Int64(bitPattern: generation))
        }
        guard let headers = reader.headers(), let variant = reader.headers() else { return nil }
        let meta = EntryMeta(
            status: Int(status), headers: headers, storedAt: Int64(bitPattern: storedAt),
            freshUntil: Int64(bitPattern: freshUntil), staleUntil: Int64(bitPattern: staleUntil),
            errorUntil: Int64(bitPattern: errorUntil), route: route,
            tags: tags, originTags: originTags, generations: generations, variant: variant, bodyLength: Int(bodyLength),
            chunks: chunkSize == 0 ? nil : EntryChunks(nonce: nonce, size: Int(chunkSize)))
        return (meta, reader.offset)
    }

    /// Convenience for byte arrays (tests, the memory store's inspection).
    public static func decodeHead(_ bytes: [UInt8]) -> (meta: EntryMeta, bodyOffset: Int)? {
        bytes.withUnsafeBytes { decodeHead($0) }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out += $0 }
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        let utf8 = text.utf8.prefix(Int(UInt16.max))
        append(UInt16(utf8.count), to: &out)
        out += utf8
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func take(_ count: Int) -> UnsafeRawBufferPointer.SubSequence? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard let slice = take(MemoryLayout<T>.size) else { return nil }
            return slice.reduce(T.zero) { $0 << 8 | T($1) }
        }

        mutating func u16() -> UInt16? { integer(UInt16.self) }
        mutating func u32() -> UInt32? { integer(UInt32.self) }
        mutating func u64() -> UInt64? { integer(UInt64.self) }

        mutating func headers() -> [Header]? {
            guard let count = u16() else { return nil }
            var headers: [Header] = []
            headers.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let name = string16(), let length = u32(), let value = take(Int(length)) else { return nil }
                headers.append(Header(name, String(decoding: value, as: UTF8.self)))
            }
            return headers
        }

        mutating func string16() -> String? {
            guard let length = u16(), let slice = take(Int(length)) else { return nil }
            return String(decoding: slice, as: UTF8.self)
        }
    }
}
