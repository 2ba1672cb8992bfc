public import TroveHTTP
private import Crypto

/// A cache key, tag or purge template such as `events:list:page={query.page|default:1}:user={header.authorization|sha256}`.
///
/// Text outside braces is copied as written; each `{…}` placeholder is replaced by a value from the request,
/// passed through its filters, then escaped with `KeyEscaping`. Because escaped values never contain a
/// separator, and validation insists that two placeholders are always separated by a character their values
/// cannot contain, two requests that differ in any value the template reads never render the same text.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    /// Where a placeholder's value comes from.
    public enum Source: Sendable, Hashable {
        /// `{id}` or `{path.id}`: a parameter captured by the route's path.
        case pathParameter(String)
        /// `{query.page}`: the values of one query parameter, each escaped and joined with `%2c` when repeated;
        /// empty when absent.
        case queryParameter(String)
        /// `{header.accept-language}`: one request header (name lower-cased), its lines joined like repeated query
        /// values.
        case header(String)
        /// `{cookie.sessionid}`: one cookie from the `Cookie` header.
        case cookie(String)
        /// `{method}`: the request method (`GET` for a HEAD, which is answered from the GET entry).
        case method
        /// `{path}`: the whole normalized path.
        case path
        /// `{query}`: the whole query, its items sorted, so that `?b=2&a=1` and `?a=1&b=2` share a key.
        case query
        /// `{query:page,limit,search}`: only these query parameters (names sorted), rendered as `{query}` renders
        /// its items: `limit=20&page=2` (an absent one is left out, so `?page=` and no `page` differ).
        case queryParameters([String])
        /// `{body.id}`, `{body.product.id}`: a field of a JSON body (webhook purges only).
        case bodyField(String)
        /// `{jwt.sub}`, `{jwt.org.id}`: a claim of the request's verified token (routes with a `jwt:` verifier only);
        /// empty for a request without a token.
        case tokenClaim(String)
    }

    /// A transformation applied to a placeholder's value before it is escaped.
    public enum Filter: Sendable, Equatable, CustomStringConvertible {
        /// ASCII letters to lower case.
        case lower
        /// ASCII letters to upper case.
        case upper
        /// Spaces and tabs removed at both ends.
        case trim
        /// The hex SHA-256 of the value (of nothing, when absent): keeps credentials out of keys in clear.
        case sha256
        /// The value to use when the request does not carry one.
        case `default`(String)
        /// The credentials after an `Authorization` value's scheme, whatever the scheme's case: `Bearer abc` and
        /// `bearer abc` both give `abc` (a value without a scheme is kept whole).
        case token

        var isTextFilter: Bool {
            switch self {
            case .lower, .upper, .trim: true
            case .sha256, .default, .token: false
            }
        }

        public var description: String {
            switch self {
            case .lower: "lower"
            case .upper: "upper"
            case .trim: "trim"
            case .sha256: "sha256"
            case .default(let value): "default:\(value)"
            case .token: "token"
            }
        }
    }

    public struct Placeholder: Sendable, Equatable {
        public let source: Source
        public let filters: [Filter]
        /// As written, with its braces: `{query.page|default:1}`.
        public let written: String
    }

    enum Part: Sendable, Equatable {
        case literal(String)
        case placeholder(Placeholder)
    }

    /// The template as written in the rules file.
    public let description: String
    let parts: [Part]
    /// Which path parameters capture the rest of the path, so their values can contain `/`.
    private let restParameters: Set<String>

    public var placeholders: [Placeholder] {
        parts.compactMap { if case .placeholder(let p) = $0 { p } else { nil } }
    }

    /// True when the template reads no request value at all.
    public var isConstant: Bool { placeholders.isEmpty }

    /// The credentials among `headers` (lower-cased names) this template reads.
    public func credentials(among headers: Set<String>) -> Set<Credential> {
        Self.credentials(in: parts, among: headers)
    }

    private static func credentials(in parts: [Part], among headers: Set<String>) -> Set<Credential> {
        var credentials = Set<Credential>()
        for case .placeholder(let placeholder) in parts {
            switch placeholder.source {
            case .header(let name) where headers.contains(name): credentials.insert(Credential(header: name))
            case .cookie: credentials.insert(.cookie)
            // A claim names the user the Authorization header's token identifies.
            case .tokenClaim: credentials.insert(.authorization)
            default: break
            }
        }
        return credentials
    }

    /// The request credentials this template puts (hashed) into what it renders (worked out once: every
    /// cacheable request asks).
    public let credentials: Set<Credential>
    /// True when what it renders depends on a request header or cookie, not only on the method and URL.
    public let readsHeaders: Bool

    /// Why a template cannot be used; the message names the placeholder and says how to fix it.
    public struct ParseError: Error, Equatable {
        public let message: String
    }

    /// Parses and checks a template. `pathParameters` are the names the route's path captures.
    /// `bodyFields`: `{body.NAME}` placeholders are allowed (webhook purges, rendered from the webhook's JSON).
    /// Throws the first problem; `parse` finds them all.
    public init(parsing text: String, pathParameters: [String], restParameters: Set<String> = [], bodyFields: Bool = false) throws(ParseError) {
        let parsed = Self.parse(text, pathParameters: pathParameters, restParameters: restParameters, bodyFields: bodyFields)
        if let first = parsed.problems.first { throw ParseError(message: first) }
        guard let template = parsed.template else { throw ParseError(message: "the template is empty") }
        self = template
    }

    /// Every problem of a template at once (a rules file reports them together, not one per fix), and the
    /// template made of what could be read, so that checks of its placeholders (credentials in clear) can report
    /// theirs too. The template is nil when nothing sensible could be read (empty, or a brace never closed).
    /// `tokenClaims`: `{jwt.NAME}` placeholders are allowed (the route verifies the token: `jwt:`).
    public static func parse(
        _ text: String, pathParameters: [String], restParameters: Set<String> = [], bodyFields: Bool = false, tokenClaims: Bool = false
    ) -> (template: Template?, problems: [String]) {
        guard !text.isEmpty else { return (nil, ["the template is empty"]) }
        var problems: [String] = []
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "{" {
                guard let close = text[index...].firstIndex(of: "}") else {
                    return (nil, problems + ["'{' is never closed; write placeholders like {query.page}"])
                }
                let inner = String(text[text.index(after: index)..<close])
                guard !inner.contains("{") else {
                    return (nil, problems + ["'{' is never closed before the next '{'"])
                }
                if !literal.isEmpty {
                    parts.append(.literal(literal))
                    literal = ""
                }
                do {
                    parts.append(.placeholder(try Self.parsePlaceholder(inner, pathParameters: pathParameters, bodyFields: bodyFields,
                        tokenClaims: tokenClaims)))
                } catch {
                    problems.append(error.message)
                    // Stands for the placeholder that could not be read: nothing next to it is taken for adjacent.
                    parts.append(.literal("\u{0}"))
                }
                index = text.index(after: close)
                continue
            }
            index = text.index(after: index)
            if character == "}" {
                problems.append("'}' without a matching '{'")
                continue
            }
            guard character.isASCII, let scalar = character.unicodeScalars.first, scalar.value > 0x20,
                scalar.value < 0x7F
            else {
                problems.append("text outside placeholders must be printable ASCII without spaces (found "
                    + "'\(character.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined())')")
                continue
            }
            guard character != "#" else {
                problems.append("'#' is reserved: Trove uses it to mark keys it shortened by hashing")
                continue
            }
            literal.append(character)
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        let template = Template(text: text, parts: parts, restParameters: restParameters)
        return (template, problems + template.separatorProblems())
    }

    private init(text: String, parts: [Part], restParameters: Set<String>) {
        self.description = text
        self.parts = parts
        self.restParameters = restParameters
        self.credentials = Self.credentials(in: parts, among: Credential.defaultHeaders)
        readsHeaders = parts.contains { part in
            guard case .placeholder(let placeholder) = part else { return false }
            switch placeholder.source {
            case .header, .cookie, .tokenClaim: return true
            default: return false
            }
        }
    }

    private static let sourceHelp =
        "placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, "
        + "{method}, {path} and {query}"
    private static let filterHelp = "filters are lower, upper, trim, sha256, token and default:VALUE"

    private static func parsePlaceholder(
        _ inner: String, pathParameters: [String], bodyFields: Bool, tokenClaims: Bool
    ) throws(ParseError) -> Placeholder {
        let written = "{\(inner)}"
        let pieces = inner.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let reference = pieces[0].trimmingWhitespace()
        guard !reference.isEmpty else {
            throw ParseError(message: "empty placeholder '\(written)'; \(sourceHelp)")
        }
        if bodyFields && !(reference.hasPrefix("body.") && reference.count > 5) {
            throw ParseError(message: "unknown placeholder '\(written)': a webhook purge reads the webhook's JSON body; "
                + "write {body.FIELD}, e.g. {body.id} or {body.product.id}")
        }
        let source: Source
        if reference.hasPrefix("query:") {
            let names = reference.dropFirst("query:".count).split(separator: ",", omittingEmptySubsequences: false)
                .map { String($0).trimmingWhitespace() }
            guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && !$0.contains { "=&{}| ".contains($0) } }) else {
                throw ParseError(message: "'\(written)' must list query parameter names separated by commas, e.g. {query:page,limit}")
            }
            guard Set(names).count == names.count else {
                throw ParseError(message: "'\(written)' names a query parameter twice")
            }
            source = .queryParameters(names.sorted())
        } else if let dot = reference.firstIndex(of: ".") {
            let kind = String(reference[..<dot])
            let name = String(reference[reference.index(after: dot)...])
            guard !name.isEmpty else {
                throw ParseError(message: "'\(written)' names no \(kind); write it like {\(kind).NAME}")
            }
            switch kind {
            case "query": source = .queryParameter(name)
            case "header": source = .header(name.lowercased())
            case "cookie": source = .cookie(name)
            case "body" where bodyFields: source = .bodyField(name)
            case "jwt":
                guard tokenClaims else {
                    throw ParseError(message: "'\(written)' reads a claim of the request's token, which this route does not verify; "
                        + "add jwt: NAME to the route, naming a verifier under the top-level jwt: (how to check the token's signature)")
                }
                source = .tokenClaim(name)
            case "path":
                guard pathParameters.contains(name) else {
                    throw unknownPathParameter(name, written: written, pathParameters: pathParameters)
                }
                source = .pathParameter(name)
            default:
                let known = bodyFields ? ["body"] : ["query", "header", "cookie", "path"]
                let hint = Suggestions.closest(to: kind, in: known).map { " (did you mean {\($0).\(name)}?)" } ?? ""
                throw ParseError(message: "unknown placeholder '\(written)'\(hint); \(sourceHelp)")
            }
        } else {
            switch reference {
            case "method": source = .method
            case "path": source = .path
            case "query": source = .query
            default:
                guard pathParameters.contains(reference) else {
                    throw unknownPathParameter(reference, written: written, pathParameters: pathParameters)
                }
                source = .pathParameter(reference)
            }
        }
        var filters: [Filter] = []
        for piece in pieces.dropFirst() {
            let trimmed = piece.trimmingWhitespace()
            if trimmed.hasPrefix("default:") {
                let value = String(trimmed.dropFirst("default:".count))
                guard !value.isEmpty else {
                    throw ParseError(message: "'\(written)': default needs a value, e.g. default:1")
                }
                filters.append(.default(value))
                continue
            }
            switch trimmed {
            case "lower": filters.append(.lower)
            case "upper": filters.append(.upper)
            case "trim": filters.append(.trim)
            case "sha256": filters.append(.sha256)
            case "token": filters.append(.token)
            case "default":
                throw ParseError(message: "'\(written)': default needs a value, e.g. default:1")
            default:
                let hint = Suggestions.closest(to: trimmed, in: ["lower", "upper", "trim", "sha256", "token", "default"])
                    .map { " (did you mean '\($0)'?)" } ?? ""
                throw ParseError(message: "'\(written)': unknown filter '\(trimmed)'\(hint); \(filterHelp)")
            }
        }
        return Placeholder(source: source, filters: filters, written: written)
    }

    private static func unknownPathParameter(
        _ name: String, written: String, pathParameters: [String]
    ) -> ParseError {
        if let suggestion = Suggestions.closest(to: name, in: pathParameters + ["method", "path", "query"]) {
            return ParseError(message: "unknown placeholder '\(written)' (did you mean {\(suggestion)}?)")
        }
        if let suggestion = Suggestions.closest(to: name, in: ["query", "header", "cookie"]) {
            return ParseError(message: "unknown placeholder '\(written)' (did you mean {\(suggestion).NAME}?)")
        }
        let has = pathParameters.isEmpty
            ? "the route's path has no parameters"
            : "the route's path has " + pathParameters.map { "{\($0)}" }.joined(separator: ", ")
        return ParseError(message: "unknown placeholder '\(written)': \(has); \(sourceHelp)")
    }

    // Injectivity: every literal between two placeholders must hold a character the placeholder before it can
    // never produce. Then the first such character after a value marks where the value ends, so the rendered
    // text determines every value. See `KeyEscaping`.
    private func separatorProblems() -> [String] {
        var problems: [String] = []
        var previous: Placeholder?
        for part in parts {
            switch part {
            case .placeholder(let placeholder):
                if let previous {
                    problems.append("placeholders \(previous.written) and \(placeholder.written) are not separated: "
                        + "put a character such as ':' between them, so that different values cannot render "
                        + "the same text")
                }
                previous = placeholder
            case .literal(let text):
                if let placeholder = previous {
                    let alphabet = alphabet(of: placeholder)
                    if text.allSatisfy({ alphabet.contains($0) }) {
                        problems.append("'\(text)' after \(placeholder.written) cannot separate it from what follows, "
                            + "because the value can contain those characters; use a separator such as ':' "
                            + "or '=' (letters, digits, '-', '.', '_' and '~' appear in values)")
                    }
                }
                previous = nil
            }
        }
        return problems
    }

    /// The characters a placeholder's rendered value can contain.
    func alphabet(of placeholder: Placeholder) -> Set<Character> {
        if placeholder.filters.last == .sha256 { return Set("0123456789abcdef") }
        switch placeholder.source {
        case .path:
            return KeyEscaping.valueAlphabet.union(["/"])
        case .pathParameter(let name) where restParameters.contains(name):
            return KeyEscaping.valueAlphabet.union(["/"])
        case .query, .queryParameters:
            return KeyEscaping.valueAlphabet.union(["=", "&"])
        default:
            return KeyEscaping.valueAlphabet
        }
    }
}

