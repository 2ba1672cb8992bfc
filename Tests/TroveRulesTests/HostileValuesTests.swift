import Testing
@testable import TroveRules

/// Values in a rules file that once crashed `trove check` or a running Trove (#12, finding 1) are errors that
/// name file, line, route and field.
@Suite struct HostileValuesTests {
    static func diagnostics(_ routeOrOrigin: String, origin: String = "") -> [String] {
        let yaml = """
            version: 1
            origins:
              api: {url: "http://127.0.0.1:8000"\(origin)}
            routes:
            \(routeOrOrigin)
            """
        return refusal(yaml, file: "hostile.yaml")
    }

    @Test(arguments: ["99999999999d999999999999h", "999999999999d", "106751991167300d", "9999999999999999999999999999s", "36501d"])
    func durationsPastInt64AreTooLong(text: String) {
        let found = Self.diagnostics("  - {name: r, match: GET /r, cache: {ttl: \(text)}}")
        #expect(found == ["hostile.yaml:5:43: error: route 'r': cache.ttl: '\(text)' is longer than the maximum of 365d"])
    }

    @Test(arguments: ["0.0000000000000000000001/s", "1/d", "0.5/h", "nan/s", "inf/s", "1e400/s", "-1/s"])
    func ratesOutsideTheirRange(text: String) {
        let found = Self.diagnostics("  - {name: r, match: GET /r, pass: true}", origin: ", rate: \"\(text)\"")
        #expect(found.count == 1)
        #expect(found.first?.contains("origins.api.rate: '\(text)' is not a rate from 1/h to 1000000/s") == true, "\(found)")
    }

    @Test func theSlowestRateIsOneAnHour() throws {
        let rules = try RulesLoader.parse("""
            version: 1
            origins:
              api: {url: "http://127.0.0.1:8000", rate: 1/h}
            routes:
              - {name: r, match: GET /r, pass: true}
            """, file: "t.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        #expect(rules.origins.first?.protection.rate == 1.0 / 3600)
    }
}
