import TroveHTTP
import Foundation
import Testing
import TroveTestSupport
import TroveRules
@testable import TroveApp

/// The repository's own rules files, read the way `trove check` and `trove explain` read them.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func rules(_ name: String) -> String { root.appendingPathComponent("rules/\(name)").path }

    static var rulesFiles: [String] {
        let directory = root.appendingPathComponent("rules").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// Every environment variable the example files read, set, so that only the files themselves speak.
    static let environment = [
        "TROVE_ADMIN_TOKEN": "admin-token", "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SHOPIFY_ACCESS_TOKEN": "shpat_test", "API_TOKEN": "api-token", "SHOPIFY_WEBHOOK_SECRET": "webhook-secret",
        "SUPABASE_JWT_SECRET": TestTokens.secret, "JWT_SECRET": TestTokens.secret,
    ]
}

@Suite struct RulesFilesTests {
    /// Every file in rules/ is valid, and free of warnings once its environment variables are set.
    @Test func everyRulesFileChecksCleanly() {
        let files = Repository.rulesFiles
        #expect(files.count >= 5)
        for file in files {
            let outcome = RulesReport.check(path: Repository.rules(file), strict: true, environment: Repository.environment)
            #expect(outcome.success, "\(file):\n\(outcome.output)")
            #expect(outcome.output.contains(": valid (rules "), "\(file):\n\(outcome.output)")
        }
    }

    /// One rules file per seed, plus the annotated example of every key.
    @Test func thereIsARulesFilePerSeed() {
        #expect(Set(Repository.rulesFiles).isSuperset(of: [
            "example.yaml", "shopify-events.yaml", "django-catalog.yaml", "flask-property.yaml", "fastapi-stats.yaml", "fastapi-stats-jwt.yaml",
        ]))
    }

    /// `check` prints the routes table in matching order.
    @Test func checkPrintsTheRoutesTable() {
        let outcome = RulesReport.check(path: Repository.rules("shopify-events.yaml"), strict: false, environment: Repository.environment)
        let lines = outcome.output.split(separator: "\n").map(String.init)
        let header = lines.firstIndex { $0.hasPrefix("  #  ROUTE") }
        #expect(header != nil)
        if let header {
            #expect(lines[header + 1].hasPrefix("  1  events-list"))
            #expect(lines[header + 1].contains("GET /api/v1/events"))
            #expect(lines[header + 1].contains("cache  5m"))
            #expect(lines[header + 4].contains("PUT,PATCH,DELETE /api/v1/events/{id}"))
            #expect(lines[header + 4].contains("purge"))
            #expect(lines[header + 4].contains("tags event:{id}, events:list"))
        }
        #expect(outcome.output.contains("shopify → https://shababco.myshopify.com/admin/api/2024-01, timeout 10s, adds X-Shopify-Access-Token ($SHOPIFY_ACCESS_TOKEN)"))
        // Each origin's limits (#15): what Trove sends it at most.
        #expect(outcome.output.contains("Accept (application/json); rate 2/s, burst 20, "), "\(outcome.output)")
        #expect(!outcome.output.contains("shpat_test"), "secrets must never be printed")
    }

    /// A broken file fails, naming the file and line of each error.
    @Test func brokenFileFailsWithFileAndLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trove-broken-\(UUID().uuidString).yaml").path
        try """
            version: 1
            origins:
              api: {url: "http://127.0.0.1:8000"}
            routes:
              - name: events
                match: GET /api/events
                cache:
                  ttl: 5 minutes
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = RulesReport.check(path: path, strict: false, environment: Repository.environment)
        #expect(!outcome.success)
        #expect(outcome.output.contains("\(path): invalid, 1 error"))
        #expect(outcome.output.contains(
            "\(path):8:12: error: route 'events': cache.ttl: '5 minutes' is not a duration; write it like 30s, 10m, 1h or 1h30m (units: ms, s, m, h, d)"))
    }

    /// Warnings pass unless --strict says otherwise.
    @Test func strictTurnsWarningsIntoFailure() {
        let lenient = RulesReport.check(path: Repository.rules("fastapi-stats.yaml"), strict: false, environment: [:])
        #expect(lenient.success)
        #expect(lenient.output.contains("warning: store.redis: environment variable REDIS_URL is not set"))
        let strict = RulesReport.check(path: Repository.rules("fastapi-stats.yaml"), strict: true, environment: [:])
        #expect(!strict.success)
    }

    /// The request argument reads 'METHOD /target' or just '/target'.
    @Test func requestArgument() throws {
        let head = try RulesReport.parseRequest("put /a?b=1", headers: ["Authorization: Bearer x", "X-A:b"])
        #expect(head.method == "PUT")
        #expect(head.target == "/a?b=1")
        #expect(head.headers.map(\.name) == ["Authorization", "X-A"])
        #expect(head.headers.map(\.value) == ["Bearer x", "b"])
        #expect(try RulesReport.parseRequest("/a", headers: []).method == "GET")
        #expect(throws: (any Error).self) { try RulesReport.parseRequest("GET /a extra", headers: []) }
    }
}
