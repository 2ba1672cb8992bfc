internal import TroveHTTP
internal import Yams

/// A line and column in the rules file, kept for diagnostics that are found after reading.
struct SourcePosition: Sendable, Equatable {
    let line: Int
    let column: Int

    init?(_ mark: Mark?) {
        guard let mark else { return nil }
        self.line = mark.line
        self.column = mark.column
    }

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// Reads YAML nodes into typed values for `RulesLoader`, recording a diagnostic (with file, line, route and
/// field) for everything it cannot read, and carrying on so that one run reports every problem.
struct RulesReader {
    let file: String
    let environment: [String: String]
    private(set) var diagnostics: [RulesDiagnostic] = []
    /// The route being read, for diagnostics.
    var route: String?
    /// The route being read verifies its requests' tokens (`jwt:`): its templates may read their claims.
    var tokenClaims = false
    private(set) var missingEnvironment: [String] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    mutating func error(_ message: String, at node: Node?, field: String?) {
        report(.error, message, at: node?.mark, field: field)
    }

    mutating func warning(_ message: String, at node: Node?, field: String?) {
        report(.warning, message, at: node?.mark, field: field)
    }

    mutating func report(_ severity: RulesDiagnostic.Severity, _ message: String, at mark: Mark?, field: String?) {
        diagnostics.append(RulesDiagnostic(
            severity: severity, file: file, line: mark?.line, column: mark?.column, route: route, field: field,
            message: message))
    }

    mutating func report(
        _ severity: RulesDiagnostic.Severity, _ message: String, at position: SourcePosition?, route: String?,
        field: String?
    ) {
        diagnostics.append(RulesDiagnostic(
            severity: severity, file: file, line: position?.line, column: position?.column, route: route, field: field,
            message: message))
    }

    // MARK: Mappings

    /// The fields of a mapping, after `<<` merges, with duplicate and unknown keys reported.
    struct Fields {
        let node: Node
        let path: String
        private(set) var entries: [String: (key: Node, value: Node)] = [:]
        /// Keys in file order.
        private(set) var order: [String] = []

        init(node: Node, path: String) {
            self.node = node
            self.path = path
        }

        subscript(_ name: String) -> Node? { entries[name]?.value }

        func keyNode(_ name: String) -> Node? { entries[name]?.key }

        /// `path.name`, or `name` at the top level.
        func field(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

        fileprivate mutating func set(_ name: String, key: Node, value: Node) {
            if entries[name] == nil { order.append(name) }
            entries[name] = (key, value)
        }
    }

    /// Reads a mapping whose keys must be among `allowed`. `hints` maps a misplaced key to where it belongs.
    mutating func mapping(
        _ node: Node, path: String, allowed: [String], hints: [String: String] = [:]
    ) -> Fields? {
        guard let mapping = node.mapping else {
            error("expected a mapping of \(allowed.joined(separator: ", ")), found \(describe(node))",
                at: node, field: path.isEmpty ? nil : path)
            return nil
        }
        var fields = Fields(node: node, path: path)
        // Merged keys (`<<: *defaults`) come first so that keys written in the mapping override them.
        for (key, value) in mapping where key.scalar?.string == "<<" {
            let sources = value.sequence.map(Array.init) ?? [value]
            for source in sources {
                guard let merged = source.mapping else {
                    error("'<<' merges a mapping (an anchor such as *defaults), found \(describe(source))",
                        at: source, field: fields.field("<<"))
                    continue
                }
                for (mergedKey, mergedValue) in merged {
                    if let name = mergedKey.scalar?.string { fields.set(name, key: mergedKey, value: mergedValue) }
                }
            }
        }
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                error("keys must be plain words, found \(describe(key))", at: key, field: path.isEmpty ? nil : path)
                continue
            }
            // Duplicate keys never get here: Yams refuses them while composing (see RulesLoader.yamlDiagnostic).
            if name == "<<" { continue }
            fields.set(name, key: key, value: value)
        }
        for name in fields.order where !allowed.contains(name) {
            var message = "unknown key '\(name)'"
            if let hint = hints[name] {
                message += " (\(hint))"
            } else if let suggestion = Suggestions.closest(to: name, in: allowed) {
                message += " (did you mean '\(suggestion)'?)"
            }
            message += "; allowed here: \(allowed.joined(separator: ", "))"
            error(message, at: fields.keyNode(name), field: fields.field(name))
        }
        return fields
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): scalar.string.isEmpty ? "nothing" : "'\(scalar.string)'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    // MARK: Scalars

    /// A non-empty scalar string; reports and returns nil otherwise.
    mutating func string(_ node: Node, field: String, example: String? = nil) -> String? {
        guard let scalar = node.scalar else {
            error("expected a single value, found \(describe(node))" + (example.map { ", e.g. \($0)" } ?? ""),
                at: node, field: field)
            return nil
        }
        guard !scalar.string.isEmpty else {
            error("needs a value" + (example.map { ", e.g. \($0)" } ?? ""), at: node, field: field)
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node, field: String) -> Bool? {
        guard let text = string(node, field: field, example: "true") else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            error("'\(text)' is not true or false", at: node, field: field)
            return nil
        }
    }

