private import Crypto
public import TroveHTTP
internal import Foundation
public import TroveRules

/// Decides what one Shopify webhook delivery does: checks its signature, reads its topic and JSON body, and
/// names what its topic purges. Pure: the server claims the delivery id in the store and runs the purge.
///
/// Shopify signs each delivery with `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body under the
/// app's shared secret, and redelivers until it gets a 2xx; so every delivery that is genuine is acknowledged
/// with a 2xx, including topics that purge nothing and redeliveries, and only forgeries and broken requests
/// get a 4xx.
public enum ShopifyWebhook {
    public enum Decision: Sendable, Equatable {
        /// Refuse: 401 for a missing or wrong signature, 400 for a signed request without a topic, 503 when
        /// the secret is not set.
        case reject(status: Int, reason: String)
        /// Genuine, but the topic purges nothing.
        case acknowledge(topic: String, reason: String)
        /// Genuine: purge these (once per delivery id). `skipped` lists placeholders the body lacked.
        case purge(PurgeSet, topic: String, deliveryID: String?, skipped: [String])
    }

    /// - Parameter now: milliseconds since the epoch, to judge `X-Shopify-Triggered-At`; nil: not judged.
    public static func decide(rule: ShopifyWebhookRule, rules: RuleSet, headers: [Header], body: [UInt8], now: Int64? = nil) -> Decision {
        guard let secret = rule.secret.value, !secret.isEmpty else {
            return .reject(status: 503, reason: "the webhook secret is not set (\(rule.secret.display)); nothing was purged")
        }
        guard let signature = headers.value(of: "x-shopify-hmac-sha256") else {
            return .reject(status: 401, reason: "missing X-Shopify-Hmac-Sha256")
        }
        guard signatureMatches(body: body, signature: signature, secret: Array(secret.utf8)) else {
            return .reject(status: 401, reason: "X-Shopify-Hmac-Sha256 does not match the body")
        }
        guard let topic = headers.value(of: "x-shopify-topic"), !topic.isEmpty else {
            return .reject(status: 400, reason: "missing X-Shopify-Topic")
        }
        let deliveryID = headers.value(of: "x-shopify-webhook-id").flatMap { $0.isEmpty ? nil : $0 }
        // The signature covers the body only: topic, delivery id and time can be changed on a captured delivery.
        // The server deduplicates on the signed body itself (so a replay under a new id or topic purges nothing
        // within the dedupe window); a delivery older than that window cannot be told from a replay, so it
        // purges nothing either.
        if let now, rule.dedupeWindow > .zero, let triggered = headers.value(of: "x-shopify-triggered-at"),
            let triggeredAt = Self.milliseconds(iso8601: triggered),
            now.subtractingClamped(triggeredAt) > rule.dedupeWindow.milliseconds
        {
            return .acknowledge(topic: topic, reason: "triggered at \(triggered), longer ago than the dedupe window (\(Units.format(rule.dedupeWindow))): "
                + "a late redelivery cannot be told from a replay of a captured one, so nothing is purged")
        }
        guard rule.topics[topic] != nil else {
            return .acknowledge(topic: topic, reason: "no purge is declared for \(topic)")
        }
        guard let fields = jsonFields(body) else {
            return .reject(status: 400, reason: "the body is not a JSON object")
        }
        guard let purges = rule.purges(topic: topic, bodyFields: fields, rules: rules), !purges.isEmpty else {
            return .acknowledge(topic: topic,
                reason: "the body has none of the fields \(topic) purges by (\(rule.missingFields(topic: topic, bodyFields: fields).joined(separator: ", ")))")
        }
        return .purge(purges, topic: topic, deliveryID: deliveryID, skipped: rule.missingFields(topic: topic, bodyFields: fields))
    }

    /// Compares in constant time (swift-crypto's `isValidAuthenticationCode`), so the time taken does not tell
    /// how much of a forged signature was right.
    static func signatureMatches(body: [UInt8], signature: String, secret: [UInt8]) -> Bool {
        guard let mac = Data(base64Encoded: signature.trimmingCharacters(in: .whitespaces)), mac.count == SHA256.byteCount else {
            return false
        }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: SymmetricKey(data: secret))
    }

    /// Milliseconds since the epoch of an ISO 8601 time (`2026-12-03T10:00:00.123-04:00`, `...Z`); nil when it is
    /// not one.
    static func milliseconds(iso8601 text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) else { return nil }
        return Int64(clamping: (date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The signature Shopify would send for `body` (tests, `trove` tools that replay deliveries).
    public static func signature(body: [UInt8], secret: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))).base64EncodedString()
    }

    /// A JSON object's scalar values by dotted path: `{"id": 7, "product": {"id": 8}, "variants": [{"id": 9}]}`
    /// gives `id` 7, `product.id` 8, `variants.0.id` 9. Nulls are left out; nil when the body is not an object.
    public static func jsonFields(_ body: [UInt8]) -> [String: String]? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object = value else { return nil }
        var fields: [String: String] = [:]
        value.flatten(prefix: nil, into: &fields)
        return fields
    }

    /// Just enough JSON to read fields by path; numbers keep the digits they were written with.
    private enum JSONValue: Decodable {
        case object([String: JSONValue])
        case array([JSONValue])
        case scalar(String)
        case null

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let bool = try? container.decode(Bool.self) {
                self = .scalar(bool ? "true" : "false")
            } else if let integer = try? container.decode(Int64.self) {
                self = .scalar(String(integer))
            } else if let double = try? container.decode(Double.self) {
                self = .scalar(String(double))
            } else if let string = try? container.decode(String.self) {
                self = .scalar(string)
            } else if let array = try? container.decode([JSONValue].self) {
                self = .array(array)
            } else {
                self = .object(try container.decode([String: JSONValue].self))
            }
        }

        func flatten(prefix: String?, into fields: inout [String: String]) {
            func path(_ name: String) -> String { prefix.map { "\($0).\(name)" } ?? name }
            switch self {
            case .object(let members): for (name, member) in members { member.flatten(prefix: path(name), into: &fields) }
            case .array(let items): for (index, item) in items.enumerated() { item.flatten(prefix: path(String(index)), into: &fields) }
            case .scalar(let text): if let prefix { fields[prefix] = text }
            case .null: break
            }
        }
    }
}
