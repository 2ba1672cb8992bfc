import TroveHTTP
import Foundation
import Testing
import TroveApp
import TroveCore
import TroveFixtures
import TroveRules
import TroveServer
import TroveTestSupport

/// What one hostile client could once do to a running Trove (#12): each test sends what the attack sent, asserts
/// the answer, and that Trove still serves everyone else afterwards.
@Suite(.serialized) struct HardeningTests {
    /// Trove still answers a plain request from its cache or the origin.
    private func stillServing(_ scenario: Scenario, _ trove: TroveApplication, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let answer = try await scenario.request(trove, "/api/v1/events/9")
        #expect(answer.status == 200, "Trove stopped serving", sourceLocation: sourceLocation)
        #expect(try await scenario.admin(trove, "/healthz").status == 200, sourceLocation: sourceLocation)
    }

    /// Finding 1: an HTTP date with a huge year, from a client (on a hit and a miss, in all three forms) or from the
    /// origin (Expires, Last-Modified, Date on a `freshness: origin` route), is no date, not a crash.
    @Test func hugeHTTPDates() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Scenario.routes.replacingOccurrences(of: """
              - name: plain
            """, with: """
              - name: origin-says
                match: GET /respond
                cache: {key: "respond:{query}", ttl: 1m, freshness: origin}
              - name: plain
            """)))
        let dates = ["Sun, 06 Nov 300000000 08:49:37 GMT", "Sunday, 06-Nov-300000000 08:49:37 GMT", "Sun Nov  6 08:49:37 300000000"]
        for (index, date) in dates.enumerated() {
            let miss = try await scenario.request(trove, "/api/v1/events/\(index + 1)", headers: [Header("If-Modified-Since", date)])
            #expect(miss.status == 200)
            #expect(miss.xCache == "MISS")
            let hit = try await scenario.request(trove, "/api/v1/events/\(index + 1)", headers: [Header("If-Modified-Since", date)])
            #expect(hit.status == 200)
            #expect(hit.xCache == "HIT")
        }
        for name in ["Expires", "Last-Modified", "Date"] {
            for date in dates {
                let query = "header=\(name):\(date)".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let answer = try await scenario.request(trove, "/respond?\(query.replacingOccurrences(of: "header%3D", with: "header="))",
                    headers: [Header("If-Modified-Since", date)])
                #expect(answer.status == 200, "\(name): \(date)")
            }
        }
        try await stillServing(scenario, trove)
        await scenario.stop(trove)
    }

    /// Finding 1: a reload with a duration past Int64 or a rate of almost nothing is refused, and Trove serves on.
    @Test func hostileNumbersInAReload() async throws {
        let scenario = try await Scenario(redis: false)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trove-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try scenario.yaml().write(toFile: path, atomically: true, encoding: .utf8)
        let trove = try await scenario.trove(rulesPath: path)
        for broken in [
            scenario.yaml().replacingOccurrences(of: "ttl: 10m", with: "ttl: 99999999999d999999999999h"),
            scenario.yaml(origin: "rate: 0.0000000000000000000001/s"),
        ] {
            try broken.write(toFile: path, atomically: true, encoding: .utf8)
            let refused = try await scenario.admin(trove, "POST", "/reload")
            #expect(refused.status == 400)
            try await stillServing(scenario, trove)
        }
        await scenario.stop(trove)
    }
}

/// Finding 2 (timeouts and a connection cap), 3 (back-pressure), 4 (bodies held), 10 (upgrades) and the head
/// checks of 12, against a real Trove on a socket.
@Suite(.serialized) struct ClientLimitsTests {
    private func trove(_ scenario: Scenario, limits: String, routes: String = Scenario.routes) async throws -> TroveApplication {
        try await scenario.trove(scenario.rules(routes: routes, settings: "limits: {\(limits)}"))
    }