/// A credential a request can carry: a header that says who the request is for. Answers to requests carrying
/// one are per user unless a route says otherwise.
public struct Credential: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The header that carries it, lower-cased.
    public let header: String

    public init(header: String) {
        self.header = header.lowercased()
    }

    public static let authorization = Credential(header: "authorization")
    public static let cookie = Credential(header: "cookie")

    /// The headers that carry credentials unless the rules name more (`clients.credentials`): API keys and tokens
    /// sent in their own headers identify a user as much as `Authorization` does.
    public static let defaultHeaders: Set<String> = ["authorization", "cookie", "x-api-key", "api-key", "x-auth-token", "x-access-token"]

    /// The lower-cased header name, as `Cache-Status` details write it upper-cased.
    public var rawValue: String { header }

    /// The header as people write it: `Authorization`, `X-Api-Key`.
    public var description: String {
        header.split(separator: "-", omittingEmptySubsequences: false).map { $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined(separator: "-")
    }

    public static func < (a: Credential, b: Credential) -> Bool { a.header < b.header }
}

// MARK: - Rendering

/// The request values a template can read, gathered once per request.
public struct TemplateContext: Sendable {
    public let method: String
    public let target: RequestTarget
    public let pathParameters: [String: String]
    public let headers: [Header]
    /// A JSON body's scalar fields by dotted path (`product.id`), for `{body.…}` placeholders.
    public let bodyFields: [String: String]
    /// The verified token's claims, for `{jwt.…}` placeholders (empty without a verified token).
    public let tokenClaims: [String: String]

