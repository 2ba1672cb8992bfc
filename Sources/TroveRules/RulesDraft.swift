internal import Foundation
internal import TroveHTTP

/// Drafts a rules file from recorded traffic (`trove suggest`): each request's path is templated (numeric, UUID
/// and long hexadecimal segments become parameters), requests are grouped by method and template, reads answered
/// successfully become cacheable routes keyed on the query parameters seen, and writes become purge routes whose
/// tags link them to the reads of the resource they touch. Every guess is written down as a comment beside it, and
/// the draft runs every cacheable route in shadow (`defaults.cache.shadow`) until a person has checked it.
///
/// Bounded: at most `maxTemplates` groups are drafted (the busiest); query names beyond `maxQueryNames` per
/// route make it key on the whole query; examples kept per group are few.
public enum RulesDraft {
    /// One request of the log.
    public struct Request: Sendable, Equatable {
        public var method: String
        /// The path, without the query.
        public var path: String
        public var queryNames: [String]
        public var status: Int
        /// The answer's body size, when the log says.
        public var bytes: Int?
        /// Path and query, as requested.
        public var target: String

        public init(method: String, path: String, queryNames: [String], status: Int, bytes: Int?, target: String) {
            self.method = method
            self.path = path
            self.queryNames = queryNames
            self.status = status
            self.bytes = bytes
            self.target = target
        }
    }

    public static let maxTemplates = 300
    public static let maxQueryNames = 12
    static let maxLineBytes = 16 << 10

    // MARK: Reading a log

    /// One line of Trove's access log (JSON lines, `--access-log-format json`) or of nginx's `combined` format;
    /// nil when it is neither, or not a request (a purge, a line too long to be either).
    public static func parse(line: Substring) -> Request? {
        guard line.utf8.count <= maxLineBytes else { return nil }
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        if trimmed.first == "{" { return parseJSON(trimmed) }
        return parseCombined(trimmed)
    }

    /// `{"ts":…,"method":"GET","path":"/a?b=1","status":200,…,"bytes":123}`: the fields Trove writes, read without a
    /// JSON decoder (each is a string or a number, escaped as `AccessLog.jsonString` escapes).
    static func parseJSON(_ line: Substring) -> Request? {
        guard let method = jsonField("method", in: line), let target = jsonField("path", in: line),
            let statusText = jsonField("status", in: line), let status = Int(statusText), method != "PURGE"
        else { return nil }
        return request(method: method, target: target, status: status, bytes: jsonField("bytes", in: line).flatMap { Int($0) })
    }

    private static func jsonField(_ name: String, in line: Substring) -> String? {
        guard let range = line.range(of: "\"\(name)\":") else { return nil }
        var rest = line[range.upperBound...]
        if rest.first == "\"" {
            rest = rest.dropFirst()
            var value = ""
            var escaped = false
            for character in rest {
                if escaped {
                    switch character {
                    case "n": value.append("\n")
                    case "t": value.append("\t")
                    default: value.append(character)
                    }
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    return value
                } else {
                    value.append(character)
                }
            }
            return nil
        }
        let number = rest.prefix { $0.isNumber || $0 == "-" || $0 == "." }
        return number.isEmpty ? nil : String(number)
    }

    /// `127.0.0.1 - - [05/Dec/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 123 "-" "curl/8"`.
    static func parseCombined(_ line: Substring) -> Request? {
        guard let open = line.firstIndex(of: "\"") else { return nil }
        let afterOpen = line[line.index(after: open)...]
        guard let close = afterOpen.firstIndex(of: "\"") else { return nil }
        let requestLine = afterOpen[..<close].split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/") else { return nil }
        let numbers = afterOpen[afterOpen.index(after: close)...].split(separator: " ").prefix(2)
        guard let statusText = numbers.first, let status = Int(statusText) else { return nil }
        let bytes = numbers.count > 1 ? Int(numbers[numbers.startIndex + 1]) : nil
        return request(method: String(requestLine[0]), target: String(requestLine[1]), status: status, bytes: bytes)
    }