    mutating func int(_ node: Node, field: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, field: field) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            error("'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)", at: node, field: field)
            return nil
        }
        return value
    }

    mutating func duration(
        _ node: Node, field: String, allowZero: Bool = false, maximum: Duration = .seconds(365 * 86_400)
    ) -> Duration? {
        guard let text = string(node, field: field, example: "30s, 10m or 1h") else { return nil }
        guard let duration = Units.parseDuration(text) else {
            if let number = Int(text) {
                error("'\(text)' has no unit; write \(number)s (or 250ms, 10m, 1h)", at: node, field: field)
            } else {
                error("'\(text)' is not a duration; write it like 30s, 10m, 1h or 1h30m (units: ms, s, m, h, d)",
                    at: node, field: field)
            }
            return nil
        }
        if duration == .zero && !allowZero {
            error("must be more than 0s", at: node, field: field)
            return nil
        }
        if duration > maximum {
            error("'\(text)' is longer than the maximum of \(Units.format(maximum))", at: node, field: field)
            return nil
        }
        return duration
    }

    mutating func size(_ node: Node, field: String, maximum: Int) -> Int? {
        guard let text = string(node, field: field, example: "1MB") else { return nil }
        guard let size = Units.parseSize(text) else {
            error("'\(text)' is not a size; write it like 512KB, 1MB or 1048576 (bytes)", at: node, field: field)
            return nil
        }
        guard size > 0, size <= maximum else {
            error("'\(text)' must be more than 0 and at most \(Units.format(bytes: maximum))", at: node, field: field)
            return nil
        }
        return size
    }

    /// One scalar or a list of scalars, each read by `parse`; an item it refuses is reported with `problem`'s words
    /// at the item (`field[n]`) and left out.
    mutating func list<T>(_ node: Node, field: String, parse: (String) -> T?, problem: (String) -> String) -> [T]? {
        guard let items = stringList(node, field: field) else { return nil }
        var parsed: [T] = []
        for (offset, (text, itemNode)) in items.enumerated() {
            guard let value = parse(text) else {
                error(problem(text), at: itemNode, field: "\(field)[\(offset)]")
                continue
            }
            parsed.append(value)
        }
        return parsed
    }

    /// One scalar or a list of scalars.
    mutating func stringList(_ node: Node, field: String) -> [(String, Node)]? {
        if node.scalar != nil {
            return string(node, field: field).map { [($0, node)] }
        }
        guard let sequence = node.sequence else {
            error("expected a list, found \(describe(node))", at: node, field: field)
            return nil
        }
        var result: [(String, Node)] = []
        for (index, item) in sequence.enumerated() {
            if let text = string(item, field: "\(field)[\(index)]") { result.append((text, item)) }
        }
        return result
    }

    /// A value written in the file, or `{env: NAME}`. With `secret`, a value written in the file is refused.
    mutating func configString(_ node: Node, field: String, secret: Bool, suggestedVariable: String) -> ConfigString? {
        if node.scalar != nil {
            guard let text = string(node, field: field) else { return nil }
            if secret {
                error("looks like a secret, which must not be written in the rules file; read it from the "
                    + "environment: {env: \(suggestedVariable)}", at: node, field: field)
                return nil
            }
            return .literal(text)
        }
        guard let fields = mapping(node, path: field, allowed: ["env"]) else { return nil }
        guard let nameNode = fields["env"] else {
            error("write {env: NAME} to read the value from an environment variable", at: node, field: field)
            return nil
        }
        guard let name = string(nameNode, field: "\(field).env") else { return nil }
        guard let first = name.unicodeScalars.first, first == "_" || ("A"..."Z").contains(first),
            name.unicodeScalars.allSatisfy({ $0 == "_" || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
        else {
            error("'\(name)' is not an environment variable name; use upper-case letters, digits and '_'",
                at: nameNode, field: "\(field).env")
            return nil
        }
        return environmentValue(name, at: nameNode, field: field)
    }

    /// The value of an environment variable the file relies on; when it is unset, a warning and a note for
    /// `trove serve`, which refuses to start without it.
    mutating func environmentValue(_ name: String, at node: Node?, field: String, implied: String = "") -> ConfigString {
        let value = environment[name].flatMap { $0.isEmpty ? nil : $0 }
        if value == nil {
            if !missingEnvironment.contains(name) { missingEnvironment.append(name) }
            warning("environment variable \(name) is not set\(implied); `trove serve` refuses to start until it is",
                at: node, field: field)
        }
        return ConfigString(environmentVariable: name, value: value)
    }
}