    public init(
        method: String, target: RequestTarget, pathParameters: [String: String],
        headers: [Header], bodyFields: [String: String] = [:], tokenClaims: [String: String] = [:]
    ) {
        self.method = method
        self.target = target
        self.pathParameters = pathParameters
        self.headers = headers
        self.bodyFields = bodyFields
        self.tokenClaims = tokenClaims
    }

    /// Values of the header (name compared case-insensitively), in order.
    func headerValues(_ lowercasedName: String) -> [String] {
        Self.headerValues(lowercasedName, in: headers)
    }

    static func headerValues(_ lowercasedName: String, in headers: [Header]) -> [String] {
        headers.compactMap { HTTPSyntax.name($0.name, is: lowercasedName) ? $0.value : nil }
    }

    func cookie(_ name: String) -> String? {
        var found: String?
        Self.forEachCookie(in: headerValues("cookie")) { cookie, value in
            guard let value, cookie == name else { return true }
            var unquoted = value
            if unquoted.count >= 2, unquoted.first == "\"", unquoted.last == "\"" { unquoted = unquoted.dropFirst().dropLast() }
            found = String(unquoted)
            return false
        }
        return found
    }

    /// Walks the `name=value` pieces of `Cookie` header values, in order, until `body` returns false. A piece without
    /// `=` has a nil value; empty pieces are skipped.
    static func forEachCookie(in values: [String], _ body: (_ name: Substring, _ value: Substring?) -> Bool) {
        for header in values {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingWhitespace()
                guard !trimmed.isEmpty else { continue }
                let piece = Substring(trimmed)
                let keepGoing = if let equals = piece.firstIndex(of: "=") {
                    body(piece[..<equals], piece[piece.index(after: equals)...])
                } else {
                    body(piece, nil)
                }
                if !keepGoing { return }
            }
        }
    }
}

