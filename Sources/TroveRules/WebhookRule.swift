/// A Shopify webhook endpoint as the rules file declares it: where it listens, the secret signatures are
/// checked with, how long a delivery's id is remembered, and what each topic purges.
///
/// ```yaml
/// webhooks:
///   shopify:
///     path: /webhooks/shopify
///     listener: admin
///     secret: {env: SHOPIFY_WEBHOOK_SECRET}
///     topics:
///       products/update: {tags: ["product:{body.id}"]}
/// ```
public struct ShopifyWebhookRule: Sendable {
    /// Which listener serves the endpoint.
    public enum Listener: String, Sendable {
        /// The admin API's listener (the default): Shopify reaches it through whatever exposes the admin port.
        case admin
        /// The proxy's own listener, ahead of every route.
        case `public`
    }

    /// The request path, e.g. `/webhooks/shopify`.
    public let path: String
    public let listener: Listener
    /// The app's shared secret (`X-Shopify-Hmac-Sha256` is the HMAC-SHA256 of the raw body with it).
    public let secret: ConfigString
    /// Redeliveries with an `X-Shopify-Webhook-Id` seen within this long are acknowledged and ignored.
    public let dedupeWindow: Duration
    /// What each topic purges; topics not listed are acknowledged and purge nothing.
    public let topics: [String: PurgeRule]
    /// The line of `webhooks.shopify`, for diagnostics.
    public let line: Int

    /// What a delivery of `topic` with these JSON body fields purges; nil when the topic purges nothing.
    /// Keys go through `storeKey` like those a write rule renders, so both name the same entries. A field path
    /// with `*` (`{body.line_items.*.product_id}`) renders once per array item.
    public func purges(topic: String, bodyFields: [String: String], rules: RuleSet) -> PurgeSet? {
        guard let rule = topics[topic] else { return nil }
        // Webhook templates read only `{body.…}`; the request part of the context is never consulted.
        guard let target = try? RequestTarget(parsing: "/") else { return nil }
        func rendered(_ template: Template) -> [String] {
            var expansions: [[String: String]] = [bodyFields]
            for placeholder in template.placeholders {
                guard case .bodyField(let name) = placeholder.source else { continue }
                if name.contains("*") {
                    let matches = Self.matching(name, in: bodyFields)
                    expansions = expansions.flatMap { fields in
                        matches.map { value in fields.merging([name: value]) { _, new in new } }
                    }
                } else if bodyFields[name] == nil && !placeholder.hasDefault {
                    // A tag such as `product:` would purge nothing useful: leave the template out (`missingFields`).
                    return []
                }
            }
            return expansions.map { fields in
                template.render(TemplateContext(method: "POST", target: target, pathParameters: [:], headers: [], bodyFields: fields))
            }
        }
        return PurgeSet(
            tags: Self.unique(rule.tags.flatMap(rendered)),
            keys: Self.unique(rule.keys.flatMap(rendered).map(rules.storeKey)),
            routes: rule.routes, everything: rule.everything, soft: rule.soft)
    }

    /// The templates of `topic` that name a body field missing from `bodyFields`, as written.
    public func missingFields(topic: String, bodyFields: [String: String]) -> [String] {
        guard let rule = topics[topic] else { return [] }
        return (rule.tags + rule.keys).flatMap(\.placeholders).compactMap { placeholder in
            guard case .bodyField(let name) = placeholder.source, !placeholder.hasDefault else { return nil }
            let present = name.contains("*") ? !Self.matching(name, in: bodyFields).isEmpty : bodyFields[name] != nil
            return present ? nil : placeholder.written
        }
    }

    /// Values of the fields `pattern` matches, `*` standing for one array index, in index order.
    static func matching(_ pattern: String, in fields: [String: String]) -> [String] {
        let parts = pattern.split(separator: ".", omittingEmptySubsequences: false)
        return fields.compactMap { name, value -> ([Int], String)? in
            let segments = name.split(separator: ".", omittingEmptySubsequences: false)
            guard segments.count == parts.count else { return nil }
            var indexes: [Int] = []
            for (segment, part) in zip(segments, parts) {
                if part == "*" {
                    guard let index = Int(segment) else { return nil }
                    indexes.append(index)
                } else if segment != part {
                    return nil
                }
            }
            return (indexes, value)
        }.sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
    }

    private static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }
}

extension Template.Placeholder {
    /// Has a `default:` filter, so it renders something even when its value is missing.
    var hasDefault: Bool {
        filters.contains { if case .default = $0 { true } else { false } }
    }
}
