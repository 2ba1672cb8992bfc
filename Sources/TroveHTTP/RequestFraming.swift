/// Finds where one HTTP/1.x request ends in the bytes a client sent, and whether it is a plain read: a request the
/// hit fast path may answer from a stored entry without NIO's decoder, the headers it carries no concern of a hit.
///
/// It reads less than a full parser and is stricter: anything it does not fully understand (a chunked body, an
/// upgrade, obsolete line folding, a bare LF, a byte no header may hold, an HTTP version but 1.0 and 1.1) is
/// `.unframed`, and the caller hands the rest of the connection to NIO's decoder, which answers it as before. So
/// it never has to agree with the decoder on a doubtful request: it only frames requests both read the same way.
public enum RequestFraming {
    /// A GET or HEAD over HTTP/1.1 with exactly one `Host`, no body, a connection kept open, and no header but
    /// those a hit does not read (`harmless`): its answer depends on its method and target only.
    public struct PlainRead: Equatable, Sendable {
        public var isHead: Bool
        /// The request target's bytes, as offsets into the bytes framed.
        public var target: Range<Int>
        /// The `Host` value's bytes (trimmed).
        public var host: Range<Int>
        /// The whole request: its head, blank line included.
        public var length: Int
    }

    public enum Frame: Equatable, Sendable {
        /// The head has not all arrived.
        case incomplete
        case plainRead(PlainRead)
        /// Any other request whose end is known: its head and `Content-Length` bytes of body (more than were
        /// given, when the body has not all arrived).
        case request(length: Int)
        /// Where the request ends cannot be told here (or the head is larger than `maxHead`).
        case unframed
    }

    /// Headers a hit never reads (content negotiation it does not vary on, browser hints, caching hints Trove
    /// does not take from clients). Any other header (credentials, conditionals, ranges, forwarding) sends the
    /// request the full way.
    static let harmless: [[UInt8]] = [
        "user-agent", "accept", "accept-language", "accept-encoding", "referer", "dnt", "cache-control", "pragma",
        "upgrade-insecure-requests", "priority", "x-request-id", "traceparent", "tracestate",
    ].map { Array($0.utf8) }

    /// Header names the server never reads from a plain read: lower-case, as the fast path takes them.
    public static var harmlessNames: [String] { harmless.map { String(decoding: $0, as: UTF8.self) } }

