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
        "version", "listen", "admin", "store", "limits", "clients", "origins", "defaults", "unmatched", "routes", "webhooks", "warm",
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
        var defaults = readDefaults(top["defaults"], origins: origins, reader: &reader)
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
                    if let route = readRoute(item, index: offset + 1, origins: origins, defaults: defaults, reader: &reader) {
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

    // MARK: Admin

    private static func readAdmin(_ node: Node?, reader: inout RulesReader, publicListen: ListenAddress) -> AdminSettings {
        var listen = ListenAddress(host: "127.0.0.1", port: 9090)
        let implied = " (admin.token defaults to {env: TROVE_ADMIN_TOKEN}; on a loopback admin.listen, "
            + "allow_unauthenticated: true runs without one)"
        guard let node,
            let fields = reader.mapping(node, path: "admin", allowed: ["listen", "token", "allow_unauthenticated"])
        else {
            let token = reader.environmentValue("TROVE_ADMIN_TOKEN", at: node, field: "admin.token", implied: implied)
            return AdminSettings(listen: listen, token: token, allowUnauthenticated: false)
        }
        var token: ConfigString?
        var allowUnauthenticated = false
        if let listenNode = fields["listen"], let text = reader.string(listenNode, field: "admin.listen") {
            if let parsed = ListenAddress(parsing: text) {
                listen = parsed
                if parsed.port != 0 && parsed.port == publicListen.port
                    && (parsed.host == publicListen.host || parsed.host == "0.0.0.0" || publicListen.host == "0.0.0.0")
                {
                    reader.error("the admin listener cannot share the public listener's address \(publicListen)",
                        at: listenNode, field: "admin.listen")
                }
            } else {
                reader.error("'\(text)' is not an address; write host:port, e.g. 127.0.0.1:9090",
                    at: listenNode, field: "admin.listen")
            }
        }
        if let tokenNode = fields["token"] {
            token = reader.configString(tokenNode, field: "admin.token", secret: true, suggestedVariable: "TROVE_ADMIN_TOKEN")
        }
        if let allowNode = fields["allow_unauthenticated"], let allow = reader.bool(allowNode, field: "admin.allow_unauthenticated") {
            allowUnauthenticated = allow
            if allow && !listen.isLoopback {
                reader.error("an admin API without a token is only allowed on a loopback address (127.0.0.1 or "
                    + "::1), not on \(listen): anyone who can reach it could purge the cache",
                    at: allowNode, field: "admin.allow_unauthenticated")
            }
            if allow && fields["token"] != nil {
                reader.error("say either token or allow_unauthenticated: true, not both", at: allowNode,
                    field: "admin.allow_unauthenticated")
            }
        }
        if !allowUnauthenticated && fields["token"] == nil {
            token = reader.environmentValue("TROVE_ADMIN_TOKEN", at: node, field: "admin.token", implied: implied)
        }
        return AdminSettings(listen: listen, token: allowUnauthenticated ? nil : token, allowUnauthenticated: allowUnauthenticated)
    }

    // MARK: Store

    private static func readStore(_ node: Node?, reader: inout RulesReader) -> StoreSettings {
        var namespace = "trove"
        var memoryBytes = 256 << 20
        var maxKeyLength = 256
        var redis: RedisSettings?
        guard let node,
            let fields = reader.mapping(node, path: "store", allowed: [
                "redis", "namespace", "connect_timeout", "command_timeout", "memory_size", "max_key_length",
            ])
        else {
            return StoreSettings(redis: nil, namespace: namespace, memoryBytes: memoryBytes, maxKeyLength: maxKeyLength)
        }
        if let nsNode = fields["namespace"], let text = reader.string(nsNode, field: "store.namespace") {
            if text.count <= 64, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                namespace = text
            } else {
                reader.error("'\(text)' is not a namespace; use up to 64 letters, digits, '-', '_' or '.'",
                    at: nsNode, field: "store.namespace")
            }
        }
        if let sizeNode = fields["memory_size"], let size = reader.size(sizeNode, field: "store.memory_size", maximum: 1 << 40) {
            memoryBytes = size
        }
        if let lengthNode = fields["max_key_length"],
            let length = reader.int(lengthNode, field: "store.max_key_length", range: 100...4096)
        {
            maxKeyLength = length
        }
        let connectTimeout = fields["connect_timeout"].flatMap {
            reader.duration($0, field: "store.connect_timeout", maximum: .seconds(60))
        } ?? .seconds(1)
        let commandTimeout = fields["command_timeout"].flatMap {
            reader.duration($0, field: "store.command_timeout", maximum: .seconds(60))
        } ?? .milliseconds(250)
        if let redisNode = fields["redis"] {
            if let url = reader.configString(redisNode, field: "store.redis", secret: false, suggestedVariable: "REDIS_URL") {
                var endpoint: RedisEndpoint?
                if let value = url.value {
                    switch RedisEndpoint.parse(value) {
                    case .success(let parsed):
                        endpoint = parsed
                        if parsed.password != nil && url.environmentVariable == nil {
                            reader.error("the URL holds a password, which must not be written in the rules file; "
                                + "read the whole URL from the environment: {env: REDIS_URL}",
                                at: redisNode, field: "store.redis")
                        }
                    case .failure(let error):
                        let from = url.environmentVariable.map { " (from $\($0))" } ?? ""
                        reader.error(error.message + from, at: redisNode, field: "store.redis")
                    }
                }
                redis = RedisSettings(url: url, endpoint: endpoint, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
            }
        } else {
            for name in ["connect_timeout", "command_timeout"] where fields[name] != nil {
                reader.warning("has no effect without store.redis (the memory store has no timeouts)",
                    at: fields[name], field: "store.\(name)")
            }
        }
        return StoreSettings(redis: redis, namespace: namespace, memoryBytes: memoryBytes, maxKeyLength: maxKeyLength)
    }

    // MARK: Origins

    private static func readOrigins(_ node: Node?, root: Node, reader: inout RulesReader) -> [Origin] {
        guard let node else {
            reader.error("'origins:' is missing; name at least one, e.g. origins: {api: {url: http://127.0.0.1:8000}}",
                at: root, field: nil)
            return []
        }
        guard let mapping = node.mapping else {
            reader.error("expected a mapping of origin names to settings, found \(reader.describe(node))",
                at: node, field: "origins")
            return []
        }
        if mapping.count == 0 {
            reader.error("name at least one origin", at: node, field: "origins")
        }
        var origins: [Origin] = []
        var seen = Set<String>()
        for (key, value) in mapping {
            guard let name = key.scalar?.string, isValidName(name) else {
                reader.error("'\(reader.describe(key))' is not an origin name; use letters, digits, '-', '_' or '.'",
                    at: key, field: "origins")
                continue
            }
            guard seen.insert(name).inserted else {
                reader.error("origin '\(name)' is named twice", at: key, field: "origins.\(name)")
                continue
            }
            if let origin = readOrigin(name, value, reader: &reader) { origins.append(origin) }
        }
        return origins
    }

    private static func readOrigin(_ name: String, _ node: Node, reader: inout RulesReader) -> Origin? {
        let path = "origins.\(name)"
        guard let fields = reader.mapping(node, path: path, allowed: [
            "url", "connect_timeout", "timeout", "headers", "preserve_host", "max_concurrency", "rate", "burst", "queue",
            "queue_timeout",
        ]) else { return nil }
        guard let urlNode = fields["url"] else {
            reader.error("'url' is missing, e.g. url: http://127.0.0.1:8000", at: node, field: path)
            return nil
        }
        guard let urlText = reader.string(urlNode, field: "\(path).url") else { return nil }
        let address: OriginAddress
        switch OriginAddress.parse(urlText, credentialsVariable: "\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_AUTHORIZATION") {
        case .success(let parsed):
            address = parsed
        case .failure(let problem):
            reader.error(problem.message, at: urlNode, field: "\(path).url")
            return nil
        }

        let connectTimeout = fields["connect_timeout"].flatMap {
            reader.duration($0, field: "\(path).connect_timeout", maximum: .seconds(300))
        } ?? .seconds(2)
        let timeout = fields["timeout"].flatMap {
            reader.duration($0, field: "\(path).timeout", maximum: .seconds(3600))
        } ?? .seconds(30)
        if connectTimeout > timeout, let node = fields["connect_timeout"] {
            reader.warning("is longer than timeout (\(Units.format(timeout))), which bounds the whole exchange",
                at: node, field: "\(path).connect_timeout")
        }
        var headers: [(name: String, value: ConfigString)] = []
        if let headersNode = fields["headers"] {
            if let mapping = headersNode.mapping {
                for (key, value) in mapping {
                    guard let header = key.scalar?.string, isToken(header) else {
                        reader.error("\(reader.describe(key)) is not a header name", at: key, field: "\(path).headers")
                        continue
                    }
                    let field = "\(path).headers.\(header)"
                    if forbiddenOriginHeaders.contains(header.lowercased()) {
                        reader.error("Trove sets \(header) itself; it cannot be configured", at: key, field: field)
                        continue
                    }
                    let variable = header.uppercased().replacingOccurrences(of: "-", with: "_")
                    if let configured = reader.configString(
                        value, field: field, secret: looksSecret(header), suggestedVariable: variable)
                    {
                        headers.append((header, configured))
                    }
                }
            } else {
                reader.error("expected a mapping of header names to values", at: headersNode, field: "\(path).headers")
            }
        }
        let preserveHost = fields["preserve_host"].flatMap { reader.bool($0, field: "\(path).preserve_host") } ?? false
        let protection = readProtection(fields, path: path, timeout: timeout, reader: &reader)
        return Origin(
            name: name, scheme: address.scheme, host: address.host, port: address.port, basePath: address.basePath,
            connectTimeout: connectTimeout, timeout: timeout, headers: headers, preserveHost: preserveHost,
            protection: protection)
    }

    /// `max_concurrency: 8`, `rate: 2/s` (or `120/m`), `burst: 4`, `queue: 100`, `queue_timeout: 10s`.
    private static func readProtection(
        _ fields: RulesReader.Fields, path: String, timeout: Duration, reader: inout RulesReader
    ) -> OriginProtection {
        let maxConcurrency = fields["max_concurrency"].flatMap {
            reader.int($0, field: "\(path).max_concurrency", range: 1...100_000)
        }
        var rate: Double?
        if let rateNode = fields["rate"], let text = reader.string(rateNode, field: "\(path).rate", example: "2/s") {
            let parts = text.replacingOccurrences(of: " ", with: "").split(separator: "/")
            let seconds: Double? = parts.count == 2 ? ["s": 1, "m": 60, "h": 3600][String(parts[1])] : nil
            // At least one request an hour: a rate much below that means "never", which the bucket's arithmetic
            // cannot express (a wait of 10^22 seconds), and which no origin needs.
            if let seconds, let count = Double(parts[0]), count.isFinite, count > 0, count <= 1_000_000, count / seconds >= 1.0 / 3600 {
                rate = count / seconds
            } else {
                reader.error("'\(text)' is not a rate from 1/h to 1000000/s; write requests per second, minute or hour: 2/s, 120/m, 5000/h",
                    at: rateNode, field: "\(path).rate")
            }
        }
        let defaultBurst = max(1, Int((rate ?? 1).rounded(.up)))
        let burst = fields["burst"].flatMap { reader.int($0, field: "\(path).burst", range: 1...100_000) } ?? defaultBurst
        if fields["burst"] != nil && rate == nil {
            reader.warning("has no effect without rate", at: fields["burst"], field: "\(path).burst")
        }
        let limited = rate != nil || maxConcurrency != nil
        let queue = fields["queue"].flatMap { reader.int($0, field: "\(path).queue", range: 0...1_000_000) } ?? (limited ? 100 : 0)
        let queueTimeout = fields["queue_timeout"].flatMap {
            reader.duration($0, field: "\(path).queue_timeout", maximum: .seconds(3600))
        } ?? min(timeout, .seconds(10))
        for name in ["queue", "queue_timeout"] where fields[name] != nil && !limited {
            reader.warning("has no effect without rate or max_concurrency", at: fields[name], field: "\(path).\(name)")
        }
        return OriginProtection(maxConcurrency: maxConcurrency, rate: rate, burst: burst, queue: queue, queueTimeout: queueTimeout)
    }

    static let forbiddenOriginHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "proxy-connection",
    ]

    /// Header names whose values are credentials: they must come from the environment.
    static func looksSecret(_ header: String) -> Bool {
        let name = header.lowercased()
        if ["authorization", "proxy-authorization", "cookie"].contains(name) { return true }
        return ["token", "secret", "password", "passwd", "api-key", "apikey", "api_key", "auth"].contains {
            name.contains($0)
        }
    }

    static func isToken(_ text: String) -> Bool {
        HTTPSyntax.isToken(text)
    }

    /// Route and origin names: they become metric labels and appear in purge requests.
    static func isValidName(_ text: String) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter || first.isNumber, text.count <= 64 else {
            return false
        }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    // MARK: Defaults

    struct Defaults {
        var origin: String?
        var ttl: Duration?
        var stale: Duration = .zero
        var staleIfError: Duration = .zero
        var statuses: [(status: Int, ttl: Duration?)] = [(200, nil)]
        /// `statuses: any`.
        var anyStatus = false
        var maxBodyBytes = 1 << 20
        var freshness = FreshnessSource.rules
        var maxTTL: Duration?
        var ignoreQuery: [String] = []
        var cacheNode: Node?
        /// Headers that carry credentials (`clients.credentials` and the defaults), lower-cased.
        var credentialHeaders = Credential.defaultHeaders
    }

    static let cacheDefaultKeys = ["ttl", "stale", "stale_if_error", "statuses", "max_body", "freshness", "max_ttl", "ignore_query"]

    /// `ignore_query: [utm_*, fbclid, gclid]`: query parameter names, or prefixes ending in `*`.
    static func readIgnoreQuery(_ node: Node, field: String, reader: inout RulesReader) -> [String]? {
        reader.list(node, field: field, parse: { text in
            let name = text.hasSuffix("*") ? text.dropLast() : Substring(text)
            let usable = !name.isEmpty && !name.contains { "*&= ".contains($0) }
            return usable ? text : nil
        }, problem: { "'\($0)' is not a query parameter name; write a name (fbclid) or a prefix ending in * (utm_*)" })
    }

    /// `freshness: rules|origin`.
    static func readFreshness(_ node: Node, field: String, reader: inout RulesReader) -> FreshnessSource? {
        guard let text = reader.string(node, field: field, example: "origin") else { return nil }
        guard let source = FreshnessSource(rawValue: text) else {
            reader.error("'\(text)' is not rules or origin (rules: the TTLs here decide; origin: the origin's "
                + "Cache-Control and Expires decide, with the TTL as fallback)", at: node, field: field)
            return nil
        }
        return source
    }

    private static func readDefaults(_ node: Node?, origins: [Origin], reader: inout RulesReader) -> Defaults {
        var defaults = Defaults()
        if let node, let fields = reader.mapping(node, path: "defaults", allowed: ["origin", "cache"]) {
            if let originNode = fields["origin"], let name = reader.string(originNode, field: "defaults.origin") {
                if origins.contains(where: { $0.name == name }) {
                    defaults.origin = name
                } else {
                    reportUnknownOrigin(name, at: originNode, field: "defaults.origin", origins: origins, reader: &reader)
                }
            }
            if let cacheNode = fields["cache"],
                let cache = reader.mapping(cacheNode, path: "defaults.cache", allowed: cacheDefaultKeys, hints: [
                    "key": "a key is chosen per route", "tags": "tags are chosen per route",
                    "shared": "shared is decided per route", "authenticated": "authenticated is decided per route",
                ])
            {
                defaults.cacheNode = cacheNode
                if let ttlNode = cache["ttl"] { defaults.ttl = reader.duration(ttlNode, field: "defaults.cache.ttl") }
                if let staleNode = cache["stale"],
                    let stale = reader.duration(staleNode, field: "defaults.cache.stale", allowZero: true)
                {
                    defaults.stale = stale
                }
                if let node = cache["stale_if_error"],
                    let value = reader.duration(node, field: "defaults.cache.stale_if_error", allowZero: true)
                {
                    defaults.staleIfError = value
                }
                if let statusesNode = cache["statuses"],
                    let (statuses, any) = readStatuses(statusesNode, field: "defaults.cache.statuses", reader: &reader)
                {
                    defaults.statuses = statuses
                    defaults.anyStatus = any
                }
                if let bodyNode = cache["max_body"],
                    let size = reader.size(bodyNode, field: "defaults.cache.max_body", maximum: maxBodyLimit)
                {
                    defaults.maxBodyBytes = size
                }
                if let node = cache["freshness"], let source = readFreshness(node, field: "defaults.cache.freshness", reader: &reader) {
                    defaults.freshness = source
                }
                if let node = cache["max_ttl"], let value = reader.duration(node, field: "defaults.cache.max_ttl") {
                    defaults.maxTTL = value
                }
                if let node = cache["ignore_query"], let patterns = readIgnoreQuery(node, field: "defaults.cache.ignore_query", reader: &reader) {
                    defaults.ignoreQuery = patterns
                }
            }
        }
        if defaults.origin == nil && origins.count > 1 {
            reader.report(.error,
                "there are \(origins.count) origins; say which one routes use by default with defaults.origin "
                    + "(one of \(origins.map(\.name).joined(separator: ", ")))",
                at: node?.mark, field: "defaults.origin")
        }
        return defaults
    }

    /// Redis refuses values over 512 MiB; a cache entry is the body plus a little.
    static let maxBodyLimit = 256 << 20

    static func reportUnknownOrigin(
        _ name: String, at node: Node, field: String, origins: [Origin], reader: inout RulesReader
    ) {
        let hint = Suggestions.closest(to: name, in: origins.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
        reader.error("there is no origin '\(name)'\(hint); origins: \(origins.map(\.name).joined(separator: ", "))",
            at: node, field: field)
    }

    /// `[200, 404]` (each uses the route's ttl), `{200: 10m, 404: 30s}`, or `any`: every status the origin gives
    /// explicit freshness (with `freshness: origin`), the heuristically cacheable ones using the route's ttl when
    /// it gives none (`any` is true).
    private static func readStatuses(
        _ node: Node, field: String, reader: inout RulesReader
    ) -> (statuses: [(status: Int, ttl: Duration?)], any: Bool)? {
        if node.scalar?.string.trimmingWhitespace().lowercased() == "any" {
            return (HTTPStatus.heuristicallyCacheable.map { ($0, nil) }, true)
        }
        var result: [(status: Int, ttl: Duration?)] = []
        var entries: [(Node, Node?)] = []
        if let sequence = node.sequence {
            entries = sequence.map { ($0, nil) }
        } else if let mapping = node.mapping {
            entries = mapping.map { ($0.key, $0.value) }
        } else if node.scalar != nil {
            entries = [(node, nil)]
        } else {
            reader.error("expected a list of statuses ([200, 404]) or statuses with TTLs ({200: 10m, 404: 30s})",
                at: node, field: field)
            return nil
        }
        var seen = Set<Int>()
        for (statusNode, ttlNode) in entries {
            guard let text = reader.string(statusNode, field: field) else { continue }
            guard let status = Int(text), (200...599).contains(status) else {
                reader.error("'\(text)' is not an HTTP status from 200 to 599", at: statusNode, field: field)
                continue
            }
            if status == 206 || status == 304 {
                reader.error("\(status) answers cannot be stored: they are not whole representations", at: statusNode,
                    field: field)
                continue
            }
            guard seen.insert(status).inserted else {
                reader.error("\(status) is listed twice", at: statusNode, field: field)
                continue
            }
            var ttl: Duration?
            if let ttlNode {
                guard let parsed = reader.duration(ttlNode, field: "\(field).\(status)") else { continue }
                ttl = parsed
            }
            if status >= 500 {
                reader.warning("stores \(status) answers: while they are fresh, an origin outage keeps being served "
                    + "from the cache after the origin has recovered", at: statusNode, field: field)
            }
            result.append((status, ttl))
        }
        return (result, false)
    }
}

