import TroveHTTP
import ArgumentParser
import Foundation
import Logging
import Testing
import TroveApp
import TroveCore
import TroveDemoOrigin
import TroveFixtures
import TroveRules
import TroveServer
import TroveTestSupport

/// Operations: `/metrics`, Shopify webhooks (signature, topics, redeliveries across instances), `trove warm`,
/// and the access log, each against a real origin (and a real Redis where instances share it).
@Suite(.serialized) struct OperationsTests {
    static let secret = "shpss_test_secret"

    /// The metrics of a Prometheus text exposition, by name with labels, e.g. `trove_purges_total{source="admin"}`.
    static func metrics(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    /// `/metrics` needs the token, has per-route counters by outcome that move as requests are answered, and
    /// counts stored entries and bytes, origin requests, store lookups and purges by source.
    @Test func metricsMoveWithRequests() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove()
        #expect(try await scenario.admin(trove, "/metrics", token: nil).status == 401)

        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT")
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT")
        #expect(try await scenario.request(trove, "POST", "/api/v1/events", body: "{}").xCache == "PASS")
        #expect(try await scenario.admin(trove, "POST", "/purge", json: "{\"tags\": [\"event:1\"]}").status == 200)

        let answer = try await scenario.admin(trove, "/metrics")
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let metrics = Self.metrics(answer.body)
        #expect(metrics[#"trove_requests_total{route="event",outcome="miss"}"#] == 1)
        #expect(metrics[#"trove_requests_total{route="event",outcome="hit"}"#] == 2)
        #expect(metrics[#"trove_requests_total{route="event-create",outcome="pass"}"#] == 1)
        #expect(metrics[#"trove_entries_stored_total{route="event"}"#] == 1)
        #expect((metrics[#"trove_stored_bytes_total{route="event"}"#] ?? 0) > 100)
        #expect(metrics[#"trove_origin_duration_seconds_count{origin="demo"}"#] == 2)
        #expect(metrics[#"trove_store_duration_seconds_count{store="redis",op="lookup"}"#] == 3)
        #expect(metrics[#"trove_purges_total{source="admin",mode="hard"}"#] == 1)
        #expect(metrics[#"trove_purges_total{source="write_rule",mode="hard"}"#] == 1)
        // Labels are route names from the rules, never paths: the event id is nowhere in the exposition.
        #expect(!answer.body.contains("/api/v1/events/1"))

        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        let after = Self.metrics(try await scenario.admin(trove, "/metrics").body)
        #expect(after[#"trove_requests_total{route="event",outcome="miss"}"#] == 2)
        await scenario.stop(trove)
    }

    /// Rules with a Shopify webhook on `listener`.
    static func webhookRules(_ scenario: Scenario, listener: String) throws -> RuleSet {
        let text = scenario.yaml() + """

            webhooks:
              shopify:
                listener: \(listener)
                secret: {env: SHOPIFY_WEBHOOK_SECRET}
                topics:
                  products/update: {tags: ["event:{body.id}"]}
                  orders/create: {tags: ["event:{body.line_items.*.product_id}"]}
            """
        return try RulesLoader.parse(text, file: "webhooks.yaml",
            environment: ["TROVE_ADMIN_TOKEN": Scenario.token, "SHOPIFY_WEBHOOK_SECRET": secret])
    }

    static func delivery(topic: String, id: String, body: String, secret: String = OperationsTests.secret) -> [Header] {
        [
            Header("Content-Type", "application/json"), Header("X-Shopify-Topic", topic), Header("X-Shopify-Webhook-Id", id),
            Header("X-Shopify-Hmac-Sha256", ShopifyWebhook.signature(body: Array(body.utf8), secret: secret)),
            Header("X-Shopify-Shop-Domain", "shababco.myshopify.com"),
        ]
    }

