/// A route's path template (`/api/v1/events/{id}`), matched segment by segment against a `RequestTarget`.
///
/// Segment forms: a literal (`events`); `{name}`, one non-empty segment captured as a parameter, optionally with
/// literal text around it in the same segment (`{id}.json`, `v{version}`); `*`, one non-empty segment, not
/// captured; `{name...}`, the rest of the path (zero or more segments) captured; `**`, the rest of the path, not
/// captured. Rest forms must be last. A trailing `/` is significant, as it is to Django: `/api/products/` and
/// `/api/products` are different paths.
public struct PathPattern: Sendable, Equatable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        /// Compared with the request segment after full percent-decoding.
        case literal(String)
        /// Captures the text between a literal prefix and suffix (both usually empty) in one segment.
        case parameter(String, prefix: String = "", suffix: String = "")
        case anySegment
        case rest(String?)
    }

    public let description: String
    let segments: [Segment]

    /// The names of the captured parameters, in order.
    public var parameterNames: [String] {
        segments.compactMap {
            switch $0 {
            case .parameter(let name, _, _), .rest(.some(let name)): return name
            default: return nil
            }
        }
    }

    /// Names of parameters that capture the rest of the path (their values may contain `/`).
    var restParameterNames: Set<String> {
        Set(segments.compactMap { if case .rest(.some(let name)) = $0 { return name } else { return nil } })
    }

    /// Why a path template is malformed; the message says how to write it.
    struct ParseError: Error, Equatable {
        let message: String
    }

    init(parsing text: String) throws(ParseError) {
        guard text.hasPrefix("/") else {
            throw ParseError(message: "the path must start with '/' (got '\(text)')")
        }
        guard !text.contains("?") else {
            throw ParseError(
                message: "the path must not contain a query ('?'); routes match paths, keys read the query")
        }
        var segments: [Segment] = []
        var seen = Set<String>()
        let parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            let isLast = index == parts.count - 1
            if part == "**" {
                guard isLast else { throw ParseError(message: "'**' must be the last segment of the path") }
                segments.append(.rest(nil))
            } else if part == "*" {
                segments.append(.anySegment)
            } else if part.contains("{") || part.contains("}"),
                part.filter({ $0 == "{" }).count != 1 || part.filter({ $0 == "}" }).count != 1
                    || part.firstIndex(of: "{")! > part.firstIndex(of: "}")!
            {
                throw ParseError(
                    message: "segment '\(part)' is not a pattern Trove reads: a segment holds one {name}, "
                        + "optionally with text around it ({id}.json), and '{name...}' or '**' only alone")
            } else if let open = part.firstIndex(of: "{"), let close = part.firstIndex(of: "}"),
                !(part.hasPrefix("{") && part.hasSuffix("}"))
            {
                // `{id}.json`: one parameter with literal text around it.
                let prefix = part[..<open], suffix = part[part.index(after: close)...]
                let name = String(part[part.index(after: open)..<close])
                guard !prefix.contains(where: { "{}*".contains($0) }), !suffix.contains(where: { "{}*".contains($0) }),
                    !name.hasSuffix("...")
                else {
                    throw ParseError(
                        message: "segment '\(part)' is not a pattern Trove reads: a segment holds one {name}, "
                            + "optionally with text around it ({id}.json), and '{name...}' or '**' only alone")
                }
                guard Self.isValidName(name), !Self.reservedNames.contains(name) else {
                    throw ParseError(
                        message: "'{\(name)}' is not a valid parameter name; use letters, digits and '_', "
                            + "starting with a letter")
                }
                guard seen.insert(name).inserted else {
                    throw ParseError(message: "parameter '{\(name)}' appears twice in the path")
                }
                segments.append(.parameter(
                    name, prefix: Self.decodedLiteral(prefix), suffix: Self.decodedLiteral(suffix)))
            } else if part.hasPrefix("{") && part.hasSuffix("}") {
                var name = String(part.dropFirst().dropLast())
                let isRest = name.hasSuffix("...")
                if isRest { name = String(name.dropLast(3)) }
                guard Self.isValidName(name) else {
                    throw ParseError(
                        message: "'{\(name)}' is not a valid parameter name; use letters, digits and '_', "
                            + "starting with a letter")
                }
                guard !Self.reservedNames.contains(name) else {
                    throw ParseError(
                        message: "'{\(name)}' cannot be a path parameter: '\(name)' names a built-in placeholder "
                            + "({method}, {path}, {query}); choose another name")
                }
                guard seen.insert(name).inserted else {
                    throw ParseError(message: "parameter '{\(name)}' appears twice in the path")
                }
                if isRest {
                    guard isLast else {
                        throw ParseError(message: "'{\(name)...}' captures the rest of the path, so it must be last")
                    }
                    segments.append(.rest(name))
                } else {
                    segments.append(.parameter(name))
                }
            } else if part.contains("{") || part.contains("}") || part.contains("*") {
                throw ParseError(
                    message: "segment '\(part)' is not a pattern Trove reads: a wildcard (*, **) must be a whole "
                        + "segment, and a placeholder is written {name}")
            } else {
                segments.append(.literal(Self.decodedLiteral(part)))
            }
        }
        self.description = text
        self.segments = segments
    }

    static let reservedNames: Set<String> = ["method", "path", "query"]

    private static func decodedLiteral(_ text: Substring) -> String {
        RequestTarget.decodeFormComponent(RequestTarget.normalizePercentEncoding(text), plusIsSpace: false)
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }

    /// The captured parameters when `segments` (normalized, as in `RequestTarget`) match; nil otherwise.
    /// Captured values are in normalized form; rest values join their segments with `/`.
    public func match(_ requestSegments: [String]) -> [String: String]? {
        var parameters: [String: String] = [:]
        var index = 0
        for segment in segments {
            switch segment {
            case .rest(let name):
                if let name { parameters[name] = requestSegments[index...].joined(separator: "/") }
                return parameters
            case .literal(let literal):
                guard index < requestSegments.count,
                    Self.literalMatches(literal, requestSegments[index])
                else { return nil }
            case .parameter(let name, let prefix, let suffix):
                guard index < requestSegments.count, !requestSegments[index].isEmpty else { return nil }
                let segment = requestSegments[index]
                if prefix.isEmpty && suffix.isEmpty {
                    parameters[name] = segment
                } else {
                    // Prefix and suffix are compared as written: they are plain text such as ".json".
                    guard segment.utf8.count > prefix.utf8.count + suffix.utf8.count,
                        segment.hasPrefix(prefix), segment.hasSuffix(suffix)
                    else { return nil }
                    parameters[name] = String(segment.dropFirst(prefix.count).dropLast(suffix.count))
                }
            case .anySegment:
                guard index < requestSegments.count, !requestSegments[index].isEmpty else { return nil }
            }
            index += 1
        }
        return index == requestSegments.count ? parameters : nil
    }

    @inline(__always)
    private static func literalMatches(_ literal: String, _ segment: String) -> Bool {
        // Normalized segments only keep escapes of reserved characters, which are rare in literals:
        // compare directly first, decode only when the segment has an escape left.
        if literal == segment { return true }
        guard segment.utf8.contains(UInt8(ascii: "%")) else { return false }
        return literal == RequestTarget.decodeFormComponent(segment, plusIsSpace: false)
    }

    /// True when every path this pattern's `other` matches is also matched by this pattern.
    func covers(_ other: PathPattern) -> Bool {
        Self.covers(segments[...], other.segments[...])
    }

    private static func covers(_ a: ArraySlice<Segment>, _ b: ArraySlice<Segment>) -> Bool {
        guard let first = a.first else { return b.isEmpty }
        if case .rest = first { return true }
        guard let other = b.first else { return false }
        switch (first, other) {
        case (_, .rest):
            return false
        case (.literal(let x), .literal(let y)):
            return x == y && covers(a.dropFirst(), b.dropFirst())
        case (.literal, _):
            return false
        case (.parameter(_, let prefix, let suffix), .literal(let y)):
            let fits = y.utf8.count > prefix.utf8.count + suffix.utf8.count && y.hasPrefix(prefix) && y.hasSuffix(suffix)
            return fits && covers(a.dropFirst(), b.dropFirst())
        case (.parameter(_, let prefix, let suffix), .parameter(_, let otherPrefix, let otherSuffix)):
            // Every value the other accepts has its prefix and suffix, and at least one character between them.
            let fits = otherPrefix.hasPrefix(prefix) && otherSuffix.hasSuffix(suffix)
                && otherPrefix.utf8.count + otherSuffix.utf8.count + 1 > prefix.utf8.count + suffix.utf8.count
            return fits && covers(a.dropFirst(), b.dropFirst())
        case (.parameter(_, let prefix, let suffix), .anySegment):
            return prefix.isEmpty && suffix.isEmpty && covers(a.dropFirst(), b.dropFirst())
        case (.anySegment, .literal(let y)):
            return !y.isEmpty && covers(a.dropFirst(), b.dropFirst())
        case (.anySegment, _):
            return covers(a.dropFirst(), b.dropFirst())
        case (.rest, _):
            return true
        }
    }
}
