import TroveHTTP
import TroveRules
import Testing
import TroveCore

@Suite struct EntryCodecTests {
    static let meta = EntryMeta(
        status: 200, headers: [Header("Content-Type", "application/json"), Header("ETag", "\"v1\"")],
        storedAt: 1_800_000_000_000, freshUntil: 1_800_000_300_000, staleUntil: 1_800_000_360_000,
        route: "events-list", tags: ["events", "event:42"], generations: [0, 3, 0, 7, 1],
        variant: [Header("accept", "application/json")], bodyLength: 5)

    /// The head survives a round trip, and the body starts right after it.
    @Test func roundTrip() throws {
        let bytes = EntryCodec.encodeHead(Self.meta) + Array("hello".utf8)
        let (decoded, offset) = try #require(EntryCodec.decodeHead(bytes))
        #expect(decoded == Self.meta)
        #expect(Array(bytes[offset...]) == Array("hello".utf8))
    }

    /// Every store writes a head of its own (the nonce), so a head names one body; the nonce is not part of the meta.
    @Test func headsAreUniquePerStore() throws {
        let first = EntryCodec.encodeHead(Self.meta)
        let second = EntryCodec.encodeHead(Self.meta)
        #expect(first != second)
        #expect(try #require(EntryCodec.decodeHead(first + Array("hello".utf8))).meta == (try #require(EntryCodec.decodeHead(second + Array("hello".utf8)))).meta)
        #expect(EntryCodec.encodeHead(Self.meta, nonce: 7) == EntryCodec.encodeHead(Self.meta, nonce: 7))
    }

    /// A chunked entry's head stands alone (its body is elsewhere), names its chunks by its nonce, and says a chunk
    /// size within bounds; a head that says chunks and carries a body, or names an absurd size, is not an entry.
    @Test func chunkedHeads() throws {
        var chunked = Self.meta
        chunked.bodyLength = 5 << 20
        chunked.chunks = EntryChunks(nonce: 42, size: 1 << 20)
        let head = EntryCodec.encodeHead(chunked, nonce: 7)
        let decoded = try #require(EntryCodec.decodeHead(head))
        #expect(decoded.meta == chunked)
        #expect(decoded.meta.chunks?.nonce == 42, "the chunks' nonce is the head's")
        #expect(EntryCodec.decodeHead(head + [1]) == nil)
        #expect(chunked.chunks?.count(of: chunked.bodyLength) == 5)
        #expect(chunked.chunks?.count(of: (5 << 20) + 1) == 6)
        #expect(chunked.chunks?.length(of: 5, in: (5 << 20) + 1) == 1)
        for size in [1, 4095, 65 << 20] {
            chunked.chunks = EntryChunks(nonce: 42, size: size)
            #expect(EntryCodec.decodeHead(EntryCodec.encodeHead(chunked)) == nil, "chunk size \(size)")
        }
    }

    /// Cut, foreign or mislabelled values are not entries: they decode as nil, never crash.
    @Test func rejectsWhatIsNotAnEntry() {
        let bytes = EntryCodec.encodeHead(Self.meta) + Array("hello".utf8)
        #expect(EntryCodec.decodeHead(Array(bytes.dropLast())) == nil)
        #expect(EntryCodec.decodeHead(bytes + [0]) == nil)
        #expect(EntryCodec.decodeHead(Array("{\"json\": true}".utf8)) == nil)
        #expect(EntryCodec.decodeHead([]) == nil)
        for version: UInt8 in [1, 2, 3, 4, 6] {  // 2: before the nonce; 3: before chunks; 4: before origin tags
            var otherVersion = bytes
            otherVersion[3] = version
            #expect(EntryCodec.decodeHead(otherVersion) == nil)
        }
        for cut in stride(from: 0, to: bytes.count - 5, by: 7) {
            #expect(EntryCodec.decodeHead(Array(bytes.prefix(cut))) == nil)
        }
    }

    /// Ages and remaining TTLs are whole seconds; an expired entry has a negative TTL, as RFC 9211 wants.
    @Test func agesAndTTLs() {
        #expect(Self.meta.age(at: 1_800_000_010_900) == 10)
        #expect(Self.meta.age(at: 1_799_999_999_000) == 0)
        #expect(Self.meta.remainingTTL(at: 1_800_000_000_000) == 300)
        #expect(Self.meta.remainingTTL(at: 1_800_000_299_999) == 0)
        #expect(Self.meta.remainingTTL(at: 1_800_000_301_000) == -1)
    }
}