    /// A correctly signed webhook purges what its topic maps to; a wrongly signed one gets 401 and purges nothing;
    /// a redelivery (same webhook id) to another instance on the same Redis purges nothing.
    @Test func webhookPurgesOnceAcrossInstances() async throws {
        let scenario = try await Scenario(redis: true)
        let rules = try Self.webhookRules(scenario, listener: "admin")
        let first = try await scenario.trove(rules)
        let second = try await scenario.trove(rules)
        func warm() async throws {
            for path in ["/api/v1/events/1", "/api/v1/events/2", "/api/v1/events/3"] {
                _ = try await scenario.request(first, path)
                #expect(try await scenario.request(first, path).xCache == "HIT")
            }
        }
        func state() async throws -> [String] {
            var result: [String] = []
            for path in ["/api/v1/events/1", "/api/v1/events/2", "/api/v1/events/3"] {
                result.append(try await scenario.request(first, path).xCache ?? "?")
            }
            return result
        }
        try await warm()
        let body = #"{"id": 2, "title": "Jazz night", "variants": [{"id": 77}]}"#

        var forged = Self.delivery(topic: "products/update", id: "d-1", body: body, secret: "not-the-secret")
        var answer = try await scenario.request(first, "POST", "/webhooks/shopify", headers: forged, body: body, admin: true)
        #expect(answer.status == 401)
        forged = Self.delivery(topic: "products/update", id: "d-1", body: body).filter { $0.name != "X-Shopify-Hmac-Sha256" }
        #expect(try await scenario.request(first, "POST", "/webhooks/shopify", headers: forged, body: body, admin: true).status == 401)
        // The body changed after signing: the signature no longer matches.
        answer = try await scenario.request(first, "POST", "/webhooks/shopify", headers: Self.delivery(topic: "products/update", id: "d-1", body: body),
            body: body.replacingOccurrences(of: "2", with: "3"), admin: true)
        #expect(answer.status == 401)
        #expect(try await state() == ["HIT", "HIT", "HIT"], "refused webhooks purge nothing")

        answer = try await scenario.request(first, "POST", "/webhooks/shopify", headers: Self.delivery(topic: "products/update", id: "d-1", body: body),
            body: body, admin: true)
        #expect(answer.status == 200)
        #expect((try answer.json()["purged"] as? [String: Any])?["tags"] as? [String] == ["event:2"])
        #expect(try await state() == ["HIT", "MISS", "HIT"])

        // Shopify redelivers the same webhook (to whichever instance its load balancer picks): purged once only.
        try await warm()
        answer = try await scenario.request(second, "POST", "/webhooks/shopify", headers: Self.delivery(topic: "products/update", id: "d-1", body: body),
            body: body, admin: true)
        #expect(answer.status == 200)
        #expect(try answer.json()["duplicate"] as? Bool == true)
        #expect(try await state() == ["HIT", "HIT", "HIT"])
        // The signature covers the body only: the captured body replayed under a new delivery id, or another topic,
        // is the same delivery and purges nothing (#12, finding 12).
        for (topic, id) in [("products/update", "d-forged"), ("orders/create", "d-other")] {
            answer = try await scenario.request(first, "POST", "/webhooks/shopify", headers: Self.delivery(topic: topic, id: id, body: body),
                body: body, admin: true)
            let json = try answer.json()
            #expect(json["duplicate"] as? Bool == true || json["purged"] as? Bool == false, "\(topic) \(id): \(json)")
        }
        #expect(try await state() == ["HIT", "HIT", "HIT"])

        // One order purges every product it sold; a topic the rules do not map is acknowledged and purges nothing.
        let order = #"{"id": 900, "line_items": [{"product_id": 1, "quantity": 2}, {"product_id": 3, "quantity": 1}]}"#
        answer = try await scenario.request(second, "POST", "/webhooks/shopify", headers: Self.delivery(topic: "orders/create", id: "d-2", body: order),
            body: order, admin: true)
        #expect(answer.status == 200)
        #expect((try answer.json()["purged"] as? [String: Any])?["tags"] as? [String] == ["event:1", "event:3"])
        #expect(try await state() == ["MISS", "HIT", "MISS"])
        try await warm()
        answer = try await scenario.request(first, "POST", "/webhooks/shopify", headers: Self.delivery(topic: "customers/create", id: "d-3", body: "{}"),
            body: "{}", admin: true)
        #expect(answer.status == 200)
        #expect(try answer.json()["purged"] as? Bool == false)
        #expect(try await state() == ["HIT", "HIT", "HIT"])

        let metrics = Self.metrics(try await scenario.admin(second, "/metrics").body)
        #expect(metrics[#"trove_purges_total{source="webhook",mode="hard"}"#] == 1)
        await scenario.stop(first, second)
    }