extension Template {
    /// The text this template renders for a request.
    public func render(_ context: TemplateContext) -> String {
        var output = ""
        output.reserveCapacity(description.utf8.count + 32)
        for part in parts {
            switch part {
            case .literal(let text):
                output += text
            case .placeholder(let placeholder):
                Self.appendValue(of: placeholder, context, to: &output)
            }
        }
        return output
    }

    private static func appendValue(of placeholder: Placeholder, _ context: TemplateContext, to output: inout String) {
        // Structured values keep their own separators; each piece inside them is escaped.
        switch placeholder.source {
        case .path where placeholder.filters.isEmpty:
            output += "/"
            output += context.target.segments.map(KeyEscaping.escape).joined(separator: "/")
            return
        case .query where placeholder.filters.isEmpty:
            appendSortedQuery(context.target, to: &output)
            return
        case .queryParameters(let names) where placeholder.filters.isEmpty:
            appendSortedQuery(context.target, only: names, to: &output)
            return
        default:
            break
        }
        let values = rawValues(of: placeholder.source, context)
        guard values.count > 1 else { return appendOne(values.first, of: placeholder, to: &output) }
        // A repeated query parameter or header: each value filtered and escaped on its own, joined with `%2c`.
        // Escaping writes upper-case hex only, so no single value renders `%2c`: `?tag=a&tag=b` (`a%2cb`) and
        // `?tag=a,b` (`a%2Cb`) never share a key, and the output stays within the value alphabet.
        for (index, value) in values.enumerated() {
            if index > 0 { output += "%2c" }
            appendOne(value, of: placeholder, to: &output)
        }
    }

