internal import TroveHTTP
internal import Foundation
internal import TroveRules
internal import TroveCore

/// The text `trove check` and `trove explain` print, built without printing so that tests can read it.
enum RulesReport {
    struct Outcome {
        var success: Bool
        var output: String
    }

    // MARK: check

    static func check(path: String, strict: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) -> Outcome {
        let rules: RuleSet
        do {
            rules = try RulesLoader.load(path: path, environment: environment)
        } catch {
            return Outcome(success: false, output: rejection(error, path: path))
        }
        var lines: [String] = []
        let warnings = rules.warnings.count
        let status = warnings == 0 ? "valid" : "valid, with \(warnings) warning\(warnings == 1 ? "" : "s")"
        lines.append("\(path): \(status) (rules \(rules.fingerprint))")
        lines.append("")
        lines.append(contentsOf: settings(rules))
        lines.append("")
        lines.append(contentsOf: routesTable(rules))
        if !rules.warnings.isEmpty {
            lines.append("")
            lines.append(warnings == 1 ? "1 warning:" : "\(warnings) warnings:")
            lines.append(contentsOf: rules.warnings.map { "  \($0)" })
        }
        let failed = strict && warnings > 0
        if failed {
            lines.append("")
            lines.append("--strict: warnings count as errors")
        }
        return Outcome(success: !failed, output: lines.joined(separator: "\n"))
    }

    static func rejection(_ error: RulesError, path: String) -> String {
        let errors = error.errors.count
        var lines = ["\(path): invalid, \(errors) error\(errors == 1 ? "" : "s")" + (error.warnings.isEmpty ? "" : " and \(error.warnings.count) warning\(error.warnings.count == 1 ? "" : "s")")]
        lines.append(contentsOf: error.diagnostics.map { "  \($0)" })
        lines.append("")
        lines.append("Every key is described in docs/rules.md; rules/example.yaml shows them all in use.")
        return lines.joined(separator: "\n")
    }

    private static func settings(_ rules: RuleSet) -> [String] {
        var rows: [(String, String)] = []
        rows.append(("listen", rules.listen.description))
        let token: String
        if rules.admin.allowUnauthenticated {
            token = "no token (loopback only)"
        } else if let configured = rules.admin.token {
            token = "token from \(configured.display)"
        } else {
            token = "no token"
        }
        rows.append(("admin", "\(rules.admin.listen), \(token)"))
        if let redis = rules.store.redis {
            rows.append(("store", "\(redis.summary), namespace '\(rules.store.namespace)', command timeout "
                + Units.format(redis.commandTimeout) + (rules.store.local.map { ", " + $0.summary } ?? "")))
        } else {
            rows.append(("store", "memory, \(Units.format(bytes: rules.store.memoryBytes)) (no store.redis)"))
        }
        for origin in rules.origins {
            let isDefault = origin.name == rules.defaultOrigin && rules.origins.count > 1 ? " (default)" : ""
            rows.append(("origin", "\(origin.name)\(isDefault) → \(origin.url), timeout \(Units.format(origin.timeout))"
                + (origin.headers.isEmpty ? "" : ", adds " + origin.headers.map { "\($0.name) (\($0.value.display))" }.joined(separator: ", "))
                + "; " + originLimits(origin.protection)))
        }
        rows.append(("unmatched", rules.unmatched == .pass ? "passed to \(rules.defaultOrigin), not stored" : "answered 404"))
        rows.append(contentsOf: rules.clients.described)
        let limits = rules.limits
        rows.append(("limits", "\(limits.maxConnections) connections; headers within \(Units.format(limits.headerTimeout)), "
            + "body pauses \(Units.format(limits.bodyTimeout)), idle \(Units.format(limits.keepAliveTimeout)), "
            + "unread answers \(Units.format(limits.sendTimeout)); request bodies \(Units.format(bytes: limits.maxRequestBody)) "
            + "each, \(Units.format(bytes: limits.requestBodyBudget)) in all"))
        if let webhook = rules.shopifyWebhook {
            rows.append(("webhook", "shopify: POST \(webhook.path) on the \(webhook.listener == .admin ? "admin" : "proxy") listener, "
                + "secret from \(webhook.secret.display), topics \(webhook.topics.keys.sorted().joined(separator: ", "))"))
        }
        if !rules.warm.isEmpty {
            rows.append(("warm", "\(rules.warm.count) URLs for `trove warm`"))
        }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { "  " + $0.0.padded(to: width) + "  " + $0.1 }
    }

