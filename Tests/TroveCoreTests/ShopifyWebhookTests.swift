import TroveHTTP
import Testing
import TroveCore
import TroveRules

/// `ShopifyWebhook.decide`: signatures, topics, bodies.
@Suite struct ShopifyWebhookTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000"}}
        routes:
          - {name: event, match: "GET /api/v1/events/{id}", cache: {key: "events:full:{id}", ttl: 10m, tags: ["event:{id}"]}}
        webhooks:
          shopify:
            secret: {env: SHOPIFY_WEBHOOK_SECRET}
            topics:
              products/update: {tags: ["event:{body.id}"]}
        """, file: "t.yaml", environment: ["TROVE_ADMIN_TOKEN": "t", "SHOPIFY_WEBHOOK_SECRET": "secret"])

    static func decide(_ body: String, topic: String = "products/update", signature: String? = nil, id: String? = "w-1") -> ShopifyWebhook.Decision {
        var headers = [Header("X-Shopify-Topic", topic)]
        if let id { headers.append(Header("x-shopify-webhook-id", id)) }
        headers.append(Header("X-Shopify-Hmac-SHA256", signature ?? ShopifyWebhook.signature(body: Array(body.utf8), secret: "secret")))
        return ShopifyWebhook.decide(rule: rules.shopifyWebhook!, rules: rules, headers: headers, body: Array(body.utf8))
    }

    /// HMAC-SHA256 of the raw body with the secret, base64: the value openssl gives for the same inputs.
    @Test func signatureIsBase64HMACOfTheRawBody() {
        // Computed independently: printf '{"id":1}' | openssl dgst -sha256 -hmac secret -binary | base64
        #expect(ShopifyWebhook.signature(body: Array(#"{"id":1}"#.utf8), secret: "secret") == "A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc=")
    }

    /// A delivery triggered longer ago than the dedupe window purges nothing: its signature may have been claimed
    /// and forgotten already, so a replay of a captured body cannot be told from a late redelivery (#12).
    @Test func oldDeliveriesPurgeNothing() {
        let body = #"{"id": 42}"#
        func decide(triggeredAt: String?) -> ShopifyWebhook.Decision {
            var headers = [Header("X-Shopify-Topic", "products/update"),
                Header("X-Shopify-Hmac-Sha256", ShopifyWebhook.signature(body: Array(body.utf8), secret: "secret"))]
            if let triggeredAt { headers.append(Header("X-Shopify-Triggered-At", triggeredAt)) }
            // 2026-12-03T12:00:00Z
            return ShopifyWebhook.decide(rule: Self.rules.shopifyWebhook!, rules: Self.rules, headers: headers, body: Array(body.utf8),
                now: 1_796_299_200_000)
        }
        let purge = ShopifyWebhook.Decision.purge(PurgeSet(tags: ["event:42"]), topic: "products/update", deliveryID: nil, skipped: [])
        #expect(decide(triggeredAt: "2026-12-03T11:00:00.123-00:00") == purge)
        #expect(decide(triggeredAt: "2026-12-02T13:00:00Z") == purge, "23 hours ago, within the 24h window")
        #expect(decide(triggeredAt: nil) == purge)
        #expect(decide(triggeredAt: "not a time") == purge)
        guard case .acknowledge(_, let reason) = decide(triggeredAt: "2026-12-01T12:00:00Z") else {
            Issue.record("a delivery older than the window purged"); return
        }
        #expect(reason.contains("longer ago than the dedupe window (1d)"))
    }

    @Test func genuineDeliveryPurgesItsTopic() {
        #expect(Self.decide(#"{"id": 42}"#) == .purge(PurgeSet(tags: ["event:42"]), topic: "products/update", deliveryID: "w-1", skipped: []))
        #expect(Self.decide(#"{"id": 42}"#, id: nil) == .purge(PurgeSet(tags: ["event:42"]), topic: "products/update", deliveryID: nil, skipped: []))
    }

    @Test func forgeriesAndBrokenRequestsAreRefused() {
        #expect(Self.decide(#"{"id": 42}"#, signature: "bm9wZQ==") == .reject(status: 401, reason: "X-Shopify-Hmac-Sha256 does not match the body"))
        #expect(Self.decide(#"{"id": 42}"#, signature: "not base64!") == .reject(status: 401, reason: "X-Shopify-Hmac-Sha256 does not match the body"))
        let other = ShopifyWebhook.signature(body: Array(#"{"id": 43}"#.utf8), secret: "secret")
        #expect(Self.decide(#"{"id": 42}"#, signature: other) == .reject(status: 401, reason: "X-Shopify-Hmac-Sha256 does not match the body"))
        let unsigned = ShopifyWebhook.decide(rule: Self.rules.shopifyWebhook!, rules: Self.rules, headers: [Header("X-Shopify-Topic", "products/update")], body: [])
        #expect(unsigned == .reject(status: 401, reason: "missing X-Shopify-Hmac-Sha256"))
        #expect(Self.decide("[1, 2]") == .reject(status: 400, reason: "the body is not a JSON object"))
    }

    @Test func unmappedTopicsAndMissingFieldsAreAcknowledged() {
        guard case .acknowledge(let topic, _) = Self.decide("{}", topic: "orders/create") else { Issue.record("not acknowledged"); return }
        #expect(topic == "orders/create")
        guard case .acknowledge(_, let reason) = Self.decide(#"{"title": "x"}"#) else { Issue.record("not acknowledged"); return }
        #expect(reason.contains("{body.id}"))
    }

    @Test func jsonFieldsByPath() {
        let fields = ShopifyWebhook.jsonFields(Array(#"{"id": 632910392, "price": 19.5, "ok": true, "none": null, "product": {"id": 8}, "variants": [{"id": 9}, {"id": 10}], "title": "Jazz \"night\""}"#.utf8))
        #expect(fields == [
            "id": "632910392", "price": "19.5", "ok": "true", "product.id": "8", "variants.0.id": "9", "variants.1.id": "10",
            "title": "Jazz \"night\"",
        ])
        #expect(ShopifyWebhook.jsonFields(Array("nope".utf8)) == nil)
    }
}