    private static func request(method: String, target: String, status: Int, bytes: Int?) -> Request? {
        guard target.hasPrefix("/"), (100...599).contains(status), MethodSet.known.contains(method.uppercased()) else { return nil }
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        var names: [String] = []
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let name = String(pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0])
                if !name.isEmpty, !names.contains(name) { names.append(name) }
            }
        }
        let method = method.uppercased()
        return Request(method: method == "HEAD" ? "GET" : method, path: path, queryNames: names, status: status, bytes: bytes, target: target)
    }

    // MARK: Templates

    /// A path segment that stands for an identifier: digits, a UUID, or 16 or more hexadecimal digits.
    static func isIdentifier(_ segment: Substring) -> Bool {
        if !segment.isEmpty, segment.allSatisfy(\.isASCII), segment.allSatisfy(\.isNumber) { return true }
        let hex = segment.allSatisfy { $0.isHexDigit && $0.isASCII }
        if hex && segment.count >= 16 { return true }
        let groups = segment.split(separator: "-", omittingEmptySubsequences: false).map(\.count)
        return groups == [8, 4, 4, 4, 12] && segment.allSatisfy { ($0.isHexDigit && $0.isASCII) || $0 == "-" }
    }

    /// A path as a template: `/api/v1/events/42/tickets` → `/api/v1/events/{event_id}/tickets`; nil when a segment
    /// cannot be written in a rules file (braces, `*`, spaces).
    static func template(of path: String) -> (template: String, parameters: [String], resource: String?)? {
        var out: [String] = []
        var parameters: [String] = []
        var previous: Substring?
        var resource: String?
        for segment in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if isIdentifier(segment) {
                var name = previous.map { identifierName(singular(String($0))) + "_id" } ?? "id"
                // A parameter name starts with a letter (`/_x/1`, `/1.0/2` would not).
                if !(name.first.map { $0.isASCII && $0.isLetter } ?? false) { name = "id" }
                var unique = name
                var suffix = 2
                while parameters.contains(unique) { unique = "\(name)\(suffix)"; suffix += 1 }
                parameters.append(unique)
                out.append("{\(unique)}")
                previous = nil
            } else {
                // RFC 3986's path characters, less `*` (a glob in a match) and `%` (a literal is matched decoded).
                guard segment.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.pathLiteral.contains($0)) }) else { return nil }
                out.append(String(segment))
                if !segment.isEmpty { previous = segment; resource = String(segment) }
            }
        }
        return ("/" + out.joined(separator: "/"), parameters, resource)
    }

    /// Text from the log as a comment shows it: printable ASCII only (YAML refuses control characters), at most
    /// `limit` characters.
    static func commentSafe(_ text: String, limit: Int = 120) -> String {
        let printable = String(text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F ? Character($0) : "?" })
        return printable.count > limit ? printable.prefix(limit) + "…" : printable
    }

    static func singular(_ word: String) -> String {
        if word.hasSuffix("ies"), word.count > 3 { return String(word.dropLast(3)) + "y" }
        if word.hasSuffix("ses") || word.hasSuffix("xes") { return String(word.dropLast(2)) }
        if word.hasSuffix("s"), !word.hasSuffix("ss"), word.count > 1 { return String(word.dropLast()) }
        return word
    }

    /// Letters, digits and `_`, as parameter names take them.
    static func identifierName(_ word: String) -> String {
        String(word.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    /// Letters, digits and `-`, as route names and tags take them.
    static func slug(_ word: String) -> String {
        let mapped = String(word.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
        let collapsed = mapped.split(separator: "-").joined(separator: "-")
        return collapsed.isEmpty ? "root" : String(collapsed.prefix(48))
    }

    // MARK: The draft

    /// The requests of one method group and template.
    struct Group {
        var template: String
        var parameters: [String]
        var resource: String?
        var methods: [String] = []
        var count = 0
        var successes = 0
        var statuses: [Int: Int] = [:]
        var queryNames: [String] = []
        /// Per URL read successfully: the first body size seen, and whether a later read of it had another.
        var sizes: [String: (first: Int, reads: Int, varied: Bool)] = [:]
        var examples: [String] = []

        var isRead: Bool { methods == ["GET"] }
        /// Ends with a parameter: one item of the resource.
        var isItem: Bool { template.split(separator: "/").last?.hasPrefix("{") ?? false }

        mutating func add(_ request: Request, read: Bool) {
            if !methods.contains(request.method) { methods.append(request.method) }
            count += 1
            statuses[request.status, default: 0] += 1
            let success = (200..<300).contains(request.status)
            if success { successes += 1 }
            for name in request.queryNames where !queryNames.contains(name) && queryNames.count <= RulesDraft.maxQueryNames {
                queryNames.append(name)
            }
            if read, success, let bytes = request.bytes {
                if let seen = sizes[request.target] {
                    sizes[request.target] = (seen.first, seen.reads + 1, seen.varied || bytes != seen.first)
                } else if sizes.count < Traffic.maxURLs {
                    sizes[request.target] = (bytes, 1, false)
                }
            }
            if examples.count < 3 {
                let example = RulesDraft.commentSafe(request.target, limit: 80)
                if !examples.contains(example) { examples.append(example) }
            }
        }
    }

    /// The traffic of a log as the draft needs it, gathered one request at a time in bounded memory: at most
    /// `maxGroups` groups (a template first seen past them is counted in `unplaced`), `maxURLs` URLs remembered
    /// per group, three examples each.
    public struct Traffic: Sendable {
        static let maxGroups = 2 * RulesDraft.maxTemplates
        static let maxURLs = 10_000

        var groups: [String: Group] = [:]
        /// Requests read.
        public private(set) var requests = 0
        /// Requests whose template came after `maxGroups` others, or whose path cannot be a template.
        public private(set) var unplaced = 0

        public init() {}

        public mutating func add(_ request: Request) {
            requests += 1
            guard let (template, parameters, resource) = RulesDraft.template(of: request.path),
                !["OPTIONS", "TRACE", "CONNECT"].contains(request.method)
            else { return unplaced += 1 }
            let read = request.method == "GET"
            let key = (read ? "R " : "W ") + template
            if groups[key] == nil {
                guard groups.count < Self.maxGroups else { return unplaced += 1 }
                groups[key] = Group(template: template, parameters: parameters, resource: resource)
            }
            groups[key]!.add(request, read: read)
        }

        /// The busiest `maxTemplates` groups, busiest first (ties in template order, so a draft is reproducible).
        var busiest: [Group] {
            groups.values.sorted { $0.count != $1.count ? $0.count > $1.count : $0.template < $1.template }.prefix(RulesDraft.maxTemplates).map { $0 }
        }
    }

    /// Groups `requests` (a test's, or a small log's).
    static func groups(_ requests: [Request]) -> [Group] {
        var traffic = Traffic()
        for request in requests { traffic.add(request) }
        return traffic.busiest
    }

    /// The draft rules file for `requests`, read from `source`, in front of `origin`.
    public static func draft(_ requests: [Request], origin: String, source: String, skipped: Int = 0) -> String {
        var traffic = Traffic()
        for request in requests { traffic.add(request) }
        return draft(traffic, origin: origin, source: source, skipped: skipped)
    }

    /// The draft rules file for `traffic`, read from `source`, in front of `origin`.
    public static func draft(_ traffic: Traffic, origin: String, source: String, skipped: Int = 0) -> String {
        let groups = traffic.busiest
        var notes: [String] = []
        if skipped > 0 { notes.append("\(count(skipped, "line")) skipped: not a request") }
        if traffic.unplaced > 0 { notes.append("\(count(traffic.unplaced, "request")) left to the catch-all: paths no template can hold, or past \(Traffic.maxGroups) templates") }
        if traffic.groups.count > maxTemplates { notes.append("the \(maxTemplates) busiest of \(traffic.groups.count) templates drafted") }
        var lines = [
            "# DRAFT rules written by `trove suggest` from \(commentSafe(source)): \(count(traffic.requests, "request"))\(notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")").",
            "# It is a draft: every guess is explained in a comment beside it, and every cacheable route runs in",
            "# shadow (defaults.cache.shadow), so clients keep getting the origin's answers while Trove compares.",
            "# Roll it out: trove serve -c THIS-FILE, replay or wait for real traffic, read `trove shadow`, fix what it",
            "# names, and only then remove `shadow: true` below (see docs/shadow.md).",
            "version: 1",
            "listen: 127.0.0.1:8080",
            "admin:",
            "  listen: 127.0.0.1:9090",
            "  token: {env: TROVE_ADMIN_TOKEN}",
            "origins:",
            "  app:",
            "    url: \(yamlString(origin))",
            "    timeout: 30s",
            "defaults:",
            "  cache:",
            "    shadow: true",
            "routes:",
        ]
        // Reads first decide the tags; writes then purge the tags of the resource they touch.
        var names = Set<String>()
        func unique(_ name: String) -> String {
            var candidate = String(name.prefix(60))
            var suffix = 2
            while names.contains(candidate) { candidate = "\(name.prefix(56))-\(suffix)"; suffix += 1 }
            names.insert(candidate)
            return candidate
        }
        var carried = Set<String>()
        var routes: [(template: String, isRead: Bool, text: [String])] = []
        for group in groups where group.isRead {
            let resource = slug(group.resource ?? "root")
            let name = unique(group.isItem ? slug(singular(group.resource ?? "item")) : resource + "-list")
            let errors = group.count - group.successes
            var text = ["  # GET \(group.template): \(count(group.count, "request")), \(describe(group.statuses)); e.g. \(group.examples.joined(separator: ", "))."]
            guard group.count >= 2, Double(group.successes) >= 0.9 * Double(group.count) else {
                text.append(group.count < 2 ? "  # Seen once: too little to judge, so passed. Add cache: once it is seen more."
                    : "  # \(errors) of \(group.count) answers were not successful: passed rather than cached (errors are the origin's to fix).")
                text += ["  - name: \(name)", "    match: \(yamlString("GET " + group.template))", "    pass: true"]
                routes.append((group.template, true, text))
                continue
            }
            let repeats = group.sizes.values.filter { $0.reads > 1 }
            let same = repeats.filter { !$0.varied }.count
            if !repeats.isEmpty {
                text.append("  # Repeated reads of one URL got a body of the same size in \(same) of \(count(repeats.count, "URL"))"
                    + (same == repeats.count ? ": stable, so cached." : ": some answers change; shadow mode will say whether writes or time explain it."))
            } else {
                text.append("  # No URL was read twice: cached because every answer succeeded; shadow mode will show the hit ratio.")
            }
            var key = name
            for parameter in group.parameters { key += ":{\(parameter)}" }
            let validNames = group.queryNames.allSatisfy { $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) } }
            if group.queryNames.count > maxQueryNames || !validNames {
                key += ":{query}"
                text.append("  # Keyed on the whole query: \(group.queryNames.count) parameter names were seen (or names a template cannot hold).")
            } else if !group.queryNames.isEmpty {
                for query in group.queryNames.sorted() { key += ":\(query)={query.\(query)}" }
                text.append("  # Keyed on the query parameters seen (\(commentSafe(group.queryNames.sorted().joined(separator: ", ")))): a request with another is passed, not "
                    + "cached under the wrong key.")
            }
            var tags = [resource]
            if group.isItem, let last = group.parameters.last {
                tags.append("\(resource):{\(last)}")
                text.append("  # Tags: \(resource) (all of this resource) and \(resource):{\(last)} (this one), which writes to it purge.")
            } else {
                tags.append("\(resource):list")
                text.append("  # Tags: \(resource) (all of this resource) and \(resource):list, which writes to the resource purge.")
            }
            carried.formUnion(tags)
            text.append("  # TTL: a guess (1m); shadow mode reports the quickest change it sees, and any answer that depends on the user "
                + "needs authenticated: true and a key naming the credential.")
            text += ["  - name: \(name)", "    match: \(yamlString("GET " + group.template))", "    cache:", "      key: \(yamlString(key))", "      ttl: 1m",
                     "      tags: [\(tags.map(yamlString).joined(separator: ", "))]"]
            routes.append((group.template, true, text))
        }
        for group in groups where !group.isRead {
            let methods = group.methods.sorted()
            let resource = slug(group.resource ?? "root")
            let base = group.isItem ? slug(singular(group.resource ?? "item")) : resource
            let verb = methods == ["POST"] && !group.isItem ? "create" : "change"
            let name = unique("\(base)-\(verb)")
            var text = ["  # \(methods.joined(separator: ",")) \(group.template): \(count(group.count, "request")), \(describe(group.statuses)); e.g. \(group.examples.joined(separator: ", "))."]
            var purges: [String] = []
            // The item the write names (the last `{parameter}`, after its resource's segment): that item and its lists.
            if let last = group.parameters.last, let item = segmentBefore(parameter: last, in: group.template).map(slug) {
                for tag in ["\(item):{\(last)}", "\(item):list"] where carried.contains(tag) { purges.append(tag) }
                if !purges.isEmpty { text.append("  # It changes one \(singular(item)): purges that item's entries and the lists that show it.") }
            }
            // Its own collection (a POST that creates, a write to a sub-resource): that collection's lists.
            if carried.contains("\(resource):list"), !purges.contains("\(resource):list") {
                purges.append("\(resource):list")
                text.append("  # It changes the \(resource) collection: purges its lists.")
            }
            if purges.isEmpty, carried.contains(resource) {
                purges.append(resource)
                text.append("  # No list or item of \(resource) is read by this exact shape: purges everything tagged \(resource).")
            }
            if purges.isEmpty {
                text.append("  # No cached read of this resource was seen: forwarded, purging nothing.")
                text += ["  - name: \(name)", "    match: \(yamlString(methods.joined(separator: ",") + " " + group.template))", "    pass: true"]
            } else {
                text += ["  - name: \(name)", "    match: \(yamlString(methods.joined(separator: ",") + " " + group.template))",
                         "    purge: {tags: [\(purges.map(yamlString).joined(separator: ", "))]}"]
            }
            routes.append((group.template, false, text))
        }
        // The first route that matches wins: a literal segment before a parameter at the same place, reads before writes.
        routes.sort { a, b in
            let x = a.template.split(separator: "/"), y = b.template.split(separator: "/")
            for (p, q) in zip(x, y) where p != q {
                let pp = p.hasPrefix("{"), qp = q.hasPrefix("{")
                if pp != qp { return !pp }
                return p < q
            }
            if x.count != y.count { return x.count < y.count }
            return a.isRead && !b.isRead
        }
        for route in routes { lines += route.text }
        lines += ["  # Everything the log did not show: forwarded as it is.", "  - name: everything-else", "    match: ANY /**", "    pass: true"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The literal segment just before `{parameter}` in `template`.
    private static func segmentBefore(parameter: String, in template: String) -> String? {
        let segments = template.split(separator: "/")
        guard let index = segments.firstIndex(of: Substring("{\(parameter)}")), index > 0 else { return nil }
        let previous = segments[index - 1]
        return previous.hasPrefix("{") ? nil : String(previous)
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }

    private static func describe(_ statuses: [Int: Int]) -> String {
        statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }

    /// A double-quoted YAML scalar.
    static func yamlString(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

extension CharacterSet {
    /// What a literal path segment in a drafted `match:` may hold: RFC 3986's `pchar` without `%`, and no `*`.
    static let pathLiteral = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()+,;=:@")
}
