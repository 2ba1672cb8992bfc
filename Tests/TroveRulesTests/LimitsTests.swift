import TroveHTTP
import Testing
@testable import TroveRules

/// `limits:`: defaults, every key, and the errors it reports (#12).
@Suite struct LimitsTests {
    static func yaml(_ limits: String) -> String {
        """
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000"}}
        \(limits)
        routes:
          - {name: r, match: GET /r, pass: true}
        """
    }

    static func parse(_ limits: String) throws -> RuleSet {
        try RulesLoader.parse(yaml(limits), file: "limits.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
    }

    static func errors(_ limits: String) -> [String] {
        refusal(yaml(limits), file: "limits.yaml")
    }

    @Test func defaultsAreSafe() throws {
        let limits = try Self.parse("").limits
        #expect(limits == Limits())
        #expect(limits.maxConnections == 10_000)
        #expect(limits.headerTimeout == .seconds(10))
        #expect(limits.bodyTimeout == .seconds(30))
        #expect(limits.keepAliveTimeout == .seconds(60))
        #expect(limits.sendTimeout == .seconds(60))
        #expect(limits.maxRequestBody == 32 << 20)
        #expect(limits.requestBodyBudget == 256 << 20)
        #expect(limits.responseBodyBudget == 1 << 30)
        #expect(limits.maxPipelined == 16)
        #expect(limits.maxPurge == 10_000)
    }

    @Test func everyKey() throws {
        let limits = try Self.parse("""
            limits:
              max_connections: 500
              header_timeout: 5s
              body_timeout: 20s
              keepalive_timeout: 75s
              send_timeout: 30s
              max_request_body: 1MB
              max_response_body: 8MB
              request_body_budget: 64MB
              response_body_budget: 128MB
              max_pipelined: 4
              max_purge: 100
              max_decoded_body: 16MB
            """).limits
        #expect(limits.maxConnections == 500)
        #expect(limits.headerTimeout == .seconds(5))
        #expect(limits.bodyTimeout == .seconds(20))
        #expect(limits.keepAliveTimeout == .seconds(75))
        #expect(limits.sendTimeout == .seconds(30))
        #expect(limits.maxRequestBody == 1 << 20)
        #expect(limits.maxResponseBody == 8 << 20)
        #expect(limits.requestBodyBudget == 64 << 20)
        #expect(limits.responseBodyBudget == 128 << 20)
        #expect(limits.maxPipelined == 4)
        #expect(limits.maxPurge == 100)
        #expect(limits.maxDecodedBody == 16 << 20)
    }

    @Test func errorsNameTheField() {
        #expect(Self.errors("limits: {max_connections: 0}") == [
            "limits.yaml:3:27: error: limits.max_connections: '0' is not a whole number from 1 to 1000000",
        ])
        #expect(Self.errors("limits: {header_timeout: 11m}") == [
            "limits.yaml:3:26: error: limits.header_timeout: '11m' is longer than the maximum of 10m",
        ])
        #expect(Self.errors("limits: {request_body_budget: 1MB}") == [
            "limits.yaml:3:31: error: limits.request_body_budget: request_body_budget (1 MiB) is smaller than one max_request_body (32 MiB); make it at least that",
        ])
        #expect(Self.errors("limits: {keepalive: 5s}") == [
            "limits.yaml:3:10: error: limits.keepalive: unknown key 'keepalive' (write keepalive_timeout); allowed here: "
                + RulesLoader.limitKeys.map(\.name).joined(separator: ", "),
        ])
    }
}