    /// Frames the request at the start of `bytes`. `maxHead`: past this many bytes without the end of the head,
    /// `.unframed` (the decoder then answers 431 if its own limit is passed too).
    public static func frame(_ bytes: UnsafeRawBufferPointer, maxHead: Int) -> Frame {
        let count = bytes.count
        // The end of the head: the first CRLF CRLF. A LF anywhere without its CR is left to the decoder.
        var end = -1
        var index = 0
        let limit = min(count, max(0, maxHead))
        while index < limit {
            let byte = bytes[index]
            if byte == lf {
                guard index > 0, bytes[index - 1] == cr else { return .unframed }
                if index >= 3, bytes[index - 2] == lf {
                    end = index + 1
                    break
                }
            } else if index > 0, bytes[index - 1] == cr {
                return .unframed  // a CR not followed by LF
            }
            index += 1
        }
        if end < 0 { return count >= maxHead ? .unframed : .incomplete }

        // The request line: METHOD SP target SP HTTP/1.x CRLF.
        var at = 0
        while at < end, isTokenByte(bytes[at]) { at += 1 }
        let method = 0..<at
        guard !method.isEmpty, at < end, bytes[at] == space else { return .unframed }
        at += 1
        let targetStart = at
        while at < end, bytes[at] > 0x20, bytes[at] < 0x7F { at += 1 }
        let target = targetStart..<at
        guard !target.isEmpty, at < end, bytes[at] == space else { return .unframed }
        at += 1
        guard at + 10 <= end, matches(bytes, at, "HTTP/1."), bytes[at + 7] == UInt8(ascii: "0") || bytes[at + 7] == UInt8(ascii: "1"),
            bytes[at + 8] == cr
        else { return .unframed }
        let isHTTP11 = bytes[at + 7] == UInt8(ascii: "1")
        at += 10
        let isGet = method.count == 3 && matches(bytes, 0, "GET")
        let isHead = method.count == 4 && matches(bytes, 0, "HEAD")
        if method.count == 7 && matches(bytes, 0, "CONNECT") { return .unframed }

        // The headers, up to the blank line.
        var plain = (isGet || isHead) && isHTTP11
        var hosts = 0
        var host = 0..<0
        var contentLength: Int?
        while at < end - 2 {
            let nameStart = at
            while at < end, isTokenByte(bytes[at]) { at += 1 }
            let name = nameStart..<at
            guard !name.isEmpty, at < end, bytes[at] == colon else { return .unframed }  // also obs-fold, space before ':'
            at += 1
            while bytes[at] == space || bytes[at] == tab { at += 1 }
            let valueStart = at
            var valueEnd = at
            while bytes[at] != cr {
                let byte = bytes[at]
                guard byte == tab || (byte >= 0x20 && byte != 0x7F) else { return .unframed }
                at += 1
                if byte != space && byte != tab { valueEnd = at }
            }
            let value = valueStart..<valueEnd
            at += 2  // CRLF (checked above)
            if named(bytes, name, "content-length") {
                guard contentLength == nil, !value.isEmpty, value.count <= 15 else { return .unframed }
                var length = 0
                for offset in value {
                    let digit = bytes[offset] &- UInt8(ascii: "0")
                    guard digit < 10 else { return .unframed }
                    length = length * 10 + Int(digit)
                }
                contentLength = length
            } else if named(bytes, name, "transfer-encoding") || named(bytes, name, "upgrade") {
                return .unframed
            } else if named(bytes, name, "host") {
                hosts += 1
                host = value
            } else if named(bytes, name, "connection") {
                if !(value.count == 10 && named(bytes, value, "keep-alive")) { plain = false }
            } else if plain, !(name.count > 4 && named(bytes, name.lowerBound..<(name.lowerBound + 4), "sec-")),
                !harmless.contains(where: { named(bytes, name, $0) })
            {
                plain = false
            }
        }
        let body = contentLength ?? 0
        if plain, hosts == 1, body == 0 {
            return .plainRead(PlainRead(isHead: isHead, target: target, host: host, length: end))
        }
        return .request(length: end + body)
    }

    /// The header fields of a plain read (`bytes`: the bytes it was framed in), names and values as sent (values
    /// trimmed): for the full path, when a read the fast path took turns out to need it.
    public static func fields(of read: PlainRead, in bytes: UnsafeRawBufferPointer) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        var at = 0
        while at < read.length, bytes[at] != lf { at += 1 }  // past the request line
        at += 1
        while at < read.length - 2 {
            let start = at
            while bytes[at] != cr { at += 1 }
            let line = UnsafeRawBufferPointer(rebasing: bytes[start..<at])
            at += 2
            guard let colon = line.firstIndex(of: colon) else { continue }
            var valueStart = colon + 1
            var valueEnd = line.count
            while valueStart < valueEnd, line[valueStart] == space || line[valueStart] == tab { valueStart += 1 }
            while valueEnd > valueStart, line[valueEnd - 1] == space || line[valueEnd - 1] == tab { valueEnd -= 1 }
            fields.append((String(decoding: line[..<colon], as: UTF8.self), String(decoding: line[valueStart..<valueEnd], as: UTF8.self)))
        }
        return fields
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let colon = UInt8(ascii: ":")

    /// RFC 9110 §5.6.2 tchar.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// The bytes at `offset` are `text`, exactly.
    private static func matches(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ text: StaticString) -> Bool {
        guard offset + text.utf8CodeUnitCount <= bytes.count else { return false }
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        for index in 0..<expected.count where bytes[offset + index] != expected[index] { return false }
        return true
    }

    /// The bytes in `range` are `lowercased`, ignoring ASCII case.
    private static func named(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString) -> Bool {
        guard range.count == lowercased.utf8CodeUnitCount else { return false }
        return named(bytes, range, UnsafeBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount))
    }

    private static func named(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: [UInt8]) -> Bool {
        guard range.count == lowercased.count else { return false }
        return lowercased.withUnsafeBufferPointer { named(bytes, range, $0) }
    }

    private static func named(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == lowercased.count else { return false }
        var offset = range.lowerBound
        for expected in lowercased {
            var byte = bytes[offset]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected { return false }
            offset += 1
        }
        return true
    }
}