    private func stillServing(_ scenario: Scenario, _ trove: TroveApplication, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await scenario.request(trove, "/api/v1/events/9").status == 200, "Trove stopped serving", sourceLocation: sourceLocation)
        #expect(try await scenario.admin(trove, "/healthz").status == 200, sourceLocation: sourceLocation)
    }

    /// Slowloris: a head that trickles in gets 408 and a close at the header timeout; a connection that sends
    /// nothing is closed quietly; so is an idle keep-alive connection after its timeout.
    @Test func slowAndIdleClients() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, limits: "header_timeout: 300ms, keepalive_timeout: 400ms, body_timeout: 300ms")
        let slow = try RawConnection(port: trove.publicPort)
        try slow.send("GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\n")
        let silent = try RawConnection(port: trove.publicPort)
        let idle = try RawConnection(port: trove.publicPort)
        try idle.send("GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try idle.readAnswer().status == 200)
        let uploading = try RawConnection(port: trove.publicPort)
        try uploading.send("PUT /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ti")

        #expect(slow.closedByServer(within: 10))
        let timedOut = try #require(try? RawConnection.parse(slow.received))
        #expect(timedOut.status == 408)
        #expect(timedOut.headers["connection"] == "close")
        #expect(timedOut.body.contains("did not arrive whole within 300ms"))
        #expect(uploading.closedByServer(within: 10))
        #expect(try RawConnection.parse(uploading.received).status == 408)
        #expect(silent.closedByServer(within: 10))
        #expect(silent.received.isEmpty, "a connection that sent nothing gets nothing")
        #expect(idle.closedByServer(within: 10))
        #expect(idle.received.isEmpty)
        let metrics = try await scenario.admin(trove, "/metrics").body
        #expect(metrics.contains("trove_limits_reached_total{limit=\"header_timeout\"} 2"))
        #expect(metrics.contains("trove_limits_reached_total{limit=\"body_timeout\"} 1"))
        #expect(metrics.contains("trove_limits_reached_total{limit=\"keepalive_timeout\"} 1"))
        try await stillServing(scenario, trove)
        await scenario.stop(trove)
    }

    /// Past max_connections a connection is accepted and closed at once; the admin API keeps answering, and a
    /// place frees up when a connection closes.
    @Test func connectionCap() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, limits: "max_connections: 4")
        var held: [RawConnection] = []
        for _ in 0..<4 {
            let connection = try RawConnection(port: trove.publicPort)
            try connection.send("GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try connection.readAnswer().status == 200)
            held.append(connection)
        }
        let refused = try RawConnection(port: trove.publicPort)
        #expect(refused.closedByServer(within: 10))
        #expect(refused.received.isEmpty)
        #expect(try await scenario.admin(trove, "/healthz").status == 200)
        held.removeFirst().close()
        try await eventually("a place freed up") {
            (try? Sockets.http(port: trove.publicPort, path: "/api/v1/events/2", timeout: 2).status) == 200
        }
        await scenario.stop(trove)
    }

    /// Headers too large: 431. HTTP/1.1 without Host, or with two: 400. CONNECT: 405. An expectation other than
    /// 100-continue: 417. A declared body over the limit: 413 at once, with no 100 Continue first. Each closes.
    @Test func refusedHeads() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, limits: "max_request_body: 1KB")
        let cases: [(String, Int)] = [
            ("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 90_000))\r\n\r\n", 431),
            ("GET /api/v1/events/1 HTTP/1.1\r\n\r\n", 400),
            ("GET /api/v1/events/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
            ("PUT /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nExpect: the-moon\r\nContent-Length: 2\r\n\r\n{}", 417),
            ("PUT /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n", 413),
        ]
        for (request, status) in cases {
            let connection = try RawConnection(port: trove.publicPort)
            try connection.send(request)
            #expect(connection.closedByServer(within: 10), "\(status)")
            let answer = try RawConnection.parse(connection.received)
            #expect(answer.status == status, "\(request.prefix(40))")
            #expect(answer.headers["connection"] == "close")
        }
        // HTTP/1.0 needs no Host.
        let old = try RawConnection(port: trove.publicPort)
        try old.send("GET /api/v1/events/1 HTTP/1.0\r\n\r\n")
        #expect(try old.readAnswer().status == 200)
        try await stillServing(scenario, trove)
        await scenario.stop(trove)
    }

    /// Finding 10: a request with Upgrade is answered with Connection: close and the connection closes, so no
    /// request after it hangs.
    @Test func upgradeClosesTheConnection() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, limits: "header_timeout: 10s")
        let connection = try RawConnection(port: trove.publicPort)
        try connection.send("GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        let answer = try connection.readAnswer()
        #expect(answer.status == 200)
        #expect(answer.headers["connection"] == "close")
        #expect(connection.closedByServer(within: 10))
        try await stillServing(scenario, trove)
        await scenario.stop(trove)
    }

    /// Finding 3: a client that pipelines requests for large answers and reads nothing gets one answer started,
    /// not all of them; when it reads, every answer arrives, in order. One that never reads is cut off at the
    /// send timeout.
    @Test func backPressure() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, limits: "send_timeout: 1s")
        let client = try RawConnection(port: trove.publicPort, receiveBuffer: 4096)
        // 8 MiB answers: more than the kernel's largest send buffer (4 MiB here), so the first never leaves.
        let requests = (1...8).map { "GET /respond?kb=8192&n=\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
        try client.send(requests)
        // Reading nothing: cut off at the send timeout. (The client sees the close only once it reads what the
        // kernel still holds for it.) The connection is gone by then, so what was fetched for it is final: not
        // every answer it asked for: only the first, which the socket never took whole.
        // (This wait has timed out a few times in full parallel runs and never alone; what the metrics said then
        // goes into the failure, to tell where the answer stood.)
        var metrics = ""
        do {
            try await eventually("the connection was closed at the send timeout", timeout: .seconds(15)) {
                metrics = try await scenario.admin(trove, "/metrics").body
                return metrics.contains("trove_limits_reached_total{limit=\"send_timeout\"} 1")
            }
        } catch {
            let lines = metrics.split(separator: "\n").filter { $0.hasPrefix("trove_limits") || $0.hasPrefix("trove_streams_paused{") || $0.hasPrefix("trove_connections") }
            Issue.record("\(error); started at the origin: \((1...8).map { scenario.originCount("/respond?kb=8192&n=\($0)") }); \(lines.joined(separator: "; "))")
            throw error
        }
        let fetched = (1...8).filter { scenario.originCount("/respond?kb=8192&n=\($0)") > 0 }.count
        #expect(fetched == 1, "\(fetched) answers were started for a client that read nothing")
        #expect(client.closedByServer(within: 15))
        // The request that died with its client is not in flight any more: a shutdown does not wait for it
        // (it waited its whole grace period, 10 s, before #15's fix).
        try await eventually("nothing in flight") { trove.inFlight == 0 }
        await scenario.stop(trove)

        let scenario2 = try await Scenario(redis: false)
        let reader = try await self.trove(scenario2, limits: "send_timeout: 30s")
        let patient = try RawConnection(port: reader.publicPort)
        try patient.send((1...4).map { "GET /respond?kb=512&n=\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        for _ in 1...4 {
            let answer = try patient.readAnswer(within: 10)
            #expect(answer.status == 200)
            #expect(answer.body.utf8.count == 512 * 1024)
        }
        await scenario2.stop(reader)
    }

    /// Finding 4: request bodies held at once are bounded process-wide; past the budget a request gets 503 and
    /// its connection closes; the budget frees up when a holder goes away. (Bodies Trove holds: reads with a
    /// body, pipelined requests; a write on an idle connection streams its body to the origin instead.)
    @Test func requestBodyBudget() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, limits: "max_request_body: 64KB, request_body_budget: 100KB, body_timeout: 30s")
        let holder = try RawConnection(port: trove.publicPort)
        try holder.send("GET /api/v1/events/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n" + String(repeating: "a", count: 60_000))
        try await eventually("Trove holds the partial upload") { trove.environment.requestBodies.inUse >= 60_000 }
        let second = try RawConnection(port: trove.publicPort)
        try second.send("GET /api/v1/events/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n" + String(repeating: "b", count: 50_000))
        #expect(second.closedByServer(within: 10))
        let refused = try RawConnection.parse(second.received)
        #expect(refused.status == 503)
        #expect(refused.headers["retry-after"] == "1")
        holder.close()
        try await eventually("the budget is given back") { trove.environment.requestBodies.inUse == 0 }
        let third = try await scenario.request(trove, "PUT", "/api/v1/events/3", headers: [Header("Content-Type", "application/json")],
            body: "{\"title\": \"" + String(repeating: "c", count: 50_000) + "\"}")
        #expect(third.status == 200)
        await scenario.stop(trove)
    }
}

