internal import TroveHTTP
internal import Logging
internal import NIOCore
internal import TroveCore
internal import TroveRules

/// Answers Shopify webhook deliveries, on whichever listener the rules put them: `ShopifyWebhook` decides,
/// then the delivery id is claimed in the store (so a redelivery, to this instance or another on the same
/// Redis, purges nothing) and the topic's purges are made through the `Purger`.
///
/// The feature's other parts: `webhooks:` is read by `RulesLoader+Webhooks.swift` into a `ShopifyWebhookRule`
/// (`WebhookRule.swift`), and `ShopifyWebhook` (TroveCore) checks a delivery and renders its purges. Both
/// listeners ask `rule(on:in:method:uri:)` before anything else.
enum WebhookEndpoint {
    /// The webhook the rules put on `listener` at this method and target, if the request is one.
    static func rule(on listener: ShopifyWebhookRule.Listener, in loaded: RulesState.Loaded, method: String, uri: String) -> ShopifyWebhookRule? {
        guard let rule = loaded.rules.shopifyWebhook, rule.listener == listener, method == "POST" else { return nil }
        let path = uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
        return path == rule.path ? rule : nil
    }

    static func handle(
        _ rule: ShopifyWebhookRule, loaded: RulesState.Loaded, headers: [Header], body: [UInt8], client: String?,
        environment: ProxyEnvironment, stores: LoopStores, answer: @escaping (JSONAnswer) -> Void
    ) {
        let store = stores.store
        let logger = environment.logger
        switch ShopifyWebhook.decide(rule: rule, rules: loaded.rules, headers: headers, body: body, now: environment.clock.nowMilliseconds()) {
        case .reject(let status, let reason):
            // Forged or broken deliveries are worth a warning: someone is calling the endpoint without the secret.
            logger.warning("webhook refused", metadata: [
                "webhook.status": "\(status)", "webhook.reason": "\(reason)", "client.address": "\(client ?? "?")",
            ])
            answer(.error(status, reason))
        case .acknowledge(let topic, let reason):
            logger.info("webhook acknowledged, nothing to purge", metadata: ["webhook.topic": "\(topic)", "webhook.reason": "\(reason)"])
            answer(.json(200, ["topic": topic, "purged": false, "reason": reason]))
        case .purge(let purges, let topic, let deliveryID, let skipped):
            func purge() {
                environment.purger.purge(purges, from: .webhook, context: ["webhook.topic": topic, "webhook.id": deliveryID ?? "-"],
                    settings: loaded.purgeSettings, in: store) { result in
                    let purged: [String: Any] = [
                        "tags": purges.tags, "keys": purges.keys, "routes": purges.routes, "all": purges.everything,
                    ]
                    var json: [String: Any] = ["topic": topic, "purged": purged]
                    if !skipped.isEmpty { json["skipped"] = skipped }
                    switch result {
                    case .applied:
                        answer(.json(200, json))
                    case .queued:
                        // Queued purges are applied when the store is back; Shopify must not redeliver meanwhile.
                        json["queued"] = true
                        answer(.json(202, json))
                    case .refused(let refusal):
                        answer(.json(413, ["topic": topic, "purged": false, "error": refusal]))
                    }
                }
            }
            // Claimed by the signed body, not the delivery id the signature does not cover: a redelivery and a
            // replay of a captured body under a new id or topic are the same delivery.
            guard rule.dedupeWindow > .zero, let signature = headers.value(of: "x-shopify-hmac-sha256") else { return purge() }
            stores.deliveryClaims.claimOnce("shopify:\(signature.trimmingWhitespace())", ttl: rule.dedupeWindow.milliseconds) { result in
                switch result {
                case .success(true), .failure:
                    // Store away: purge anyway. Purging twice costs a few misses; not purging could serve stale data.
                    purge()
                case .success(false):
                    logger.info("webhook redelivery ignored", metadata: ["webhook.topic": "\(topic)", "webhook.id": "\(deliveryID ?? "-")"])
                    answer(.json(200, ["topic": topic, "duplicate": true, "purged": false]))
                }
            }
        }
    }
}
