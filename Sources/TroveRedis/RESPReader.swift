internal import CHiredis
public import NIOCore

/// One Redis reply, decoded.
public enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR …`
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5\r\nhello`
    case bulkString(ByteBuffer)
    /// `$-1` or `*-1`
    case null
    /// `*2\r\n…`
    case array([RESPValue])
}

/// Parses Redis replies from the bytes of a connection with hiredis' reader, which copes with replies split
/// across reads and several replies in one read.
///
/// Not thread-safe: a reader belongs to one connection, on that connection's event loop.
public final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    /// Why the bytes are not a Redis reply stream.
    public struct ProtocolError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public init() {
        guard let reader = redisReaderCreate() else {
            // hiredis returns NULL only when malloc fails.
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes read from the socket to the parser.
    public func feed(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress, raw.count > 0 else { return }
            _ = redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }

    /// Hands bytes to the parser.
    public func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, raw.count > 0 else { return }
            _ = redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }

    /// The next complete reply, or nil when more bytes are needed.
    public func next(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(ProtocolError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            let message = withUnsafeBytes(of: reader.pointee.errstr) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw ProtocolError(description: "Redis sent a malformed reply: \(message)")
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self), allocator: allocator)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>, allocator: ByteBufferAllocator) -> RESPValue {
        let value = reply.pointee
        switch Int32(value.type) {
        case REDIS_REPLY_STRING:
            var buffer = allocator.buffer(capacity: value.len)
            if let str = value.str, value.len > 0 {
                buffer.writeBytes(UnsafeRawBufferPointer(start: str, count: value.len))
            }
            return .bulkString(buffer)
        case REDIS_REPLY_STATUS:
            return .simpleString(string(value))
        case REDIS_REPLY_ERROR:
            return .error(string(value))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] {
                    elements.append(convert(element, allocator: allocator))
                }
            }
            return .array(elements)
        default:
            return .error("unknown reply type \(value.type)")
        }
    }

    private static func string(_ value: redisReply) -> String {
        guard let str = value.str, value.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: value.len), as: UTF8.self)
    }
}

/// Writes Redis commands in RESP, the form `redisFormatCommandArgv` produces, straight into a `ByteBuffer`.
public enum RESPEncoder {
    /// Appends `*N\r\n$len\r\narg\r\n…` for the command and its arguments.
    public static func encode(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(arguments.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            switch argument {
            case .string(let text):
                writeDecimal(text.utf8.count, into: &buffer)
                buffer.writeStaticString("\r\n")
                buffer.writeString(text)
            case .bytes(let bytes):
                writeDecimal(bytes.readableBytes, into: &buffer)
                buffer.writeStaticString("\r\n")
                buffer.writeImmutableBuffer(bytes)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    /// `*count\r\n`: a command of `count` arguments follows.
    static func writeArrayHeader(_ count: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(count, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// One argument made of three pieces (`namespace`, `:g:t:`, `tag`), written without joining them first.
    static func writeBulk(_ first: String, _ middle: StaticString, _ last: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "$"))
        writeDecimal(first.utf8.count + middle.utf8CodeUnitCount + last.utf8.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeString(first)
        buffer.writeStaticString(middle)
        buffer.writeString(last)
        buffer.writeStaticString("\r\n")
    }

    /// A non-negative count in decimal, without making a String of it (every command has several).
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }
}

/// One argument of a Redis command.
public enum RESPArgument: Sendable, ExpressibleByStringLiteral {
    case string(String)
    case bytes(ByteBuffer)

    public init(stringLiteral value: String) {
        self = .string(value)
    }
}