/// Finding 5: the cache cannot be poisoned through headers its keys do not read (`Host`, `X-Forwarded-*`).
@Suite(.serialized) struct PoisoningTests {
    static let echoRoute = """
          - name: echo
            match: GET /echo/headers
            cache: {key: "echo", ttl: 1m}
        """

    private func trove(_ scenario: Scenario, clients: String, routes: String = PoisoningTests.echoRoute + "\n" + Scenario.routes)
        async throws -> TroveApplication
    {
        try await scenario.trove(scenario.rules(routes: routes, settings: clients.isEmpty ? "" : "clients: {\(clients)}"))
    }

    private func seen(_ answer: Scenario.Answer) throws -> [String: String] {
        let headers = try #require(try answer.json()["headers"] as? [[String]])
        return Dictionary(headers.map { ($0[0].lowercased(), $0[1]) }, uniquingKeysWith: { a, _ in a })
    }

    static let forged = [
        Header("Host", "evil.example"), Header("X-Forwarded-Host", "evil.example"), Header("X-Forwarded-Proto", "https"),
        Header("X-Forwarded-For", "6.6.6.6"), Header("Forwarded", "host=evil.example"), Header("X-Original-URL", "/admin"),
    ]

    /// Without clients.hosts: what a client forges never reaches the origin, so what is stored holds none of it.
    @Test func forgedHeadersNeverReachTheOrigin() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, clients: "")
        let forged = try await scenario.request(trove, "/echo/headers", headers: Self.forged)
        #expect(forged.xCache == "MISS")
        let origin = try seen(forged)
        #expect(origin["x-forwarded-host"] == nil)
        #expect(origin["x-forwarded-proto"] == "http")
        #expect(origin["x-forwarded-for"] == "127.0.0.1")
        #expect(origin["forwarded"] == nil)
        #expect(origin["x-original-url"] == nil)
        #expect(!forged.body.contains("evil") && !forged.body.contains("6.6.6.6"))
        let plain = try await scenario.request(trove, "/echo/headers")
        #expect(plain.xCache == "HIT")
        #expect(!plain.body.contains("evil"))
        await scenario.stop(trove)
    }

    /// One host answered: others get 421 and never reach the origin; the origin is told that host, whatever the
    /// client said.
    @Test func oneHost() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, clients: "hosts: [shop.example.com]")
        let refused = try await scenario.request(trove, "/echo/headers", headers: [Header("Host", "evil.example")])
        #expect(refused.status == 421)
        #expect(refused.body.contains("answers for shop.example.com, not for 'evil.example'"))
        #expect(scenario.originCount("/echo/headers") == 0)
        let answer = try await scenario.request(trove, "/echo/headers", headers: [
            Header("Host", "SHOP.example.com:8080"), Header("X-Forwarded-Host", "evil.example"),
        ])
        #expect(answer.status == 200)
        #expect(try seen(answer)["x-forwarded-host"] == "shop.example.com")
        await scenario.stop(trove)
    }

    /// Several hosts: each gets its own entry (the key names the host), and the origin is told which.
    @Test func severalHostsAreKeyed() async throws {
        let scenario = try await Scenario(redis: false)
        let routes = """
              - name: echo
                match: GET /echo/headers
                cache: {key: "{header.host|lower}:echo", ttl: 1m}
              - {name: rest, match: ANY /**, pass: true}
            """
        let trove = try await trove(scenario, clients: "hosts: [a.example.com, \"*.b.example.com\"]", routes: routes)
        let a = try await scenario.request(trove, "/echo/headers", headers: [Header("Host", "a.example.com")])
        let b = try await scenario.request(trove, "/echo/headers", headers: [Header("Host", "x.b.example.com")])
        #expect(try seen(a)["x-forwarded-host"] == "a.example.com")
        #expect(try seen(b)["x-forwarded-host"] == "x.b.example.com")
        #expect(try await scenario.request(trove, "/echo/headers", headers: [Header("Host", "a.example.com")]).body == a.body)
        #expect(try await scenario.request(trove, "/echo/headers", headers: [Header("Host", "b.example.com")]).status == 421)
        await scenario.stop(trove)
    }

    /// A trusted proxy's X-Forwarded-For and -Proto are believed (and appended to); the host still is not.
    @Test func trustedProxies() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await trove(scenario, clients: "trusted_proxies: [127.0.0.0/8]")
        let answer = try await scenario.request(trove, "/echo/headers", headers: Self.forged)
        let origin = try seen(answer)
        #expect(origin["x-forwarded-for"] == "6.6.6.6, 127.0.0.1")
        #expect(origin["x-forwarded-proto"] == "https")
        #expect(origin["forwarded"] == "host=evil.example")
        #expect(origin["x-forwarded-host"] == nil)
        #expect(origin["x-original-url"] == nil, "only the client's address and scheme are believed, even from a proxy")
        await scenario.stop(trove)
    }
}

