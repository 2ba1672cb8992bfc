import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveRules
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// Trove in front of a TLS Redis (`rediss://`, `store.tls`), with certificates the test makes: hits and purges
/// work over TLS, with a client certificate too; a wrong CA is refused with the reason in `/readyz`, and requests
/// go to the origin meanwhile.
@Suite(.serialized) struct TLSStoreTests {
    private func trove(_ scenario: Scenario, _ server: TLSRedisServer, tls: String) async throws -> TroveApplication {
        let store = "store: {redis: \"\(server.url())\", namespace: tls, command_timeout: 500ms, tls: \(tls)}"
        let rules = try RulesLoader.parse(scenario.yaml(settings: store), file: "tls.yaml", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        return try await scenario.trove(rules)
    }

    @Test(arguments: [false, true])
    func hitsAndPurgesOverTLS(clientCertificate: Bool) async throws {
        let server = try TLSRedisServer(clientCertificates: clientCertificate)
        let scenario = try await Scenario(redis: false)
        let client = clientCertificate ? ", cert_file: \(server.path("client.pem")), key_file: \(server.path("client.key"))" : ""
        let trove = try await trove(scenario, server, tls: "{ca_file: \(server.path("ca.pem")), server_name: localhost\(client)}")
        let ready = try await scenario.admin(trove, "/readyz")
        #expect(ready.status == 200, "\(ready.body)")
        #expect(ready.body.contains("rediss://"))
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        try await eventually("a hit over TLS") { try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT" }
        #expect(try server.redis.command(["EXISTS", "tls:e:{events:full:1}"]) == "1")
        #expect(try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:1"]}"#).status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        await scenario.stop(trove)
    }

    @Test func aWrongCAIsRefusedAndRequestsGoToTheOrigin() async throws {
        let server = try TLSRedisServer()
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, server, tls: "{ca_file: \(server.path("other-ca.pem")), server_name: localhost}")
        // Degraded, not down: Trove answers from the origin without the store (`docs/operations.md`).
        try await eventually("readyz says why") {
            let ready = try await scenario.admin(trove, "/readyz")
            return ready.body.contains("TLS handshake with Redis failed") && ready.body.contains("CERTIFICATE_VERIFY_FAILED")
                && ready.body.contains(#""status" : "degraded""#)
        }
        for _ in 0..<3 {
            let answer = try await scenario.request(trove, "/api/v1/events/2")
            #expect(answer.status == 200)
            #expect(answer.cacheStatus?.contains("detail=STORE-UNAVAILABLE") == true, "\(answer.cacheStatus ?? "")")
        }
        #expect(scenario.origin.stats.count(path: "/api/v1/events/2") == 3)
        await scenario.stop(trove)
    }
}
