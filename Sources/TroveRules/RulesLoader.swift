private import Crypto
internal import TroveHTTP
internal import Foundation
internal import Yams

/// Turns a rules file into a `RuleSet`, or into every error it contains.
///
/// The file is read once, checked completely (unknown keys, types, durations, templates, routes against each
/// other) and either accepted with its warnings or rejected with all its errors, each naming the file, line,
/// route and field. The reference for every key is `docs/rules.md`; `rules/example.yaml` shows them all.
public enum RulesLoader {
    /// The rules file format this version of Trove reads.
    public static let formatVersion = 1

    /// Reads and validates the rules file at `path`; `{env: NAME}` values come from `environment`, or from the
    /// process environment when it is nil.
    public static func load(path: String, environment: [String: String]? = nil) throws(RulesError) -> RuleSet {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path)
                ? "cannot be read as UTF-8 text (\(error.localizedDescription))"
                : "does not exist (the working directory is \(FileManager.default.currentDirectoryPath))"
            throw RulesError(diagnostics: [
                RulesDiagnostic(severity: .error, file: path, message: "the rules file \(reason)")
            ])
        }
        return try parse(text, file: path, environment: environment)
    }

    /// Validates rules file text; `file` is the name diagnostics use.
    public static func parse(
        _ text: String, file: String, environment: [String: String] = [:]
    ) throws(RulesError) -> RuleSet {
        var reader = RulesReader(file: file, environment: environment)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RulesError(diagnostics: [yamlDiagnostic(error, file: file, text: text)])
        }
        guard let root else {
            throw RulesError(diagnostics: [
                RulesDiagnostic(severity: .error, file: file, message: "the rules file is empty; see rules/example.yaml")
            ])
        }
        let fingerprint = String(SHA256.hash(data: Array(text.utf8)).hexString.prefix(12))
        let ruleSet = build(root, fingerprint: fingerprint, reader: &reader)
        let diagnostics = reader.diagnostics.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }
        guard let ruleSet, !reader.hasErrors else {
            throw RulesError(diagnostics: diagnostics)
        }
        var result = ruleSet
        result.warnings = diagnostics
        result.missingEnvironment = reader.missingEnvironment
        return result
    }

    private static func yamlDiagnostic(_ error: any Error, file: String, text: String) -> RulesDiagnostic {
        if let yamlError = error as? YamlError {
            switch yamlError {
            case .scanner(let context, let problem, let mark, _),
                .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                let text = [context.map { "\($0.text)" }, problem].compactMap { $0 }.joined(separator: ": ")
                return RulesDiagnostic(
                    severity: .error, file: file, line: mark.line, column: mark.column,
                    message: "this is not valid YAML: \(text)")
            case .duplicatedKeysInMapping(let duplicates, let context):
                let key = duplicates.sorted().first ?? ""
                let position = secondOccurrence(of: key, in: context.mark, text: text)
                let others = duplicates.count > 1
                    ? " (and \(duplicates.sorted().dropFirst().map { "'\($0)'" }.joined(separator: ", ")))" : ""
                return RulesDiagnostic(
                    severity: .error, file: file, line: position.line, column: position.column,
                    message: "'\(key)'\(others) is given twice in one mapping; YAML would keep only one of them, so "
                        + "say it once")
            default:
                break
            }
        }
        return RulesDiagnostic(severity: .error, file: file, message: "this is not valid YAML: \(error)")
    }

    /// Where a duplicated key appears the second time in the block mapping that starts at `mark`: the keys of a
    /// block mapping all start at its column. Falls back to the mapping's own position (e.g. in flow style).
    private static func secondOccurrence(of key: String, in mark: Mark, text: String) -> SourcePosition {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var seen = 0
        for number in mark.line...max(mark.line, lines.count) where number <= lines.count {
            let line = lines[number - 1]
            let indentation = line.prefix { $0 == " " }.count
            let isBlank = line.dropFirst(indentation).isEmpty || line.dropFirst(indentation).hasPrefix("#")
            if number > mark.line && !isBlank && indentation + 1 < mark.column { break }  // the mapping ended
            let atColumn = line.dropFirst(mark.column - 1)
            let startsThere = number == mark.line || indentation + 1 == mark.column
            if startsThere && (atColumn.hasPrefix(key + ":") || atColumn.hasPrefix(key + " :")) {
                seen += 1
                if seen == 2 { return SourcePosition(line: number, column: mark.column) }
            }
        }
        return SourcePosition(line: mark.line, column: mark.column)
    }

    static let topLevelKeys = [
        "version", "listen", "admin", "store", "limits", "clients", "origins", "jwt", "defaults", "unmatched", "routes", "webhooks", "warm",
    ]

    private static func build(_ root: Node, fingerprint: String, reader: inout RulesReader) -> RuleSet? {
        guard let top = reader.mapping(root, path: "", allowed: topLevelKeys, hints: [
            "webhook": "write webhooks: {shopify: {...}}", "shopify": "write webhooks: {shopify: {...}}",
        ]) else { return nil }

        if let versionNode = top["version"] {
            if let version = reader.int(versionNode, field: "version", range: 0...Int.max),
                version != formatVersion
            {
                reader.error("this Trove reads rules format \(formatVersion), not \(version)", at: versionNode, field: "version")
            }
        } else {
            reader.error("'version: \(formatVersion)' is missing; it says which rules format the file is written in",
                at: root, field: nil)
        }

        var listen = ListenAddress(host: "127.0.0.1", port: 8080)
        if let node = top["listen"], let text = reader.string(node, field: "listen", example: "0.0.0.0:8080") {
            if let parsed = ListenAddress(parsing: text) {
                listen = parsed
            } else {
                reader.error("'\(text)' is not an address; write host:port, e.g. 0.0.0.0:8080 or 127.0.0.1:8080",
                    at: node, field: "listen")
            }
        }
        let admin = readAdmin(top["admin"], reader: &reader, publicListen: listen)
        let store = readStore(top["store"], reader: &reader)
        let limits = readLimits(top["limits"], reader: &reader)
        let clients = readClients(top["clients"], reader: &reader)
        let origins = readOrigins(top["origins"], root: root, reader: &reader)
        let verifiers = readTokenVerifiers(top["jwt"], reader: &reader)
        var defaults = readDefaults(top["defaults"], origins: origins, verifiers: verifiers, jwtNode: top["jwt"], reader: &reader)
        defaults.credentialHeaders = clients.credentialHeaders

        var unmatched = UnmatchedPolicy.pass
        if let node = top["unmatched"], let text = reader.string(node, field: "unmatched", example: "pass") {
            if let policy = UnmatchedPolicy(rawValue: text) {
                unmatched = policy
            } else {
                reader.error("'\(text)' is not pass or reject", at: node, field: "unmatched")
            }
        }

        var routes: [Route] = []
        var routeNodes: [Node] = []
        if let node = top["routes"] {
            if let sequence = node.sequence {
                for (offset, item) in sequence.enumerated() {
                    if let route = readRoute(item, index: offset + 1, origins: origins, verifiers: verifiers, jwtNode: top["jwt"],
                        defaults: defaults, reader: &reader)
                    {
                        routes.append(route)
                        routeNodes.append(item)
                    }
                }
                if sequence.isEmpty {
                    reader.warning("there are no routes: every request will be passed to the origin unstored",
                        at: node, field: "routes")
                }
            } else {
                reader.error("expected a list of routes, found \(reader.describe(node))", at: node, field: "routes")
            }
        } else {
            reader.error("'routes:' is missing; it lists what to cache and what to purge", at: root, field: nil)
        }
        reader.route = nil
        checkRoutes(routes, reader: &reader)
        checkClients(clients, origins: origins, originsNode: top["origins"], routes: routes, reader: &reader)
        let webhook = readWebhooks(top["webhooks"], routes: routes, reader: &reader)
        var warm: [(String, Node)] = []
        if let warmNode = top["warm"], let list = reader.stringList(warmNode, field: "warm") {
            for (offset, (text, itemNode)) in list.enumerated() {
                if !text.hasPrefix("/") || (try? RequestTarget(parsing: text)) == nil {
                    reader.error("'\(text)' is not a request target; write it like /api/v1/events?page=1", at: itemNode, field: "warm[\(offset)]")
                } else {
                    warm.append((text, itemNode))
                }
            }
        }

        guard let defaultOrigin = defaults.origin ?? origins.first?.name else { return nil }
        let ruleSet = RuleSet(
            file: reader.file, fingerprint: fingerprint, listen: listen, admin: admin, store: store,
            origins: origins, defaultOrigin: defaultOrigin, routes: routes, unmatched: unmatched, warnings: [],
            missingEnvironment: [], shopifyWebhook: webhook, warm: warm.map(\.0), limits: limits, clients: clients)
        // A warm-up URL whose query the key does not tell apart is passed uncached: warming it stores nothing.
        for (offset, (text, itemNode)) in warm.enumerated() {
            guard case .bypass(.unkeyedQuery(let names)) = ruleSet.plan(for: RequestHead(method: "GET", target: text)).decision,
                let route = ruleSet.plan(for: RequestHead(method: "GET", target: text)).route
            else { continue }
            reader.warning("route '\(route.name)' does not name \(names.joined(separator: ", ")) in its key, so this URL is passed "
                + "uncached and warming it stores nothing; add \(names.map { "{query.\($0)}" }.joined(separator: ", ")) to the key",
                at: itemNode, field: "warm[\(offset)]")
        }
        return ruleSet
    }
}