extension RulesLoader {
    // MARK: Routes

    static let routeKeys = ["name", "match", "origin", "cache", "purge", "pass"]
    static let cacheKeys = [
        "key", "ttl", "stale", "stale_if_error", "statuses", "tags", "max_body", "shared", "authenticated",
        "override_cache_control", "freshness", "max_ttl", "ignore_query",
    ]
    static let purgeKeys = ["tags", "keys", "routes", "all"]

    private static func readRoute(
        _ node: Node, index: Int, origins: [Origin], defaults: Defaults, reader: inout RulesReader
    ) -> Route? {
        // Name the route in diagnostics about its other keys, even those found before `name` is read.
        if let peeked = node.mapping?["name"]?.scalar?.string, isValidName(peeked) {
            reader.route = peeked
        } else {
            reader.route = "#\(index)"
        }
        let line = node.mark?.line ?? 0
        guard let fields = reader.mapping(node, path: "", allowed: routeKeys, hints: [
            "ttl": "write it inside cache: as cache.ttl", "key": "write it inside cache: as cache.key",
            "tags": "write it inside cache: (tags an entry carries) or purge: (tags a write purges)",
            "stale": "write it inside cache: as cache.stale", "method": "write the method in match: 'GET /path'",
            "methods": "write the methods in match: 'PUT,PATCH /path'", "path": "write the path in match: 'GET /path'",
        ]) else { return nil }

        var name = "#\(index)"
        if let nameNode = fields["name"], let text = reader.string(nameNode, field: "name", example: "events-list") {
            if isValidName(text) {
                name = text
            } else {
                reader.error("'\(text)' is not a route name; use up to 64 letters, digits, '-', '_' or '.' (names "
                    + "become metric labels)", at: nameNode, field: "name")
            }
        } else if fields["name"] == nil {
            reader.error("'name' is missing; every route needs a unique name (metrics and purges use it)",
                at: node, field: nil)
        }

        guard let matchNode = fields["match"] else {
            reader.error("'match' is missing, e.g. match: GET /api/v1/events/{id}", at: node, field: nil)
            return nil
        }
        guard let (methods, path) = readMatch(matchNode, reader: &reader) else { return nil }

        var originName = defaults.origin ?? origins.first?.name ?? ""
        if let originNode = fields["origin"], let text = reader.string(originNode, field: "origin") {
            if origins.contains(where: { $0.name == text }) {
                originName = text
            } else {
                reportUnknownOrigin(text, at: originNode, field: "origin", origins: origins, reader: &reader)
            }
        }

        var lines = Route.SourceLines(
            name: SourcePosition(fields["name"]?.mark), match: SourcePosition(matchNode.mark),
            key: SourcePosition(fields["cache"]?.mapping?["key"]?.mark))
        let given = ["cache", "purge", "pass"].filter { fields[$0] != nil }
        guard given.count == 1 else {
            if given.isEmpty {
                reader.error("say what to do with matching requests: cache: (store answers), purge: (a write that "
                    + "invalidates entries) or pass: true (forward, never store)", at: node, field: nil)
            } else {
                reader.error("says \(given.joined(separator: " and ")); a route does exactly one of cache, purge or "
                    + "pass", at: fields.keyNode(given[1]), field: given[1])
            }
            return nil
        }
        let action: Route.Action
        switch given[0] {
        case "cache":
            guard let policy = readCache(fields["cache"]!, methods: methods, path: path, defaults: defaults, reader: &reader)
            else { return nil }
            action = .cache(policy)
        case "purge":
            guard let rule = readPurge(fields["purge"]!, methods: methods, path: path, lines: &lines, reader: &reader)
            else { return nil }
            action = .purge(rule)
        default:
            guard let pass = reader.bool(fields["pass"]!, field: "pass") else { return nil }
            guard pass else {
                reader.error("pass: false says nothing; use cache: or purge:, or pass: true", at: fields["pass"], field: "pass")
                return nil
            }
            action = .pass
        }
        return Route(
            name: name, index: index, line: line, methods: methods, path: path, origin: originName, action: action,
            lines: lines)
    }

