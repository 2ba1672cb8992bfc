import TroveHTTP
import Testing
@testable import TroveRules

/// A file with a cached route and `webhooks:` starting on line 11.
private func file(_ webhooks: String, warm: String = "") -> String {
    """
    version: 1
    origins:
      api: {url: "http://127.0.0.1:8000"}
    routes:
      - name: event
        match: GET /api/v1/events/{id}
        cache: {key: "events:full:{id}", ttl: 10m, tags: ["event:{id}"]}
      - name: everything-else
        match: ANY /**
        pass: true
    \(webhooks)
    \(warm)
    """
}

private let environment = ["TROVE_ADMIN_TOKEN": "t", "SHOPIFY_WEBHOOK_SECRET": "s"]

private func errors(_ text: String) -> [String] {
    do {
        _ = try RulesLoader.parse(text, file: "test.yaml", environment: environment)
        Issue.record("the file was accepted")
        return []
    } catch {
        return error.diagnostics.filter { $0.severity == .error }.map(\.description)
    }
}

@Suite struct WebhookRulesTests {
    /// A complete declaration loads with its defaults, and each topic renders its tags and keys from the body.
    @Test func loadsAndRendersFromTheBody() throws {
        let rules = try RulesLoader.parse(file("""
            webhooks:
              shopify:
                secret: {env: SHOPIFY_WEBHOOK_SECRET}
                topics:
                  products/update: {tags: ["event:{body.id}", "events"], keys: ["events:full:{body.id}"]}
                  orders/create: {tags: ["event:{body.line_items.*.product_id}"]}
                  app/uninstalled: {all: true}
                  inventory_levels/update: {routes: [event], soft: 2m}
            """, warm: "warm: [/api/v1/events/1, \"/api/v1/events?page=2\"]"), file: "test.yaml", environment: environment)
        let webhook = try #require(rules.shopifyWebhook)
        #expect(webhook.path == "/webhooks/shopify")
        #expect(webhook.listener == .admin)
        #expect(webhook.secret.value == "s")
        #expect(webhook.dedupeWindow == .seconds(86_400))
        #expect(rules.warm == ["/api/v1/events/1", "/api/v1/events?page=2"])

        let update = webhook.purges(topic: "products/update", bodyFields: ["id": "42", "title": "x"], rules: rules)
        #expect(update == PurgeSet(tags: ["event:42", "events"], keys: ["events:full:42"]))
        // A body value is escaped exactly as a path value is, so both name the same tag.
        let plan = rules.plan(for: RequestHead(method: "GET", target: "/api/v1/events/a:b"))
        guard case .cache(let target) = plan.decision else { Issue.record("not cached"); return }
        #expect(webhook.purges(topic: "products/update", bodyFields: ["id": "a:b"], rules: rules)?.tags.first == target.tags.first)

        let order = webhook.purges(topic: "orders/create", bodyFields: [
            "line_items.1.product_id": "8", "line_items.0.product_id": "7", "line_items.2.product_id": "7", "id": "1",
        ], rules: rules)
        #expect(order?.tags == ["event:7", "event:8"])
        #expect(webhook.purges(topic: "app/uninstalled", bodyFields: [:], rules: rules)?.everything == true)
        #expect(webhook.purges(topic: "inventory_levels/update", bodyFields: [:], rules: rules)?.routes == ["event"])
        // A soft topic softens its keys too (nobody wrote through Trove who must read the new version back).
        #expect(webhook.purges(topic: "inventory_levels/update", bodyFields: [:], rules: rules)?.soft == SoftPurge(extraStale: 120_000, keys: true))
        #expect(update?.soft == nil)
        #expect(webhook.purges(topic: "customers/create", bodyFields: ["id": "1"], rules: rules) == nil)
        // A field the body lacks leaves its template out rather than purging `event:`.
        #expect(webhook.purges(topic: "products/update", bodyFields: ["title": "x"], rules: rules) == PurgeSet(tags: ["events"]))
        #expect(webhook.missingFields(topic: "products/update", bodyFields: ["title": "x"]) == ["{body.id}", "{body.id}"])
    }

    /// Each mistake is reported with its line and field.
    @Test func mistakesAreReported() {
        #expect(errors(file("""
            webhooks:
              shopify:
                topics: {products/update: {tags: ["event:{body.id}"]}}
            """)) == [
                "test.yaml:13:5: error: webhooks.shopify: 'secret' is missing: signatures are checked with the app's shared secret; write secret: {env: SHOPIFY_WEBHOOK_SECRET}",
            ])
        let literal = errors(file("""
            webhooks:
              shopify:
                secret: hunter2
                topics: {products/update: {tags: ["event:{body.id}"]}}
            """))
        #expect(literal.count == 1 && literal[0].contains("webhooks.shopify.secret: looks like a secret"))
        let found = errors(file("""
            webhooks:
              shopify:
                secret: {env: SHOPIFY_WEBHOOK_SECRET}
                listener: internal
                path: /purge
                dedupe: 10
                topics:
                  Products/Update: {tags: [x]}
                  products/update: {tags: ["event:{id}"]}
                  products/delete: {routes: [evnt]}
                  orders/create: {}
            """))
        #expect(found.contains { $0.hasPrefix("test.yaml:14:15: error: webhooks.shopify.listener: 'internal' is not admin or public") })
        #expect(found.contains { $0.contains("'Products/Update' is not a Shopify topic") })
        #expect(found.contains { $0.contains("webhooks.shopify.topics.products/update.tags[0]: unknown placeholder '{id}': a webhook purge reads the webhook's JSON body") })
        #expect(found.contains { $0.contains("webhooks.shopify.topics.products/delete.routes[0]: no cached route is named 'evnt' (did you mean 'event'?)") })
        #expect(found.contains { $0.contains("webhooks.shopify.topics.orders/create: purges nothing") })
        #expect(found.contains { $0.contains("webhooks.shopify.dedupe: '10' has no unit") })
        #expect(found.contains { $0.contains("webhooks.shopify.path: the admin API answers /purge itself") })
        #expect(found.count == 7, "\(found)")
        // On the admin listener a webhook cannot take a path the admin API answers itself.
        let clash = errors(file("""
            webhooks:
              shopify:
                secret: {env: SHOPIFY_WEBHOOK_SECRET}
                path: /purge
                topics: {products/update: {tags: ["event:{body.id}"]}}
            """))
        #expect(clash.count == 1 && clash[0].contains("webhooks.shopify.path: the admin API answers /purge itself"))
        let warm = errors(file("", warm: "warm: [events, /ok]"))
        #expect(warm == ["test.yaml:12:8: error: warm[0]: 'events' is not a request target; write it like /api/v1/events?page=1"])
    }

    /// Without the secret in the environment the file loads with a warning, and `trove serve` refuses to start.
    @Test func unsetSecretIsAMissingVariable() throws {
        let rules = try RulesLoader.parse(file("""
            webhooks:
              shopify:
                secret: {env: SHOPIFY_WEBHOOK_SECRET}
                topics: {products/update: {tags: ["event:{body.id}"]}}
            """), file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(rules.missingEnvironment == ["SHOPIFY_WEBHOOK_SECRET"])
    }
}