    /// On the public listener the webhook is answered by Trove ahead of every route (the routes pass `/**`).
    @Test func webhookOnThePublicListener() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(try Self.webhookRules(scenario, listener: "public"))
        _ = try await scenario.request(trove, "/api/v1/events/5")
        #expect(try await scenario.request(trove, "/api/v1/events/5").xCache == "HIT")
        let body = #"{"id": 5}"#
        let refused = try await scenario.request(trove, "POST", "/webhooks/shopify",
            headers: Self.delivery(topic: "products/update", id: "p-1", body: body, secret: "wrong"), body: body)
        #expect(refused.status == 401)
        #expect(try await scenario.request(trove, "/api/v1/events/5").xCache == "HIT")
        let accepted = try await scenario.request(trove, "POST", "/webhooks/shopify",
            headers: Self.delivery(topic: "products/update", id: "p-1", body: body), body: body)
        #expect(accepted.status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/5").xCache == "MISS")
        #expect(scenario.origin.stats.count(path: "/webhooks/shopify") == 0, "the webhook never reaches the origin")
        await scenario.stop(trove)
    }

    /// `trove warm` stores every listed URL, reports what it did, and never makes a 2 requests/s origin answer 429.
    /// The Trove it goes through has no limit of its own on that origin here, so only warm's pacing (from the
    /// `rate` in the rules file it reads) stands between 8 concurrent requests and the origin's 429s. The origin
    /// lets a burst of 6 through where warm keeps to 2: on a loaded machine paced requests can start late and then
    /// close together (this test failed so in CI with a burst of 2, and locally with 4), while 8 unpaced ones would
    /// still meet two 429s.
    @Test func warmStoresEveryURLWithinTheOriginsLimit() async throws {
        let scenario = try await Scenario(redis: true, origin: .init(rateLimit: (perSecond: 2, burst: 6)))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("trove-warm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let rulesPath = directory.appendingPathComponent("rules.yaml").path
        try scenario.yaml(origin: "rate: 2/s, burst: 2").write(toFile: rulesPath, atomically: true, encoding: .utf8)
        let trove = try await scenario.trove()
        let targets = (1...6).map { "/api/v1/events/\($0)" } + ["/api/v1/events?page=2", "/health"]
        let urlsPath = directory.appendingPathComponent("warm.txt").path
        try (["# after a deploy"] + targets.map { "GET \($0)" }).joined(separator: "\n").write(toFile: urlsPath, atomically: true, encoding: .utf8)

        var command = try #require(try TroveCommand.parseAsRoot(["warm", "-c", rulesPath, "--urls", urlsPath, "--proxy",
            "http://127.0.0.1:\(trove.publicPort)", "--concurrency", "8"]) as? any AsyncParsableCommand)
        try await command.run()

        let stats = scenario.origin.stats.snapshot
        #expect(stats.byStatus["429"] == nil, "the origin never answered 429: \(stats.byStatus)")
        for target in targets.dropLast() {
            #expect(scenario.originCount(target) == 1, "\(target) was fetched once")
            #expect(try await scenario.request(trove, target).xCache == "HIT", "\(target) is stored")
        }
        #expect(scenario.originCount("/health") == 0, "a URL no cacheable route matches is not sent")
        await scenario.stop(trove)
    }

    /// With an access log, every answered request leaves one JSON line with its route, status, cache outcome,
    /// a hash of its key and its times; the key itself is not in the log.
    @Test func accessLogLines() async throws {
        let scenario = try await Scenario(redis: false)
        let (trove, sink, path) = try await scenario.troveWithAccessLog(try scenario.rules())
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await scenario.request(trove, "/api/v1/events/1")
        _ = try await scenario.request(trove, "/api/v1/events/1")
        _ = try await scenario.request(trove, "/health")
        var lines: [[String: Any]] = []
        try await eventually("three access-log lines are written") {
            sink.flush()
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return lines.count == 3
        }
        #expect(lines.map { $0["cache"] as? String } == ["miss", "hit", "pass"])
        #expect(lines.map { $0["route"] as? String } == ["event", "event", "everything-else"])
        #expect(lines.map { $0["status"] as? Int } == [200, 200, 404])
        #expect(lines[0]["origin_ms"] != nil && lines[1]["origin_ms"] == nil, "only the miss went to the origin")
        #expect((lines[0]["key_hash"] as? String)?.count == 16 && lines[0]["key_hash"] as? String == lines[1]["key_hash"] as? String)
        #expect(lines.allSatisfy { $0["total_ms"] is Double && $0["path"] is String && $0["ts"] is String })
        var text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("events:full:1"), "keys are hashed in the log")

        // A purge is a line too, whoever made it: here the admin API's, soft, naming a tag and a key.
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["events"], "keys": ["events:full:1"], "soft": true}"#).status == 200)
        try await eventually("the purge's line is written") {
            sink.flush()
            text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return lines.count == 4
        }
        let purge = lines[3]
        #expect(purge["method"] as? String == "PURGE" && purge["path"] as? String == "admin" && purge["status"] as? Int == 200)
        #expect(purge["cache"] as? String == "soft" && purge["purge_tags"] as? String == "events" && purge["message"] as? String == "purge")
        #expect(purge["purge_keys"] as? String == lines[0]["key_hash"] as? String, "keys hashed as a request's are")
        #expect(!text.contains("events:full:1"))
        await scenario.stop(trove)
        sink.close()
    }
}
