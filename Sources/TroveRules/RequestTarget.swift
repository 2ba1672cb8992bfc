/// A request's path and query, normalized the way RFC 3986 §6.2.2 allows without changing what they mean.
///
/// - Percent-escapes of unreserved characters are decoded (`%7E` → `~`), the others get upper-case hex
///   (`%2f` → `%2F`); nothing else is decoded, so `a%2Fb` stays one path segment and `:` stays `:`.
/// - Dot segments are removed (`/a/./b/../c` → `/a/c`), also when they were written `%2E`.
/// - The query is kept exactly as sent for forwarding; its items are split for keys and templates.
///
/// Values taken from here (path segments, query values) are in this normalized form: two spellings of the
/// same URL give the same values, and two different URLs never do.
public struct RequestTarget: Sendable, Equatable {
    /// One `name=value` item of the query string.
    public struct QueryItem: Sendable, Equatable {
        /// The name, fully decoded (`+` is a space), for matching `{query.NAME}`.
        public var name: String
        /// The name in normalized form, as it goes into `{query}`.
        public var rawName: String
        /// The value in normalized form; nil when the item had no `=` (`?debug`).
        public var value: String?
    }

    /// The path segments after the leading `/`, normalized; `/` is `[""]`.
    public let segments: [String]
    /// The query as the client sent it, without the `?`; nil when there was no `?`.
    public let rawQuery: String?
    /// The query items in the order the client sent them.
    public let queryItems: [QueryItem]

    /// The normalized path: what is matched, forwarded and used by `{path}`.
    public let path: String

    /// The normalized path plus the query exactly as sent: what Trove forwards to the origin.
    public var forwardTarget: String {
        guard let rawQuery else { return path }
        return path + "?" + rawQuery
    }

