internal import TroveHTTP
internal import Yams

extension RulesLoader {
    static let webhookKeys = ["shopify"]
    static let shopifyWebhookKeys = ["path", "listener", "secret", "dedupe", "topics"]
    /// Paths the admin API answers itself, which a webhook on the admin listener cannot take.
    static let adminPaths: Set<String> = ["/healthz", "/readyz", "/stats", "/metrics", "/explain", "/entry", "/purge", "/purges", "/reload"]

    /// `webhooks:`; nil when absent or wrong (the errors are reported).
    static func readWebhooks(_ node: Node?, routes: [Route], reader: inout RulesReader) -> ShopifyWebhookRule? {
        guard let node, let fields = reader.mapping(node, path: "webhooks", allowed: webhookKeys) else { return nil }
        guard let shopifyNode = fields["shopify"] else { return nil }
        return readShopifyWebhook(shopifyNode, routes: routes, reader: &reader)
    }

    private static func readShopifyWebhook(_ node: Node, routes: [Route], reader: inout RulesReader) -> ShopifyWebhookRule? {
        let base = "webhooks.shopify"
        guard let fields = reader.mapping(node, path: base, allowed: shopifyWebhookKeys, hints: [
            "topic": "write topics: {products/update: {tags: [...]}}", "hmac_secret": "write secret: {env: NAME}",
        ]) else { return nil }

        var listener = ShopifyWebhookRule.Listener.admin
        if let listenerNode = fields["listener"], let text = reader.string(listenerNode, field: "\(base).listener", example: "admin") {
            if let parsed = ShopifyWebhookRule.Listener(rawValue: text) {
                listener = parsed
            } else {
                reader.error("'\(text)' is not admin or public", at: listenerNode, field: "\(base).listener")
            }
        }

        var path = "/webhooks/shopify"
        if let pathNode = fields["path"], let text = reader.string(pathNode, field: "\(base).path", example: "/webhooks/shopify") {
            if !text.hasPrefix("/") || text.contains("?") || text.contains("{") || text.contains(" ") {
                reader.error("'\(text)' is not a plain path; write it like /webhooks/shopify", at: pathNode, field: "\(base).path")
            } else if listener == .admin && adminPaths.contains(text) {
                reader.error("the admin API answers \(text) itself; choose another path, e.g. /webhooks/shopify",
                    at: pathNode, field: "\(base).path")
            } else {
                path = text
            }
        }

        var secret: ConfigString?
        if let secretNode = fields["secret"] {
            secret = reader.configString(secretNode, field: "\(base).secret", secret: true, suggestedVariable: "SHOPIFY_WEBHOOK_SECRET")
        } else {
            reader.error("'secret' is missing: signatures are checked with the app's shared secret; write secret: {env: SHOPIFY_WEBHOOK_SECRET}",
                at: node, field: base)
        }

        var dedupe = Duration.seconds(86_400)
        if let dedupeNode = fields["dedupe"], let parsed = reader.duration(dedupeNode, field: "\(base).dedupe", allowZero: true,
            maximum: .seconds(30 * 86_400))
        {
            dedupe = parsed
        }

        var topics: [String: PurgeRule] = [:]
        if let topicsNode = fields["topics"] {
            if let mapping = topicsNode.mapping {
                if mapping.count == 0 { reader.warning("no topics: every webhook is acknowledged and purges nothing", at: topicsNode, field: "\(base).topics") }
                for (key, value) in mapping {
                    guard let topic = key.scalar?.string, isTopic(topic) else {
                        reader.error("'\(key.scalar?.string ?? reader.describe(key))' is not a Shopify topic; write it like "
                            + "products/update", at: key, field: "\(base).topics")
                        continue
                    }
                    if let rule = readTopicPurge(value, field: "\(base).topics.\(topic)", routes: routes, reader: &reader) {
                        topics[topic] = rule
                    }
                }
            } else {
                reader.error("expected a mapping of topics to purges, e.g. products/update: {tags: [\"product:{body.id}\"]}; found "
                    + reader.describe(topicsNode), at: topicsNode, field: "\(base).topics")
            }
        } else {
            reader.error("'topics' is missing; map each topic to what it purges, e.g. products/update: {tags: [\"product:{body.id}\"]}",
                at: node, field: base)
        }

        guard let secret else { return nil }
        return ShopifyWebhookRule(path: path, listener: listener, secret: secret, dedupeWindow: dedupe, topics: topics,
            line: node.mark?.line ?? 0)
    }

    /// `products/update`, `inventory_levels/update`, `app/uninstalled`.
    static func isTopic(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { part in
            !part.isEmpty && part.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "_" }
        }
    }

    private static func readTopicPurge(_ node: Node, field: String, routes: [Route], reader: inout RulesReader) -> PurgeRule? {
        guard let fields = reader.mapping(node, path: field, allowed: purgeKeys, hints: ["tag": "write tags: [...]", "key": "write keys: [...]"])
        else { return nil }
        var tags: [Template] = []
        var keys: [Template] = []
        for (name, listField) in [("tags", "\(field).tags"), ("keys", "\(field).keys")] {
            guard let listNode = fields[name], let list = reader.stringList(listNode, field: listField) else { continue }
            for (offset, (text, itemNode)) in list.enumerated() {
                do {
                    let template = try Template(parsing: text, pathParameters: [], bodyFields: true)
                    if name == "tags" { tags.append(template) } else { keys.append(template) }
                } catch {
                    reader.error(error.message, at: itemNode, field: "\(listField)[\(offset)]")
                }
            }
        }
        var routeNames: [String] = []
        if let routesNode = fields["routes"], let list = reader.stringList(routesNode, field: "\(field).routes") {
            let cached = routes.filter { $0.cachePolicy != nil }.map(\.name)
            for (offset, (name, itemNode)) in list.enumerated() {
                if cached.contains(name) {
                    routeNames.append(name)
                } else {
                    let hint = Suggestions.closest(to: name, in: cached).map { " (did you mean '\($0)'?)" } ?? ""
                    reader.error("no cached route is named '\(name)'\(hint)", at: itemNode, field: "\(field).routes[\(offset)]")
                }
            }
        }
        let everything = fields["all"].flatMap { reader.bool($0, field: "\(field).all") } ?? false
        if !["tags", "keys", "routes"].contains(where: { fields[$0] != nil }) && !everything {
            reader.error("purges nothing; list tags, keys or routes to purge (or all: true)", at: node, field: field)
            return nil
        }
        let soft = readSoft(fields["soft"], field: "\(field).soft", keys: true, reader: &reader)
        return PurgeRule(tags: tags, keys: keys, routes: routeNames, everything: everything, soft: soft)
    }
}
