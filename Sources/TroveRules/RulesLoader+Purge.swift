internal import TroveHTTP
internal import Yams

/// A write route's `purge:`: the tags, keys and routes its successful answers invalidate.
extension RulesLoader {
    static let purgeKeys = ["tags", "keys", "routes", "all", "soft"]

    /// `soft: true`, `soft: false`, or `soft: 30s` (soft, with that much stale window past each route's own).
    static func readSoft(_ node: Node?, field: String, keys: Bool, reader: inout RulesReader) -> SoftPurge? {
        guard let node else { return nil }
        switch node.scalar?.string {
        case "true": return SoftPurge(keys: keys)
        case "false": return nil
        case let text? where Units.parseDuration(text) == nil:
            reader.error("'\(text)' is not true, false or a duration; write soft: true, or soft: 1m for a minute more of stale window",
                at: node, field: field)
            return nil
        default:
            guard let window = reader.duration(node, field: field, allowZero: true, maximum: .seconds(7 * 86_400)) else { return nil }
            return SoftPurge(extraStale: window.milliseconds, keys: keys)
        }
    }

    static func readPurge(
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
        let soft = readSoft(fields["soft"], field: "purge.soft", keys: false, reader: &reader)
        return PurgeRule(tags: tags, keys: keys, routes: routes, everything: everything, soft: soft)
    }
}