    private static func readMatch(_ node: Node, reader: inout RulesReader) -> (MethodSet, PathPattern)? {
        guard let text = reader.string(node, field: "match", example: "GET /api/v1/events/{id}") else { return nil }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 2 else {
            let hint = words.count == 1 && words[0].hasPrefix("/")
                ? "add the method: 'GET \(words[0])'" : "write it like 'GET /api/v1/events/{id}' or 'PUT,PATCH /x/{id}'"
            reader.error("'\(text)' is not 'METHODS PATH'; \(hint)", at: node, field: "match")
            return nil
        }
        var methods: [String] = []
        for method in words[0].split(separator: ",", omittingEmptySubsequences: false) {
            let upper = method.uppercased()
            let name = upper == "*" ? "ANY" : upper
            guard MethodSet.known.contains(name) || name == "ANY" else {
                reader.error("'\(method)' is not a method Trove routes; use \(MethodSet.known.joined(separator: ", ")) "
                    + "or ANY, separated by commas", at: node, field: "match")
                return nil
            }
            if !methods.contains(name) { methods.append(name) }
        }
        do {
            let path = try PathPattern(parsing: String(words[1]))
            return (MethodSet(written: methods), path)
        } catch {
            reader.error(error.message, at: node, field: "match")
            return nil
        }
    }

