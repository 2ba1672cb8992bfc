internal import TroveHTTP
internal import NIOCore
internal import NIOHTTP1
internal import TroveCore

/// Writes an HTTP/1.x answer's head as bytes: the status line, the answer's headers (Trove's own cache
/// headers replacing any the origin sent), `Content-Length`, `Connection`, and the blank line.
///
/// Trove always knows the whole body's length, so it never needs chunked encoding or NIO's general encoder;
/// writing the head directly saves building `HTTPHeaders` and encoding them again on every hit. Header names
/// and values were checked when they entered (`HeaderPolicy.responseHeaders`) or are Trove's own.
enum ResponseEncoding {
    /// Trove's headers for one answer.
    struct TroveHeaders {
        var cacheStatus: CacheStatus?
        var age: Int?
        var retryAfter: Int?

        static let none = TroveHeaders(cacheStatus: nil, age: nil, retryAfter: nil)
    }

    /// 1xx, 204 and 304 answers have no body and no Content-Length.
    static func isBodiless(_ status: Int) -> Bool {
        status < 200 || status == 204 || status == 304
    }

    static func head(
        version: HTTPVersion, status: Int, headers: [Header], trove: TroveHeaders, contentLength: Int?, keepAlive: Bool,
        allocator: ByteBufferAllocator, reserving: Int = 0
    ) -> ByteBuffer {
        // `reserving`: room for bytes the caller writes after the head (a small body), in the same allocation.
        var buffer = allocator.buffer(capacity: 256 + headers.count * 48 + reserving)
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        writeDecimal(status, into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        buffer.writeStaticString("\r\n")
        // The origin's Cache-Status members come first in Trove's (RFC 9211 §2: caches append theirs).
        var upstreamCacheStatus: String?
        for header in headers {
            if trove.cacheStatus != nil {
                if HTTPSyntax.name(header.name, is: "cache-status") {
                    upstreamCacheStatus = upstreamCacheStatus.map { $0 + ", " + header.value } ?? header.value
                    continue
                }
                if HTTPSyntax.name(header.name, is: "x-cache") { continue }
            }
            write(header.name, header.value, into: &buffer)
        }
        if let cacheStatus = trove.cacheStatus {
            if upstreamCacheStatus == nil, let ttl = cacheStatus.ttl, ttl >= 0,
                cacheStatus == CacheStatus(outcome: .hit, hit: true, ttl: ttl)
            {
                // The plain hit, every hit's value: written without building its string.
                buffer.writeStaticString("X-Cache: HIT\r\nCache-Status: trove; hit; ttl=")
                writeDecimal(ttl, into: &buffer)
                buffer.writeStaticString("\r\n")
            } else {
                buffer.writeStaticString("X-Cache: ")
                buffer.writeString(cacheStatus.outcome.rawValue)
                buffer.writeStaticString("\r\nCache-Status: ")
                buffer.writeString(cacheStatus.headerValue(appendingTo: upstreamCacheStatus))
                buffer.writeStaticString("\r\n")
            }
        }
        if let age = trove.age {
            buffer.writeStaticString("Age: ")
            writeDecimal(age, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        if let retryAfter = trove.retryAfter {
            buffer.writeStaticString("Retry-After: ")
            writeDecimal(retryAfter, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        if let contentLength {
            buffer.writeStaticString("Content-Length: ")
            writeDecimal(contentLength, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        if !keepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if version.minor == 0 {
            // An HTTP/1.0 client asked to keep the connection: say it is kept.
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// `100 Continue`, for a request that expects it.
    static func interimContinue(version: HTTPVersion, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 32)
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n")
        return buffer
    }

    private static func write(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// A non-negative number in decimal, without making a String of it.
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        guard value > 0 else {
            buffer.writeInteger(UInt8(ascii: "0"))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