/// Findings 6 and 7 through a running Trove: what the key does not tell apart is never served for it.
@Suite(.serialized) struct QueryPoisoningTests {
    @Test func unkeyedAndRepeatedParameters() async throws {
        let scenario = try await Scenario(redis: false)
        let routes = """
              - name: events-list
                match: GET /api/v1/events
                cache:
                  key: "events:list:page={query.page|default:1}:category={query.category}"
                  ttl: 5m
                  ignore_query: [utm_*]
              - {name: rest, match: ANY /**, pass: true}
            """
        let trove = try await scenario.trove(scenario.rules(routes: routes))
        let injected = try await scenario.request(trove, "/api/v1/events?page=3&callback=alert(1)")
        #expect(injected.xCache == "BYPASS")
        #expect(injected.cacheStatus == "trove; fwd=bypass; fwd-status=200; detail=UNKEYED-QUERY")
        #expect(try await scenario.request(trove, "/api/v1/events?page=3").xCache == "MISS", "nothing was stored for page=3")
        #expect(try await scenario.request(trove, "/api/v1/events?utm_source=mail&page=3").xCache == "HIT")
        #expect(try await scenario.request(trove, "/api/v1/events?utm_source=mail&page=4").xCache == "MISS")
        #expect(scenario.originCount("/api/v1/events?page=4") == 1, "the origin never saw utm_source")

        #expect(try await scenario.request(trove, "/api/v1/events?category=a&category=b").xCache == "MISS")
        #expect(try await scenario.request(trove, "/api/v1/events?category=a,b").xCache == "MISS")
        #expect(try await scenario.request(trove, "/api/v1/events?category=a&category=b").xCache == "HIT")
        await scenario.stop(trove)
    }
}