    private static func readCache(
        _ node: Node, methods: MethodSet, path: PathPattern, defaults: Defaults, reader: inout RulesReader
    ) -> CachePolicy? {
        guard let fields = reader.mapping(node, path: "cache", allowed: cacheKeys, hints: [
            "purge": "purge is a route action of its own, for write routes",
            "ttl_by_status": "write statuses: {200: 10m, 404: 30s}",
        ]) else { return nil }
        guard methods.isAllSafe else {
            let writes = methods.isAny ? "every method, writes included" : methods.written.filter { !MethodSet.safe.contains($0) }.joined(separator: ",")
            let what = fields["ttl"] != nil ? "cache.ttl has no meaning here" : "cache: has no meaning here"
            reader.error("the route matches \(writes): writes are forwarded and may purge, but their answers are never "
                + "stored, so \(what); match only GET (and HEAD), or use purge: for a write route",
                at: fields.keyNode("ttl") ?? node, field: fields["ttl"] != nil ? "cache.ttl" : "cache")
            return nil
        }
        let parameters = path.parameterNames
        let rest = path.restParameterNames

        var key: Template?
        if let keyNode = fields["key"] {
            if let text = reader.string(keyNode, field: "cache.key", example: "\"events:{id}\"") {
                key = readTemplate(text, node: keyNode, field: "cache.key", parameters: parameters, rest: rest, reader: &reader)
            }
        } else {
            key = try? Template(parsing: "{path}?{query}", pathParameters: parameters, restParameters: rest)
        }

        var tags: [Template] = []
        if let tagsNode = fields["tags"], let list = reader.stringList(tagsNode, field: "cache.tags") {
            for (offset, (text, itemNode)) in list.enumerated() {
                if let tag = readTemplate(text, node: itemNode, field: "cache.tags[\(offset)]", parameters: parameters,
                    rest: rest, reader: &reader)
                {
                    tags.append(tag)
                }
            }
        }

        var ttl = defaults.ttl
        if let ttlNode = fields["ttl"] {
            // 0s is meaningful with freshness: origin (no guessing: only what the origin says is fresh is served).
            guard let parsed = reader.duration(ttlNode, field: "cache.ttl", allowZero: true) else { return nil }
            ttl = parsed
        }
        var statuses = defaults.statuses
        var anyStatus = defaults.anyStatus
        if let statusesNode = fields["statuses"] {
            guard let parsed = readStatuses(statusesNode, field: "cache.statuses", reader: &reader) else { return nil }
            (statuses, anyStatus) = parsed
        }
        var statusTTLs: [(status: Int, ttl: Duration)] = []
        for (status, statusTTL) in statuses {
            guard let resolved = statusTTL ?? ttl else {
                reader.error("no TTL for \(status) answers: say how long answers stay fresh with cache.ttl (e.g. ttl: 5m), "
                    + "defaults.cache.ttl, or statuses: {\(status): 5m}",
                    at: fields["statuses"] ?? node, field: fields["statuses"] != nil ? "cache.statuses" : "cache.ttl")
                return nil
            }
            statusTTLs.append((status, resolved))
        }
        if let ttlNode = fields["ttl"], !statuses.isEmpty, statuses.allSatisfy({ $0.ttl != nil }) {
            reader.warning("has no effect, because every status in cache.statuses has its own TTL", at: ttlNode,
                field: "cache.ttl")
        }

        var stale = defaults.stale
        if let staleNode = fields["stale"] {
            guard let parsed = reader.duration(staleNode, field: "cache.stale", allowZero: true) else { return nil }
            stale = parsed
        }
        var staleIfError = defaults.staleIfError
        if let node = fields["stale_if_error"] {
            guard let parsed = reader.duration(node, field: "cache.stale_if_error", allowZero: true) else { return nil }
            staleIfError = parsed
        }
        var maxBody = defaults.maxBodyBytes
        if let bodyNode = fields["max_body"] {
            guard let parsed = reader.size(bodyNode, field: "cache.max_body", maximum: maxBodyLimit) else { return nil }
            maxBody = parsed
        }
        let shared = fields["shared"].flatMap { reader.bool($0, field: "cache.shared") } ?? false
        let authenticated = fields["authenticated"].flatMap { reader.bool($0, field: "cache.authenticated") } ?? false
        let overrideCacheControl = fields["override_cache_control"].flatMap {
            reader.bool($0, field: "cache.override_cache_control")
        } ?? false
        var freshness = defaults.freshness
        if let node = fields["freshness"] {
            guard let source = readFreshness(node, field: "cache.freshness", reader: &reader) else { return nil }
            freshness = source
        }
        if anyStatus && freshness == .rules {
            reader.error("statuses: any stores every status the origin gives explicit freshness (Cache-Control: "
                + "max-age, s-maxage or Expires), so it needs freshness: origin; with freshness: rules, list the "
                + "statuses to store: [200, 404]", at: fields["statuses"] ?? defaults.cacheNode ?? node, field: "cache.statuses")
            return nil
        }
        if let ttlNode = fields["ttl"], ttl == .zero, freshness == .rules {
            reader.error("must be more than 0s (0s means \"only what the origin declares fresh\", with freshness: origin)",
                at: ttlNode, field: "cache.ttl")
            return nil
        }
        var ignoreQuery = defaults.ignoreQuery
        if let node = fields["ignore_query"] {
            guard let patterns = readIgnoreQuery(node, field: "cache.ignore_query", reader: &reader) else { return nil }
            ignoreQuery = patterns
        }
        var maxTTL = defaults.maxTTL
        if let node = fields["max_ttl"] {
            guard let value = reader.duration(node, field: "cache.max_ttl") else { return nil }
            maxTTL = value
            if freshness == .rules {
                reader.warning("has no effect with freshness: rules (the rule's TTLs are used as written); add "
                    + "freshness: origin to let the origin's headers decide up to this", at: node, field: "cache.max_ttl")
            }
        }

        guard let key else { return nil }

        // Credentials: never in clear, never both shared and per user, and never cached for everyone by accident.
        for (template, field, templateNode) in [(key, "cache.key", fields["key"])] + tags.enumerated().map({
            ($0.element, "cache.tags[\($0.offset)]", fields["tags"])
        }) {
            checkCredentialsHashed(template, field: field, node: templateNode ?? node, credentials: defaults.credentialHeaders,
                reader: &reader)
        }
        let identity = key.credentials(among: defaults.credentialHeaders)
        if shared && !identity.isEmpty {
            reader.error("the route is shared: true, but its key holds the user's identity (\(identity.sorted { $0.rawValue < $1.rawValue }.map(\.description).joined(separator: ", "))); "
                + "a shared route keeps one entry for everyone: remove the identity from the key, or remove shared: "
                + "true to keep an entry per user", at: fields["shared"], field: "cache.shared")
        }
        if authenticated && !shared && identity.isEmpty {
            reader.error("the route caches authenticated requests, but its key does not hold the user's identity and "
                + "the route is not shared: every user would be served the first user's answer. Put the identity in "
                + "the key (e.g. key: \"\(suggestedIdentityKey(key))\"), or set shared: true if the answer is the "
                + "same for everyone", at: fields["authenticated"], field: "cache.authenticated")
        }

        // Parameters the path captures but the key ignores make different resources share one entry.
        let used = Set(key.placeholders.compactMap { placeholder -> String? in
            if case .pathParameter(let name) = placeholder.source { return name } else { return nil }
        })
        // A parameter the tags read but the key does not: requests carrying it are passed uncached (their answer
        // cannot be told apart under the key), so the tag never marks an entry.
        let keyedQuery = Set(key.placeholders.compactMap { placeholder -> String? in
            if case .queryParameter(let name) = placeholder.source { return name } else { return nil }
        })
        if !key.placeholders.contains(where: { $0.source == .query }) {
            for (offset, tag) in tags.enumerated() {
                for placeholder in tag.placeholders {
                    guard case .queryParameter(let name) = placeholder.source, !keyedQuery.contains(name) else { continue }
                    reader.warning("the tag reads {query.\(name)}, which the key does not name: requests with \(name) are "
                        + "passed uncached, so no entry ever carries this tag; add {query.\(name)} to the key",
                        at: fields["tags"], field: "cache.tags[\(offset)]")
                }
            }
        }
        let keyUsesPath = key.placeholders.contains { $0.source == .path }
        if !keyUsesPath {
            for parameter in parameters where !used.contains(parameter) {
                reader.warning("the key does not use the path parameter {\(parameter)}: every \(parameter) shares one "
                    + "entry; add {\(parameter)} to the key", at: fields["key"], field: "cache.key")
            }
        }
        return CachePolicy(
            key: key, tags: tags, statusTTLs: statusTTLs, stale: stale, staleIfError: staleIfError, maxBodyBytes: maxBody,
            shared: shared,
            authenticated: authenticated, overrideCacheControl: overrideCacheControl, freshness: freshness, maxTTL: maxTTL,
            anyStatus: anyStatus, ignoreQuery: ignoreQuery, keyedCredentials: identity)
    }

