import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TroveCore
import TroveRules
@testable import TroveServer

/// The admin API's table: what it finds, and the 404 and 405 answers derived from it.
@Suite struct AdminRoutesTests {
    private func json(_ answer: JSONAnswer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any])
    }

    @Test func everyPathOnceWithItsMethod() {
        let routes = AdminRoutes.table.map { "\($0.method) \($0.path)" }
        #expect(Set(routes).count == routes.count, "a method and path are listed once")
        guard case .route(let purge) = AdminRoutes.resolve(method: .POST, path: "/purge") else { Issue.record("POST /purge"); return }
        #expect(purge.needsToken)
        guard case .route(let health) = AdminRoutes.resolve(method: .GET, path: "/healthz") else { Issue.record("GET /healthz"); return }
        #expect(!health.needsToken)
        #expect(AdminRoutes.isPublic("/healthz"))
        #expect(!AdminRoutes.isPublic("/purge"))
    }

    @Test func aKnownPathWithAnotherMethodIs405WithAllow() throws {
        guard case .methodNotAllowed(let allowed) = AdminRoutes.resolve(method: .GET, path: "/purge") else {
            Issue.record("GET /purge is a 405"); return
        }
        #expect(allowed == [.POST])
        let answer = AdminRoutes.methodNotAllowed(.GET, path: "/purge", allowed: allowed)
        #expect(answer.status == 405)
        #expect(answer.headers.contains { $0 == ("Allow", "POST") })
        #expect(try json(answer)["error"] as? String == "GET is not allowed on /purge; use POST")
    }

    @Test func anUnknownPathListsEveryEndpoint() throws {
        guard case .notFound = AdminRoutes.resolve(method: .GET, path: "/nope") else { Issue.record("404"); return }
        let message = try #require(try json(AdminRoutes.notFound("/nope"))["error"] as? String)
        #expect(message == "no such endpoint /nope; try DELETE /shadow; GET /healthz, /readyz, /stats, /metrics, /explain?request=…, /entry?key=…, /purges, /shadow; POST /purge, /reload")
        for route in AdminRoutes.table { #expect(message.contains(route.path)) }
    }

    @Test func anAnswerThatIsNotJSONIsA500WithAMessage() throws {
        let answer = JSONAnswer.json(200, ["when": Date(timeIntervalSince1970: 0)])
        #expect(answer.status == 500)
        let message = try #require(try json(answer)["error"] as? String)
        #expect(message.hasPrefix("internal error: the answer"))
    }

    @Test func purgeBodyIsReadOnceAndChecked() {
        let routes = ["events", "event"]
        func parse(_ text: String) -> Result<PurgeSet, AdminPurge.BodyError> {
            AdminPurge.parse(Data(text.utf8), cachedRoutes: routes)
        }
        #expect(parse(#"{"tags": ["a"], "keys": ["k"], "routes": ["event"], "all": true}"#)
            == .success(PurgeSet(tags: ["a"], keys: ["k"], routes: ["event"], everything: true)))
        #expect(parse(#"{"tag": ["a"], "x": 1}"#) == .failure(.init(message: "unknown field(s) tag, x; use tags, keys, routes, all, soft or stale")))
        #expect(parse(#"{"tags": "a"}"#) == .failure(.init(message: "tags is a list of strings")))
        #expect(parse(#"{"all": 1}"#) == .failure(.init(message: "all is true or false")))
        #expect(parse(#"["a"]"#) == .failure(.init(message: "the body must be a JSON object")))
        #expect(parse(#"{}"#) == .failure(.init(message: "nothing to purge: give tags, keys, routes or \"all\": true")))
        #expect(parse(#"{"routes": ["evnts"]}"#) == .failure(.init(message: "no cached route is named 'evnts'; cached routes: events, event")))
        guard case .failure(let error) = parse("not json") else { Issue.record("not JSON is refused"); return }
        #expect(error.message.hasPrefix("the body must be JSON like"))
    }
}