/// Finding 8: a stored gzip answer that inflates past `limits.max_decoded_body` is refused for clients that do not
/// take gzip (502), costs nothing to refuse, and is still served coded to those that do.
@Suite(.serialized) struct GzipBombTests {
    @Test func decodedBodiesAreBounded() async throws {
        let scenario = try await Scenario(redis: false)
        let routes = """
              - {name: respond, match: GET /respond, cache: {key: "respond:{query}", ttl: 1m, max_body: 1MB}}
              - {name: rest, match: ANY /**, pass: true}
            """
        let trove = try await scenario.trove(scenario.rules(routes: routes, settings: "limits: {max_decoded_body: 1MB}"))
        // 8 MiB of one letter: a few kilobytes of gzip.
        let coded = try await scenario.request(trove, "/respond?kb=8192&gzip=1", headers: [Header("Accept-Encoding", "gzip")])
        #expect(coded.status == 200)
        #expect(coded.header("Content-Encoding") == "gzip")
        #expect(coded.xCache == "MISS")
        let bomb = try await scenario.request(trove, "/respond?kb=8192&gzip=1")
        #expect(bomb.status == 502)
        #expect(bomb.body.contains("decodes to more than 1 MiB (limits.max_decoded_body)"))
        // Within the limit, decoded as before.
        _ = try await scenario.request(trove, "/respond?kb=512&gzip=1", headers: [Header("Accept-Encoding", "gzip")])
        let decoded = try await scenario.request(trove, "/respond?kb=512&gzip=1")
        #expect(decoded.status == 200)
        #expect(decoded.xCache == "HIT")
        #expect(decoded.header("Content-Encoding") == nil)
        #expect(decoded.body.utf8.count == 512 * 1024)
        // A body too large to decode on the event loop is decoded beside it, with the same result.
        let big = try await scenario.request(trove, "/respond?kb=768&random=1&gzip=1", headers: [Header("Accept-Encoding", "gzip")])
        #expect(try #require(Int(big.header("Content-Length") ?? "")) > 256 * 1024)
        let bigDecoded = try await scenario.request(trove, "/respond?kb=768&random=1&gzip=1")
        #expect(bigDecoded.xCache == "HIT")
        #expect(bigDecoded.status == 200)
        #expect(bigDecoded.header("Content-Length") == "\(768 * 1024)")
        #expect(try await scenario.admin(trove, "/metrics").body.contains("trove_limits_reached_total{limit=\"max_decoded_body\"} 1"))
        await scenario.stop(trove)
    }
}