    /// One value (nil: absent), through the placeholder's filters, escaped.
    private static func appendOne(_ raw: String?, of placeholder: Placeholder, to output: inout String) {
        var value = raw
        // Text filters work on what the value says, so a value taken from the URL is decoded first
        // (`%20abc` trims to `abc`); the result is escaped again below like any other value.
        if placeholder.filters.contains(where: \.isTextFilter), let encoded = value {
            switch placeholder.source {
            case .queryParameter: value = RequestTarget.decodeFormComponent(encoded, plusIsSpace: true)
            case .pathParameter: value = RequestTarget.decodeFormComponent(encoded, plusIsSpace: false)
            default: break
            }
        }
        for filter in placeholder.filters {
            value = apply(filter, to: value)
        }
        guard let value else { return }
        if case .pathParameter = placeholder.source, value.contains("/") {
            // A rest parameter: keep its `/`, escape each segment.
            output += value.split(separator: "/", omittingEmptySubsequences: false).map(KeyEscaping.escape)
                .joined(separator: "/")
        } else {
            KeyEscaping.append(value, to: &output)
        }
    }

    /// Every value the request gives the source: several for a repeated query parameter or header line.
    private static func rawValues(of source: Source, _ context: TemplateContext) -> [String] {
        switch source {
        case .queryParameter(let name):
            return context.target.queryItems.filter { $0.name == name }.map { $0.value ?? "" }
        case .header(let name):
            return context.headerValues(name)
        default:
            return rawValue(of: source, context).map { [$0] } ?? []
        }
    }

    private static func rawValue(of source: Source, _ context: TemplateContext) -> String? {
        switch source {
        case .pathParameter(let name):
            return context.pathParameters[name]
        case .queryParameter(let name):
            let values = context.target.queryItems.filter { $0.name == name }.map { $0.value ?? "" }
            return values.isEmpty ? nil : values.joined(separator: ",")
        case .header(let name):
            let values = context.headerValues(name)
            return values.isEmpty ? nil : values.joined(separator: ",")
        case .cookie(let name):
            return context.cookie(name)
        case .bodyField(let name):
            return context.bodyFields[name]
        case .tokenClaim(let name):
            return context.tokenClaims[name]
        case .method:
            return context.method == "HEAD" ? "GET" : context.method
        case .path:
            return context.target.path
        case .query:
            var text = ""
            appendSortedQuery(context.target, to: &text)
            return text
        case .queryParameters(let names):
            var text = ""
            appendSortedQuery(context.target, only: names, to: &text)
            return text
        }
    }

