import TroveHTTP
import Foundation
import NIOCore
import NIOPosix
import Testing
import TroveCore
import TroveCurl
import TroveDemoOrigin
import TroveFixtures
import TroveTestSupport

/// The libcurl origin client against a real HTTP origin (the demo origin) on a free port.
@Suite final class CurlOriginClientTests: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// One client (one curl thread) for the whole suite.
    static let sharedClient = CurlOriginClient()
    var client: CurlOriginClient { Self.sharedClient }

    deinit {
        try? group.syncShutdownGracefully()
    }

    private func origin() async throws -> DemoOrigin {
        try await DemoOrigin.start(.init(), group: group)
    }

    private func send(
        _ method: String, _ url: String, headers: [Header] = [], body: String? = nil, timeout: Duration = .seconds(5),
        maxBytes: Int = 1 << 20
    ) async -> Result<OriginResponse<ByteBuffer>, OriginError> {
        await withCheckedContinuation { continuation in
            client.send(OriginRequest(
                origin: "demo", method: method, url: url, headers: headers, body: body.map { ByteBuffer(string: $0) },
                connectTimeout: .seconds(1), timeout: timeout, maxResponseBytes: maxBytes)) { continuation.resume(returning: $0) }
        }
    }

    private func json(_ response: OriginResponse<ByteBuffer>) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    /// Answers being received share one budget (`limits.response_body_budget`): an answer that does not fit
    /// fails as overloaded (503) and gives back what it held; the next one fits again (#12, finding 4).
    @Test func responseBudget() async throws {
        let origin = try await origin()
        let budget = ByteBudget()
        #expect(budget.reserve(60 * 1024, capacity: 100 * 1024), "another answer holds 60 KiB")
        func send(kb: Int) async -> Result<OriginResponse<ByteBuffer>, OriginError> {
            await withCheckedContinuation { continuation in
                var request = OriginRequest<ByteBuffer>(origin: "demo", method: "GET", url: origin.url + "/respond?kb=\(kb)", headers: [],
                    body: nil, connectTimeout: .seconds(1), timeout: .seconds(5), maxResponseBytes: 1 << 20)
                request.budget = budget
                request.budgetCapacity = 100 * 1024
                client.send(request) { continuation.resume(returning: $0) }
            }
        }
        let refused = await send(kb: 64)
        guard case .failure(let error) = refused else { Issue.record("an answer over the budget was held: \(refused)"); return }
        #expect(error.kind == .overloaded)
        #expect(error.status == 503)
        #expect(budget.inUse == 60 * 1024, "the refused answer gave back what it held")
        #expect(try await send(kb: 32).get().bodyLength == 32 * 1024)
        #expect(budget.inUse == 60 * 1024)
        budget.release(60 * 1024)
        #expect(try await send(kb: 64).get().bodyLength == 64 * 1024)
        #expect(budget.inUse == 0)
        try await origin.stop()
    }

    /// A GET comes back with its status, headers and body as the origin sent them.
    @Test func get() async throws {
        let origin = try await origin()
        let response = try await send("GET", origin.url + "/api/v1/events/3").get()
        #expect(response.status == 200)
        #expect(response.headers.contains(Header("Content-Type", "application/json")))
        #expect(response.bodyLength == response.body.readableBytes)
        #expect(try json(response)["id"] as? Int == 3)
        #expect(try await send("GET", origin.url + "/api/v1/events/999").get().status == 404)
        try await origin.stop()
    }

    /// The origin receives exactly the method, headers and body given: libcurl adds no Expect, Accept or form
    /// Content-Type of its own.
    @Test func forwardsExactly() async throws {
        let origin = try await origin()
        let response = try await send("PATCH", origin.url + "/echo/x?a=1", headers: [Header("X-Trace", "t1")], body: "{\"k\": 1}").get()
        let echo = try json(response)
        #expect(echo["method"] as? String == "PATCH")
        #expect(echo["uri"] as? String == "/echo/x?a=1")
        #expect(echo["body"] as? String == "{\"k\": 1}")
        let headers = (echo["headers"] as? [[String]] ?? []).map { $0[0].lowercased() }
        #expect(headers.contains("x-trace"))
        #expect(!headers.contains("expect"))
        #expect(!headers.contains("accept"))
        #expect(!headers.contains("content-type"))
        let delete = try json(try await send("DELETE", origin.url + "/echo/y").get())
        #expect(delete["method"] as? String == "DELETE")
        let post = try json(try await send("POST", origin.url + "/echo/z", body: String(repeating: "b", count: 5000)).get())
        #expect((post["body"] as? String)?.count == 5000)
        try await origin.stop()
    }

    /// HEAD asks for headers only.
    @Test func head() async throws {
        let origin = try await origin()
        let response = try await send("HEAD", origin.url + "/api/v1/events/3").get()
        #expect(response.status == 200)
        #expect(response.body.readableBytes == 0)
        try await origin.stop()
    }

    /// No answer within the timeout is `.timeout` (504); nobody listening is `.unreachable` (502).
    @Test func timeoutAndUnreachable() async throws {
        let origin = try await origin()
        let slow = await send("GET", origin.url + "/echo/slow?delay_ms=3000", timeout: .milliseconds(200))
        guard case .failure(let timeout) = slow else { Issue.record("expected a timeout"); return }
        #expect(timeout.kind == .timeout)
        #expect(timeout.status == 504)
        let port = try Sockets.freePort()
        guard case .failure(let refused) = await send("GET", "http://127.0.0.1:\(port)/") else { Issue.record("expected a failure"); return }
        #expect(refused.kind == .unreachable)
        #expect(refused.status == 502)
        #expect(refused.description.hasPrefix("origin 'demo' is unreachable: "))
        try await origin.stop()
    }

    /// An answer bigger than allowed is refused instead of filling memory.
    @Test func tooLarge() async throws {
        let origin = try await origin()
        guard case .failure(let error) = await send("GET", origin.url + "/respond?kb=64", maxBytes: 1024) else {
            Issue.record("expected a failure"); return
        }
        #expect(error.kind == .tooLarge)
        #expect(try await send("GET", origin.url + "/respond?kb=64", maxBytes: 65536).get().bodyLength == 65536)
        try await origin.stop()
    }

    /// One thread drives many transfers at once: the origin holds every request until 100 are there (with a
    /// deadline, after which it answers `timeout`), so the test proves the transfers were side by side without
    /// depending on how fast the machine is.
    @Test func manyAtOnce() async throws {
        let origin = try await origin()
        let gather = [Header("X-Origin-Gather", "100"), Header("X-Origin-Gather-Group", "many"), Header("X-Origin-Gather-Ms", "30000")]
        let answers = await withTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let response = try? await self.send("GET", origin.url + "/api/v1/events/\(index % 50 + 1)", headers: gather, timeout: .seconds(60)).get()
                    return (response?.status ?? 0, response?.headers.value(of: "x-origin-gathered"))
                }
            }
            return await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
        }
        #expect(answers.count == 200)
        #expect(answers.allSatisfy { $0.0 == 200 })
        #expect(answers.allSatisfy { $0.1 == "gathered" }, "every request was held until 100 were in flight together")
        try await origin.stop()
    }

    /// After shutdown, requests fail with a reason instead of hanging.
    @Test func shutdown() async throws {
        let client = CurlOriginClient()
        await client.shutdown()
        await client.shutdown()
        let result = await withCheckedContinuation { continuation in
            client.send(OriginRequest(origin: "demo", method: "GET", url: "http://127.0.0.1:1/", headers: [], body: nil,
                connectTimeout: .seconds(1), timeout: .seconds(1), maxResponseBytes: 1024)) { continuation.resume(returning: $0) }
        }
        guard case .failure(let error) = result else { Issue.record("expected a failure"); return }
        #expect(error.reason == "Trove is shutting down")
    }
}