    private static func suggestedIdentityKey(_ key: Template) -> String {
        key.description + ":user={header.authorization|sha256}"
    }

    /// Reports every credential the template would write in clear; true when there is none.
    @discardableResult
    private static func checkCredentialsHashed(
        _ template: Template, field: String, node: Node, credentials: Set<String> = Credential.defaultHeaders, reader: inout RulesReader
    ) -> Bool {
        var clean = true
        for placeholder in template.placeholders where placeholder.filters.last != .sha256 {
            let isCredential: Bool
            switch placeholder.source {
            case .header(let name) where credentials.contains(name) || name == "proxy-authorization": isCredential = true
            case .cookie: isCredential = true
            default: isCredential = false
            }
            if isCredential {
                let hashed = String(placeholder.written.dropLast()) + "|sha256}"
                reader.error("\(placeholder.written) would write a credential into the store in clear (Redis keys are "
                    + "readable by anyone with access to Redis, and appear in logs); hash it: \(hashed)",
                    at: node, field: field)
                clean = false
            }
        }
        return clean
    }

    static func readTemplate(
        _ text: String, node: Node, field: String, parameters: [String], rest: Set<String>, reader: inout RulesReader
    ) -> Template? {
        do {
            return try Template(parsing: text, pathParameters: parameters, restParameters: rest)
        } catch {
            reader.error(error.message, at: node, field: field)
            return nil
        }
    }