    /// `only`: the names to keep (all when nil).
    private static func appendSortedQuery(_ target: RequestTarget, only names: [String]? = nil, to output: inout String) {
        // Sorted by name; repeated names keep their order (`?tag=b&tag=a` is a different list than `?tag=a&tag=b`).
        let kept = names.map { names in target.queryItems.filter { names.contains($0.name) } } ?? target.queryItems
        let items = kept.enumerated().sorted {
            ($0.element.rawName, $0.offset) < ($1.element.rawName, $1.offset)
        }.map(\.element)
        for (index, item) in items.enumerated() {
            if index > 0 { output += "&" }
            KeyEscaping.append(item.rawName, to: &output)
            if let value = item.value {
                output += "="
                KeyEscaping.append(value, to: &output)
            }
        }
    }

    private static func apply(_ filter: Filter, to value: String?) -> String? {
        switch filter {
        case .default(let fallback):
            return value ?? fallback
        case .lower:
            return value.map { String(String.UnicodeScalarView($0.unicodeScalars.map { $0.asciiLowercased })) }
        case .upper:
            return value.map { String(String.UnicodeScalarView($0.unicodeScalars.map { $0.asciiUppercased })) }
        case .trim:
            return value.map { $0.trimmingCharacters([" ", "\t"]) }
        case .sha256:
            guard let value else { return nil }
            return SHA256.hash(data: Array(value.utf8)).hexString
        case .token:
            return value.flatMap { TokenVerifier.credentials(of: $0, scheme: nil) }
        }
    }
}

extension Unicode.Scalar {
    fileprivate var asciiLowercased: Unicode.Scalar {
        ("A"..."Z").contains(self) ? Unicode.Scalar(value + 32)! : self
    }

    fileprivate var asciiUppercased: Unicode.Scalar {
        ("a"..."z").contains(self) ? Unicode.Scalar(value - 32)! : self
    }
}

extension String {
    fileprivate func trimmingCharacters(_ set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hex.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension SHA256.Digest {
    var hexString: String { Array(self).hexString }
}

// MARK: - Overlap

extension Template {
    /// One position of the template seen as a pattern: a literal character, or a placeholder that can stand
    /// for any string over an alphabet.
    enum PatternToken: Equatable {
        case character(Character)
        case anyOf(Set<Character>)
    }

    var patternTokens: [PatternToken] {
        parts.flatMap { part -> [PatternToken] in
            switch part {
            case .literal(let text): text.map(PatternToken.character)
            case .placeholder(let placeholder): [.anyOf(alphabet(of: placeholder))]
            }
        }
    }

    /// True when some request could make this template and `other` render the same text.
    ///
    /// Both are patterns whose placeholders stand for strings over their alphabets; this decides whether the
    /// two patterns share a string. A state is a position in each pattern; a placeholder may end (move on in
    /// its own pattern) or consume the other side's next literal character when its alphabet allows it.
    /// Placeholders consuming characters together never change the state, so they need no transition.
    func canRenderSameText(as other: Template) -> Bool {
        let a = patternTokens
        let b = other.patternTokens
        var seen = Set<Int>()
        var stack = [(0, 0)]
        let width = b.count + 1
        while let (i, j) = stack.popLast() {
            guard seen.insert(i * width + j).inserted else { continue }
            if i == a.count && j == b.count { return true }
            if i < a.count, case .anyOf(let alphabet) = a[i] {
                stack.append((i + 1, j))
                if j < b.count, case .character(let c) = b[j], alphabet.contains(c) { stack.append((i, j + 1)) }
            }
            if j < b.count, case .anyOf(let alphabet) = b[j] {
                stack.append((i, j + 1))
                if i < a.count, case .character(let c) = a[i], alphabet.contains(c) { stack.append((i + 1, j)) }
            }
            if i < a.count, j < b.count, case .character(let x) = a[i], case .character(let y) = b[j], x == y {
                stack.append((i + 1, j + 1))
            }
        }
        return false
    }
}
