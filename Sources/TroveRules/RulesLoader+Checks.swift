internal import TroveHTTP
/// Checks that need every route at once: unique names, shadowed routes, what purges can reach, and cache keys
/// two routes could share.
extension RulesLoader {
    static func checkRoutes(_ routes: [Route], reader: inout RulesReader) {
        checkNames(routes, reader: &reader)
        checkShadowing(routes, reader: &reader)
        checkPurgeTargets(routes, reader: &reader)
        checkKeyCollisions(routes, reader: &reader)
    }

    private static func checkNames(_ routes: [Route], reader: inout RulesReader) {
        var first: [String: Route] = [:]
        for route in routes where !route.name.hasPrefix("#") {
            if let earlier = first[route.name] {
                reader.report(.error,
                    "the name is already used by route #\(earlier.index) (line \(earlier.line)); names must be unique "
                        + "because metrics, purges and explanations refer to routes by name",
                    at: route.start, route: route.name, field: "name")
            } else {
                first[route.name] = route
            }
        }
    }

    private static func checkShadowing(_ routes: [Route], reader: inout RulesReader) {
        var index = PathIndex()
        for (position, route) in routes.enumerated() {
            defer { index.insert(route.path, index: position) }
            let covering = index.candidates(covering: route.path).sorted().first { candidate in
                route.methods.isSubset(of: routes[candidate].methods) && routes[candidate].path.covers(route.path)
            }
            guard let covering else { continue }
            let earlier = routes[covering]
            reader.report(.error,
                "can never match: every request it matches (\(route.match)) is taken first by route "
                    + "'\(earlier.name)' (line \(earlier.line): \(earlier.match)); routes match in file order, so move "
                    + "'\(route.name)' above '\(earlier.name)'",
                at: route.lines.match ?? route.start, route: route.name, field: "match")
        }
    }

    private static func checkPurgeTargets(_ routes: [Route], reader: inout RulesReader) {
        let cached = routes.compactMap { route in route.cachePolicy.map { (route, $0) } }
        var tagIndex = PrefixIndex<Template>()
        var keyIndex = PrefixIndex<Template>()
        for (_, policy) in cached {
            for tag in policy.tags { tagIndex.insert(tag.literalPrefix, tag) }
            keyIndex.insert(policy.key.literalPrefix, policy.key)
        }
        for route in routes {
            guard let rule = route.purgeRule else { continue }
            for (offset, name) in rule.routes.enumerated() {
                let position = (route.lines.purgeRoutes[safe: offset] ?? nil) ?? route.start
                guard let target = routes.first(where: { $0.name == name }) else {
                    let hint = Suggestions.closest(to: name, in: cached.map(\.0.name)).map { " (did you mean '\($0)'?)" } ?? ""
                    reader.report(.error,
                        "there is no route '\(name)'\(hint); cached routes: "
                            + (cached.isEmpty ? "none" : cached.map(\.0.name).joined(separator: ", ")),
                        at: position, route: route.name, field: "purge.routes[\(offset)]")
                    continue
                }
                if target.cachePolicy == nil {
                    reader.report(.error,
                        "route '\(name)' does not cache, so there is nothing of it to purge",
                        at: position, route: route.name, field: "purge.routes[\(offset)]")
                }
            }
            for (offset, tag) in rule.tags.enumerated() {
                if !tagIndex.candidates(tag.literalPrefix).contains(where: { tag.canRenderSameText(as: $0) }) {
                    let known = Set(cached.flatMap { $0.1.tags.map(\.description) }).sorted()
                    reader.report(.warning,
                        "purges tag '\(tag)', but no cached route tags its entries with anything it can match, so this "
                            + "purge removes nothing; tags in use: "
                            + (known.isEmpty ? "none" : known.joined(separator: ", ")),
                        at: (route.lines.purgeTags[safe: offset] ?? nil) ?? route.start, route: route.name,
                        field: "purge.tags[\(offset)]")
                }
            }
            for (offset, key) in rule.keys.enumerated() {
                if !keyIndex.candidates(key.literalPrefix).contains(where: { key.canRenderSameText(as: $0) }) {
                    reader.report(.warning,
                        "purges key '\(key)', but no cached route's key template can produce it, so this purge removes "
                            + "nothing; keys in use: " + (cached.isEmpty ? "none" : cached.map { $0.1.key.description }.joined(separator: ", ")),
                        at: (route.lines.purgeKeys[safe: offset] ?? nil) ?? route.start, route: route.name,
                        field: "purge.keys[\(offset)]")
                }
            }
        }
    }

    private static func checkKeyCollisions(_ routes: [Route], reader: inout RulesReader) {
        let cached = routes.compactMap { route in route.cachePolicy.map { (route, $0) } }
        var index = PrefixIndex<Int>()
        for (position, (route, policy)) in cached.enumerated() {
            defer { index.insert(policy.key.literalPrefix, position) }
            for earlierPosition in index.candidates(policy.key.literalPrefix).sorted() {
                let (earlier, earlierPolicy) = cached[earlierPosition]
                // Keys that contain the whole path cannot meet: a path is matched by one route only.
                let usesPath = { (policy: CachePolicy) in policy.key.placeholders.contains { $0.source == .path } }
                if usesPath(policy) && usesPath(earlierPolicy) { continue }
                if policy.key.canRenderSameText(as: earlierPolicy.key) {
                    reader.report(.warning,
                        "its key '\(policy.key)' can render the same text as the key '\(earlierPolicy.key)' of route "
                            + "'\(earlier.name)' (line \(earlier.line)), so the two routes can share entries; give one "
                            + "of them a distinct prefix if they serve different answers",
                        at: route.lines.key ?? route.start, route: route.name, field: "cache.key")
                    break
                }
            }
        }
    }
}

extension Route {
    /// The route's own position, for findings about the route as a whole.
    var start: SourcePosition { lines.name ?? SourcePosition(line: line, column: 0) }
}

extension Array {
    subscript(safe index: Int) -> Element? {
        indices.contains(index) ? self[index] : nil
    }
}
