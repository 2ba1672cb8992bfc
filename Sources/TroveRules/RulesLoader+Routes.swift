internal import TroveHTTP
internal import Yams

/// `routes:`: each route's name, match, origin and action (cache, purge or pass).
extension RulesLoader {

    static let routeKeys = ["name", "match", "origin", "jwt", "cache", "purge", "pass"]

    static func readRoute(
        _ node: Node, index: Int, origins: [Origin], verifiers: [String: TokenVerifier] = [:], jwtNode: Node? = nil, defaults: Defaults,
        reader: inout RulesReader
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
                reader.error("'\(text)' is not a route name; use up to 64 ASCII letters, digits, '-', '_' or '.', starting "
                    + "with a letter or digit (names become metric labels), e.g. events-list", at: nameNode, field: "name")
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

        // The verifier of the request's token: its claims are what `{jwt.NAME}` placeholders read.
        var verifier = defaults.tokenVerifier
        if let nameNode = fields["jwt"] {
            verifier = readVerifierName(nameNode, field: "jwt", verifiers: verifiers, jwtNode: jwtNode, reader: &reader)
        }
        reader.tokenClaims = verifier != nil || fields["jwt"] != nil
        defer { reader.tokenClaims = false }

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
            lines: lines, tokenVerifier: verifier)
    }

    static func readMatch(_ node: Node, reader: inout RulesReader) -> (MethodSet, PathPattern)? {
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

    static func readTemplate(
        _ text: String, node: Node, field: String, parameters: [String], rest: Set<String>, reader: inout RulesReader
    ) -> Template? {
        let parsed = Template.parse(text, pathParameters: parameters, restParameters: rest, tokenClaims: reader.tokenClaims)
        guard !parsed.problems.isEmpty else { return parsed.template }
        for problem in parsed.problems { reader.error(problem, at: node, field: field) }
        // What could be read is checked as a whole template would be, so that fixing one error does not reveal the
        // next: a credential in clear is reported beside an unknown placeholder.
        if let partial = parsed.template { checkCredentialsHashed(partial, field: field, node: node, reader: &reader) }
        return nil
    }
}
