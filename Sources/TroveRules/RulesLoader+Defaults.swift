internal import TroveHTTP
internal import Yams

/// `defaults:`: the origin routes use unless they name one, and the cache options routes inherit.
extension RulesLoader {
    struct Defaults {
        var origin: String?
        /// The cache options routes start from.
        var cache = CacheOptions()
        /// Headers that carry credentials (`clients.credentials` and the defaults), lower-cased.
        var credentialHeaders = Credential.defaultHeaders
        /// The token verifier routes use unless they name one (`defaults.jwt`).
        var tokenVerifier: TokenVerifier?
    }

    static func readDefaults(
        _ node: Node?, origins: [Origin], verifiers: [String: TokenVerifier] = [:], jwtNode: Node? = nil, reader: inout RulesReader
    ) -> Defaults {
        var defaults = Defaults()
        if let node, let fields = reader.mapping(node, path: "defaults", allowed: ["origin", "cache", "jwt"]) {
            if let jwtName = fields["jwt"] {
                defaults.tokenVerifier = readVerifierName(jwtName, field: "defaults.jwt", verifiers: verifiers, jwtNode: jwtNode, reader: &reader)
            }
            if let originNode = fields["origin"], let name = reader.string(originNode, field: "defaults.origin") {
                if origins.contains(where: { $0.name == name }) {
                    defaults.origin = name
                } else {
                    reportUnknownOrigin(name, at: originNode, field: "defaults.origin", origins: origins, reader: &reader)
                }
            }
            if let cacheNode = fields["cache"] {
                var hints: [String: String] = [:]
                for option in cacheOptions { if case .routeOnly(let why) = option.scope { hints[option.name] = why } }
                let allowed = cacheOptions.filter { $0.scope == .routeOrDefaults }.map(\.name)
                if let cache = reader.mapping(cacheNode, path: "defaults.cache", allowed: allowed, hints: hints) {
                    _ = readCacheOptions(cache, prefix: "defaults.cache", inDefaults: true, path: PathParameters(),
                        into: &defaults.cache, reader: &reader)
                    if defaults.cache.ttl == .zero, defaults.cache.freshness == .rules, let given = defaults.cache.given["ttl"] {
                        reader.error("must be more than 0s (0s means \"only what the origin declares fresh\", with freshness: origin)",
                            at: given.node, field: given.field)
                    }
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

    /// A route's or the defaults' `jwt: NAME`: the verifier of that name under the top-level `jwt:`.
    static func readVerifierName(
        _ node: Node, field: String, verifiers: [String: TokenVerifier], jwtNode: Node?, reader: inout RulesReader
    ) -> TokenVerifier? {
        guard let name = reader.string(node, field: field, example: "shop-tokens") else { return nil }
        if let verifier = verifiers[name] { return verifier }
        // A verifier that is written but could not be read has its own error already.
        if jwtNode?.mapping?[name] != nil { return nil }
        let hint = Suggestions.closest(to: name, in: Array(verifiers.keys)).map { " (did you mean '\($0)'?)" } ?? ""
        let whereTo = jwtNode == nil ? "the file has no top-level jwt:" : "there is no verifier '\(name)' under jwt:\(hint)"
        reader.error("\(whereTo); define it there, e.g. jwt: {\(name): {algorithm: HS256, secret: {env: JWT_SECRET}}}",
            at: node, field: field)
        return nil
    }

    static func reportUnknownOrigin(
        _ name: String, at node: Node, field: String, origins: [Origin], reader: inout RulesReader
    ) {
        let hint = Suggestions.closest(to: name, in: origins.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
        reader.error("there is no origin '\(name)'\(hint); origins: \(origins.map(\.name).joined(separator: ", "))",
            at: node, field: field)
    }
}