    /// Why a request target cannot be used.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Parses an origin-form (`/path?query`) or absolute-form (`http://host/path?query`) request target.
    public init(parsing target: String) throws(ParseError) {
        // Byte-wise scanning throughout: this runs for every request, and Character-wise scanning of a String
        // (grapheme breaking) costs several times more.
        var text = Substring(target)
        if let fragment = text.utf8.firstIndex(of: UInt8(ascii: "#")) { text = text[..<fragment] }
        // Bytes, not Characters, here too: `/` followed by a combining mark is one Character, which is not "/".
        if text.utf8.first != UInt8(ascii: "/") {
            // Absolute form, as sent to proxies: keep only the path and query.
            let schemeEnd = text.utf8.indices.first { index in text.utf8[index...].starts(with: "://".utf8) }
            guard let schemeEnd, text[..<schemeEnd].allSatisfy({ $0.isASCII && $0.isLetter }) else {
                throw ParseError(description: "the request target must start with '/' (got '\(target)')")
            }
            let afterAuthority = text[text.utf8.index(schemeEnd, offsetBy: 3)...]
            if let slash = afterAuthority.utf8.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) {
                text = afterAuthority[slash...]
                if text.utf8.first == UInt8(ascii: "?") { text = "/" + text }
            } else {
                text = "/"
            }
        }
        guard !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw ParseError(description: "the request target contains a space or a control character")
        }
        let rawPath: Substring
        if let question = text.utf8.firstIndex(of: UInt8(ascii: "?")) {
            rawPath = text[..<question]
            rawQuery = String(text[text.utf8.index(after: question)...])
        } else {
            rawPath = text
            rawQuery = nil
        }
        let afterSlash = rawPath[rawPath.utf8.index(after: rawPath.utf8.startIndex)...]
        let segments = Self.removeDotSegments(Self.split(afterSlash, at: UInt8(ascii: "/"), keepingEmpty: true))
        self.segments = segments
        path = segments.count == 1 ? "/" + segments[0] : "/" + segments.joined(separator: "/")
        queryItems = rawQuery.map(Self.parseQuery) ?? []
    }

    private init(segments: [String], path: String, rawQuery: String?) {
        self.segments = segments
        self.path = path
        self.rawQuery = rawQuery
        queryItems = rawQuery.map(Self.parseQuery) ?? []
    }

    /// The same target without the query items whose decoded name `drop` accepts; the rest of the query stays as
    /// sent, in order (and the `?` goes when nothing is left).
    public func removingQueryItems(where drop: (String) -> Bool) -> RequestTarget {
        guard let rawQuery else { return self }
        let kept = Self.split(Substring(rawQuery), at: UInt8(ascii: "&"), keepingEmpty: false).filter { item in
            let name = item.utf8.firstIndex(of: UInt8(ascii: "=")).map { item[..<$0] } ?? item
            return !drop(Self.decodeFormComponent(name))
        }
        return RequestTarget(segments: segments, path: path, rawQuery: kept.isEmpty ? nil : kept.joined(separator: "&"))
    }

    /// The first value of query parameter `name` (decoded name), in normalized form; nil when absent.
    public func queryValues(named name: String) -> [String?] {
        queryItems.filter { $0.name == name }.map(\.value)
    }

    // RFC 3986 §5.2.4, on already-split segments. A trailing "." or ".." leaves a trailing empty segment,
    // so "/a/b/.." is "/a/", as the RFC says.
    private static func removeDotSegments(_ rawSegments: [Substring]) -> [String] {
        var output: [String] = []
        for (index, raw) in rawSegments.enumerated() {
            let segment = normalizePercentEncoding(raw)
            let isLast = index == rawSegments.count - 1
            switch segment {
            case ".":
                if isLast { output.append("") }
            case "..":
                if !output.isEmpty { output.removeLast() }
                if isLast { output.append("") }
            default:
                output.append(segment)
            }
        }
        return output.isEmpty ? [""] : output
    }

    /// `text` split at every `separator` byte (an ASCII character, so never inside a multi-byte one).
    static func split(_ text: Substring, at separator: UInt8, keepingEmpty: Bool) -> [Substring] {
        var parts: [Substring] = []
        var start = text.startIndex
        var index = text.utf8.startIndex
        while index < text.utf8.endIndex {
            if text.utf8[index] == separator {
                if keepingEmpty || start < index { parts.append(text[start..<index]) }
                start = text.utf8.index(after: index)
            }
            index = text.utf8.index(after: index)
        }
        if keepingEmpty || start < text.endIndex { parts.append(text[start...]) }
        return parts
    }

    private static func parseQuery(_ query: String) -> [QueryItem] {
        split(Substring(query), at: UInt8(ascii: "&"), keepingEmpty: false).map { item in
            if let equals = item.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let name = item[..<equals]
                return QueryItem(
                    name: decodeFormComponent(name),
                    rawName: normalizePercentEncoding(name),
                    value: normalizePercentEncoding(item[item.index(after: equals)...])
                )
            }
            return QueryItem(name: decodeFormComponent(item), rawName: normalizePercentEncoding(item), value: nil)
        }
    }

    /// Decodes `%XX` escapes of unreserved characters and upper-cases the hex of the others. A `%` that does not
    /// start an escape is written `%25`: left as it is, the decoding could complete it (`%e%44` would become
    /// `%eD`, an escape of its own), so normalizing twice would not give what normalizing once did (found by
    /// fuzzing, `fuzz/regressions/target`).
    static func normalizePercentEncoding<S: StringProtocol>(_ text: S) -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        return rewritingEscapes(text) { piece, output in
            switch piece {
            case .escape(let value, _, _) where KeyEscaping.isUnreserved(value):
                output.append(value)
            case .escape(_, let high, let low):
                output.append(contentsOf: [UInt8(ascii: "%"), upperHex(high), upperHex(low)])
            case .byte(UInt8(ascii: "%")):
                output.append(contentsOf: [UInt8(ascii: "%"), UInt8(ascii: "2"), UInt8(ascii: "5")])
            case .byte(let byte):
                output.append(byte)
            }
        }
    }

    /// Fully decodes a query name or a path literal (`+` is a space in the query), for comparisons only.
    static func decodeFormComponent<S: StringProtocol>(_ text: S, plusIsSpace: Bool = true) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else {
            return String(text)
        }
        return rewritingEscapes(text) { piece, output in
            switch piece {
            case .escape(let value, _, _): output.append(value)
            case .byte(UInt8(ascii: "+")) where plusIsSpace: output.append(UInt8(ascii: " "))
            case .byte(let byte): output.append(byte)
            }
        }
    }

    /// A piece of percent-encoded text: a whole `%XX` escape (its value and its two hex digits as written), or
    /// any other byte (a `%` that starts no escape included).
    private enum Piece {
        case escape(value: UInt8, high: UInt8, low: UInt8)
        case byte(UInt8)
    }

    /// The one walk over `%XX` escapes: `write` turns each piece into output bytes.
    private static func rewritingEscapes<S: StringProtocol>(_ text: S, _ write: (Piece, inout [UInt8]) -> Void) -> String {
        let utf8 = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(utf8.count)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "%"), index + 2 < utf8.count,
                let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2])
            {
                write(.escape(value: high << 4 | low, high: utf8[index + 1], low: utf8[index + 2]), &output)
                index += 3
            } else {
                write(.byte(utf8[index]), &output)
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func upperHex(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) ? byte - 32 : byte
    }
}
