import NIOCore
import Testing
@testable import TroveRedis

@Suite struct RESPReaderTests {
    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// hiredis' reader parses each kind of reply.
    @Test func parsesEveryReplyKind() throws {
        let reader = RESPReader()
        reader.feed(Array("+OK\r\n-ERR wrong type\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:7\r\n*0\r\n".utf8))
        #expect(try reader.next() == .simpleString("OK"))
        #expect(try reader.next() == .error("ERR wrong type"))
        #expect(try reader.next() == .integer(42))
        #expect(try reader.next() == bulk("hello"))
        #expect(try reader.next() == .null)
        #expect(try reader.next() == .array([bulk("a"), .integer(7)]))
        #expect(try reader.next() == .array([]))
        #expect(try reader.next() == nil)
    }

    /// A reply split across reads is returned once it is complete; binary bodies survive intact.
    @Test func reassemblesSplitReplies() throws {
        let reader = RESPReader()
        let body: [UInt8] = Array(0...255) + [13, 10, 0]
        let reply = Array("$\(body.count)\r\n".utf8) + body + Array("\r\n".utf8)
        for byte in reply.dropLast() {
            reader.feed([byte])
            #expect(try reader.next() == nil)
        }
        reader.feed([reply.last!])
        #expect(try reader.next() == .bulkString(ByteBuffer(bytes: body)))
    }

    /// Bytes that are not RESP are a protocol error, not a crash.
    @Test func rejectsGarbage() {
        let reader = RESPReader()
        reader.feed(Array("HTTP/1.1 200 OK\r\n".utf8))
        #expect(throws: RESPReader.ProtocolError.self) { try reader.next() }
    }

    /// Commands are written as RESP arrays of bulk strings, as `redisFormatCommandArgv` does.
    @Test func encodesCommands() {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        RESPEncoder.encode(["SET", "k", .bytes(ByteBuffer(string: "v\r\n"))], into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n")
        // Lengths of every size are written in decimal without a String in between.
        let long = String(repeating: "x", count: 12_345)
        var big = ByteBufferAllocator().buffer(capacity: 13_000)
        RESPEncoder.encode(Array(repeating: RESPArgument.string("a"), count: 10) + [.string(long)], into: &big)
        let text = big.readString(length: big.readableBytes) ?? ""
        #expect(text.hasPrefix("*11\r\n$1\r\na\r\n"))
        #expect(text.contains("$12345\r\nxxx"))
    }

    /// Counters are read as numbers straight from the reply's bytes.
    @Test func readsIntegers() {
        #expect(RedisStore.integer(ByteBuffer(string: "0")) == 0)
        #expect(RedisStore.integer(ByteBuffer(string: "42")) == 42)
        #expect(RedisStore.integer(ByteBuffer(string: "-7")) == -7)
        #expect(RedisStore.integer(ByteBuffer(string: "123456789012345678")) == 123_456_789_012_345_678)
        #expect(RedisStore.integer(ByteBuffer(string: "1234567890123456789")) == nil, "too long to be a counter")
        #expect(RedisStore.integer(ByteBuffer(string: "4x")) == nil)
        #expect(RedisStore.integer(ByteBuffer(string: "")) == nil)
        #expect(RedisStore.integer(ByteBuffer(string: "-")) == nil)
    }
}