    private static func routesTable(_ rules: RuleSet) -> [String] {
        guard !rules.routes.isEmpty else { return ["  no routes"] }
        var rows: [[String]] = [["#", "ROUTE", "MATCH", "DOES", "FRESH", "STALE", "KEY / PURGES"]]
        for route in rules.routes {
            var row = ["\(route.index)", route.name, route.match]
            switch route.action {
            case .cache(let policy):
                var fresh = policy.statusTTLs.map { "\(Units.format($0.ttl))" + (policy.statusTTLs.count > 1 || $0.status != 200 ? " (\($0.status))" : "") }
                    .joined(separator: ", ")
                if policy.anyStatus, let ttl = policy.statusTTLs.first?.ttl {
                    // statuses: any: one TTL for the heuristically cacheable statuses; listing eleven says nothing more.
                    fresh = "origin (any status), else \(Units.format(ttl)) (200, 404, ...)" + (policy.maxTTL.map { ", ≤ \(Units.format($0))" } ?? "")
                } else if policy.freshness == .origin {
                    fresh = "origin, else " + fresh + (policy.maxTTL.map { ", ≤ \(Units.format($0))" } ?? "")
                }
                var sharing = ""
                if policy.shared { sharing = " [shared]" } else if !policy.keyedCredentials.isEmpty { sharing = " [per user]" }
                row += [policy.shadow == nil && !rules.shadowEverything ? "cache" : "shadow", fresh, policy.stale == .zero ? "-" : Units.format(policy.stale), policy.key.description + sharing]
            case .purge(let rule):
                var targets: [String] = []
                if rule.everything { targets.append("all") }
                if !rule.tags.isEmpty { targets.append("tags " + rule.tags.map(\.description).joined(separator: ", ")) }
                if !rule.keys.isEmpty { targets.append("keys " + rule.keys.map(\.description).joined(separator: ", ")) }
                if !rule.routes.isEmpty { targets.append("routes " + rule.routes.joined(separator: ", ")) }
                if let soft = rule.soft { targets.append(soft.extraStale == 0 ? "soft" : "soft +\(Units.format(.milliseconds(soft.extraStale))) stale") }
                row += ["purge", "-", "-", targets.joined(separator: "; ")]
            case .pass:
                row += ["pass", "-", "-", ""]
            }
            if route.origin != rules.defaultOrigin { row[2] += " → \(route.origin)" }
            rows.append(row)
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            "  " + row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padded(to: widths[column])
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
    }

    // MARK: explain

    static func parseRequest(_ text: String, headers: [String]) throws -> RequestHead {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        let method: String
        let target: String
        switch words.count {
        case 1:
            method = "GET"
            target = String(words[0])
        case 2:
            method = words[0].uppercased()
            target = String(words[1])
        default:
            throw ExplainError(message: "the request must be 'METHOD /path?query', e.g. 'GET /api/v1/events?page=2'; got '\(text)'")
        }
        guard method.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw ExplainError(message: "'\(words[0])' is not an HTTP method")
        }
        let parsedHeaders = headers.compactMap { item -> Header? in
            guard let colon = item.firstIndex(of: ":") else { return nil }
            return Header(String(item[..<colon]).trimmingCharacters(in: .whitespaces),
                String(item[item.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        return RequestHead(method: method, target: target, headers: parsedHeaders, receivedAt: SystemClock().nowMilliseconds())
    }

    struct ExplainError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func explain(
        path: String, request: String, headers: [String], json: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Outcome {
        let rules: RuleSet
        do {
            rules = try RulesLoader.load(path: path, environment: environment)
        } catch {
            return Outcome(success: false, output: rejection(error, path: path))
        }
        let head: RequestHead
        do {
            head = try parseRequest(request, headers: headers)
        } catch {
            return Outcome(success: false, output: "\(error)")
        }
        let explanation = Explanation(plan: rules.plan(for: head), rules: rules, request: head)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(explanation)) ?? Data()
            return Outcome(success: true, output: String(decoding: data, as: UTF8.self))
        }
        return Outcome(success: true, output: explanation.text)
    }

    /// An origin's limits as `trove check` prints them: what Trove sends it at most, and what waits.
    static func originLimits(_ protection: OriginProtection) -> String {
        guard !protection.isUnlimited else { return "no limits (rate, max_concurrency: none)" }
        var parts: [String] = []
        if let rate = protection.rate {
            let (amount, unit) = rate >= 1 ? (rate, "s") : rate * 60 >= 1 ? (rate * 60, "m") : (rate * 3600, "h")
            let text = amount == amount.rounded() ? String(Int(amount)) : String(format: "%.2f", amount)
            parts.append("rate \(text)/\(unit), burst \(protection.burst)")
        }
        if let maxConcurrency = protection.maxConcurrency { parts.append("max_concurrency \(maxConcurrency)") }
        parts.append(protection.queue == 0 ? "queue 0 (past the limits: stale or 503)"
            : "queue \(protection.queue), waiting ≤ \(Units.format(protection.queueTimeout))")
        return parts.joined(separator: ", ")
    }

}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var text = self
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }

}
