/// One finding about a rules file: where it is (file, line, column, route, field) and what to do about it.
///
/// Its `description` is the line `trove check` prints, in the compiler-like form editors understand:
/// `rules/shop.yaml:42:7: error: route 'events-list': cache.ttl: '5 minutes' is not a duration; …`
public struct RulesDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Whether the rules file can be used despite this finding.
    public enum Severity: String, Sendable, Equatable {
        /// The file is rejected: `trove check` exits 1 and `trove serve` does not start (or keeps the old rules).
        case error
        /// The file is accepted, but probably does not do what its author meant.
        case warning
    }

    public var severity: Severity
    public var file: String
    /// 1-based line of the offending node, when the finding points at one.
    public var line: Int?
    /// 1-based column of the offending node, when the finding points at one.
    public var column: Int?
    /// The route the finding is about, by name (or `#N` when the route has no usable name).
    public var route: String?
    /// The field inside the route (`cache.ttl`) or the file (`store.redis`) the finding is about.
    public var field: String?
    public var message: String

    public init(
        severity: Severity,
        file: String,
        line: Int? = nil,
        column: Int? = nil,
        route: String? = nil,
        field: String? = nil,
        message: String
    ) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.route = route
        self.field = field
        self.message = message
    }

    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": \(severity.rawValue): "
        if let route { text += "route '\(route)': " }
        if let field { text += "\(field): " }
        return text + message
    }
}

/// A rules file that cannot be used, with every finding about it (errors first, then warnings).
public struct RulesError: Error, Sendable, CustomStringConvertible {
    public let diagnostics: [RulesDiagnostic]

    public init(diagnostics: [RulesDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var errors: [RulesDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [RulesDiagnostic] { diagnostics.filter { $0.severity == .warning } }

    public var description: String {
        let errors = self.errors
        let head = errors.count == 1 ? "1 error" : "\(errors.count) errors"
        return (["rules file rejected (\(head)):"] + diagnostics.map { "  \($0)" }).joined(separator: "\n")
    }
}