/// Finding 9: a purge larger than `limits.max_purge` is refused whole, with what to do instead.
@Suite(.serialized) struct PurgeLimitTests {
    @Test func oversizedPurgesAreRefused() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove(scenario.rules(settings: "limits: {max_purge: 3}"))
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        let refused = try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["a", "b", "c", "event:1"]}"#)
        #expect(refused.status == 413)
        #expect(refused.body.contains("names 4 tags, keys and routes, more than limits.max_purge (3); nothing was purged"))
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "HIT", "nothing was purged")
        let accepted = try await scenario.admin(trove, "POST", "/purge", json: #"{"tags": ["event:1"]}"#)
        #expect(accepted.status == 200)
        #expect(try await scenario.request(trove, "/api/v1/events/1").xCache == "MISS")
        await scenario.stop(trove)
    }
}

/// Finding 12: a blank or short admin token is refused at start (and on reload), saying how to make one.
@Suite struct AdminTokenTests {
    @Test func shortOrBlankTokensAreRefused() throws {
        for token in ["                    ", "short", " padded-short "] {
            let rules = try RulesLoader.parse("""
                version: 1
                origins: {api: {url: "http://127.0.0.1:8000"}}
                routes: [{name: r, match: GET /r, pass: true}]
                """, file: "t.yaml", environment: ["TROVE_ADMIN_TOKEN": token])
            #expect(throws: TroveApplication.StartError.self) { try TroveApplication.check(rules, options: .init()) }
            do {
                try TroveApplication.check(rules, options: .init())
            } catch {
                #expect(error.description.contains("it needs at least 16 that are not spaces. Make one with: openssl rand -hex 32"))
            }
        }
        let good = try RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes: [{name: r, match: GET /r, pass: true}]
            """, file: "t.yaml", environment: ["TROVE_ADMIN_TOKEN": "0123456789abcdef"])
        try TroveApplication.check(good, options: .init())
    }
}

/// Findings 3 and 4: a large answer Trove made for one client (a stored gzip entry decoded for a client that does
/// not take gzip; before #14, any body read from Redis) counts against `limits.response_body_budget` until it is
/// written, so fifty clients that do not read cannot hold fifty copies. Entries past Redis' chunk size are served
/// a chunk at a time, and the body the memory store shares with every reader is no copy, so neither counts.
@Suite(.serialized) struct AnswerBudgetTests {
    static let routes = """
          - {name: respond, match: GET /respond, cache: {key: "respond:{query}", ttl: 1m, max_body: 8MB}}
          - {name: rest, match: ANY /**, pass: true}
        """

    @Test func answersMadeForOneClientAreBudgeted() async throws {
        let scenario = try await Scenario(redis: true)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes,
            settings: "limits: {max_response_body: 8MB, response_body_budget: 8MB, send_timeout: 60s}"))
        // 6 MiB of one letter, stored gzipped (a few KiB in Redis) and decoded whole for each client below.
        let first = try await scenario.request(trove, "/respond?kb=6144&gzip=1")
        #expect(first.status == 200)
        #expect(first.body.utf8.count == 6144 * 1024)
        let stuck = try RawConnection(port: trove.publicPort, receiveBuffer: 4096)
        try stuck.send("GET /respond?kb=6144&gzip=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await eventually("the first answer waits for its reader") { trove.environment.responseBodies.inUse >= 4096 * 1024 }
        let refused = try await scenario.request(trove, "/respond?kb=6144&gzip=1")
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "1")
        #expect(refused.body.contains("limits.response_body_budget"))
        stuck.close()
        try await eventually("the budget is given back when the connection closes") { trove.environment.responseBodies.inUse == 0 }
        #expect(try await scenario.request(trove, "/respond?kb=6144&gzip=1").status == 200)
        await scenario.stop(trove)
    }

    /// The memory store hands every reader the one body it keeps: a reader that does not read holds no copy, and
    /// the next one is served (the stream benchmark's fifty slow clients of a 50 MB entry were refused before).
    @Test func bodiesTheMemoryStoreSharesAreNotBudgeted() async throws {
        let scenario = try await Scenario(redis: false)
        let trove = try await scenario.trove(scenario.rules(routes: Self.routes,
            settings: "limits: {max_response_body: 8MB, response_body_budget: 8MB, send_timeout: 60s}"))
        #expect(try await scenario.request(trove, "/respond?kb=6144").status == 200)
        let stuck = try RawConnection(port: trove.publicPort, receiveBuffer: 4096)
        try stuck.send("GET /respond?kb=6144 HTTP/1.1\r\nHost: x\r\n\r\n")
        let second = try RawConnection(port: trove.publicPort, receiveBuffer: 4096)
        try second.send("GET /respond?kb=6144 HTTP/1.1\r\nHost: x\r\n\r\n")
        // Both are answered (their heads arrive) while neither reads its body.
        for connection in [stuck, second] {
            let start = try connection.readDiscardingBody(within: 10, firstBytes: 1)
            #expect(start.status == 200)
        }
        #expect(trove.environment.responseBodies.inUse == 0)
        #expect(try await scenario.request(trove, "/respond?kb=6144").status == 200)
        stuck.close()
        second.close()
        await scenario.stop(trove)
    }
}