    private static func readPurge(
        _ node: Node, methods: MethodSet, path: PathPattern, lines: inout Route.SourceLines, reader: inout RulesReader
    ) -> PurgeRule? {
        guard let fields = reader.mapping(node, path: "purge", allowed: purgeKeys, hints: [
            "ttl": "write routes are not cached", "tag": "write tags: [...]", "key": "write keys: [...]",
            "route": "write routes: [...]",
        ]) else { return nil }
        guard methods.isAllUnsafe else {
            let reads = methods.isAny ? "every method, GET included" : methods.written.filter { !MethodSet.unsafe.contains($0) }.joined(separator: ",")
            reader.error("the route matches \(reads); only writes (POST, PUT, PATCH, DELETE) purge", at: node, field: "purge")
            return nil
        }
        let parameters = path.parameterNames
        let rest = path.restParameterNames
        var tags: [Template] = []
        var keys: [Template] = []
        var routes: [String] = []
        for (name, field) in [("tags", "purge.tags"), ("keys", "purge.keys")] {
            guard let listNode = fields[name], let list = reader.stringList(listNode, field: field) else { continue }
            for (offset, (text, itemNode)) in list.enumerated() {
                guard let template = readTemplate(text, node: itemNode, field: "\(field)[\(offset)]",
                    parameters: parameters, rest: rest, reader: &reader)
                else { continue }
                guard checkCredentialsHashed(template, field: "\(field)[\(offset)]", node: itemNode, reader: &reader)
                else { continue }
                if name == "tags" {
                    tags.append(template)
                    lines.purgeTags.append(SourcePosition(itemNode.mark))
                } else {
                    keys.append(template)
                    lines.purgeKeys.append(SourcePosition(itemNode.mark))
                }
            }
        }
        if let routesNode = fields["routes"], let list = reader.stringList(routesNode, field: "purge.routes") {
            routes = list.map(\.0)
            lines.purgeRoutes = list.map { SourcePosition($0.1.mark) }
        }
        let everything = fields["all"].flatMap { reader.bool($0, field: "purge.all") } ?? false
        let listsSomething = ["tags", "keys", "routes"].contains { fields[$0] != nil }
        if !listsSomething && !everything {
            reader.error("purges nothing; list tags, keys or routes to purge (or all: true)", at: node, field: "purge")
            return nil
        }
        return PurgeRule(tags: tags, keys: keys, routes: routes, everything: everything)
    }
}
