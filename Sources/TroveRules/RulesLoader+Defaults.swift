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
    }

    static func readDefaults(_ node: Node?, origins: [Origin], reader: inout RulesReader) -> Defaults {
        var defaults = Defaults()
        if let node, let fields = reader.mapping(node, path: "defaults", allowed: ["origin", "cache"]) {
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

    static func reportUnknownOrigin(
        _ name: String, at node: Node, field: String, origins: [Origin], reader: inout RulesReader
    ) {
        let hint = Suggestions.closest(to: name, in: origins.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
        reader.error("there is no origin '\(name)'\(hint); origins: \(origins.map(\.name).joined(separator: ", "))",
            at: node, field: field)
    }
}
