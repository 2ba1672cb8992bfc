import TroveHTTP
import Foundation
import Testing
import TroveDemoOrigin
import TroveFixtures

/// Answers that are not stored pass through as they arrive: a window at a time, whatever their size, paced by
/// the client. `trove serve` runs as its own process, so that its resident memory is its own.
@Suite(.serialized) struct StreamingTests {
    /// `trove serve` in front of a new scenario's origin: the process, its proxy port, its admin API's URL, and
    /// its resident memory once started. `cleanUp` stops it and removes its files.
    struct Served {
        let scenario: Scenario
        let trove: ChildProcess
        let port: Int
        let admin: String
        let directory: String
        let residentBefore: Int

        static func start(settings: String = "") async throws -> Served {
            let scenario = try await Scenario(redis: false)
            let directory = try StreamingTests.temporaryDirectory()
            let (trove, port, admin) = try await StreamingTests.serve(scenario, directory: directory, settings: settings)
            return Served(scenario: scenario, trove: trove, port: port, admin: admin, directory: directory,
                residentBefore: StreamingTests.residentBytes(trove.pid))
        }

        func cleanUp() {
            trove.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// How much Trove's resident memory grew since it started.
        var residentGrowth: Int { StreamingTests.residentBytes(trove.pid) - residentBefore }
    }

    /// `trove serve` in front of the scenario's origin, its proxy port, and its admin API's URL.
    private static func serve(_ scenario: Scenario, directory: String, settings: String = "") async throws -> (ChildProcess, Int, String) {
        let proxyPort = try Sockets.freePort()
        let adminPort = try Sockets.freePort()
        // A generous origin timeout: on a loaded machine a test's client may stall for seconds, and a streamed
        // transfer ends after the origin's timeout of silence.
        let yaml = scenario.yaml(timeout: "30s", settings: settings)
            .replacingOccurrences(of: "listen: 127.0.0.1:0\n", with: "listen: 127.0.0.1:\(proxyPort)\n")
            .replacingOccurrences(of: "{listen: 127.0.0.1:0,", with: "{listen: 127.0.0.1:\(adminPort),")
        try yaml.write(toFile: directory + "/rules.yaml", atomically: true, encoding: .utf8)
        let trove = try ChildProcess(
            executable: try ProcessTests.executable(), arguments: ["serve", "--config", directory + "/rules.yaml", "--drain", "1s"],
            outputFile: directory + "/trove.log", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        do {
            // A bound, not a speed: starting the debug binary while the whole suite runs took over 10 s once in CI.
            try await eventually("trove serve answers", timeout: .seconds(60)) {
                (try? await scenario.request(url: "http://127.0.0.1:\(adminPort)/healthz").status) == 200
            }
        } catch {
            // Rules a test got wrong make Trove exit at once: say why, rather than only that it did not answer.
            trove.stop()
            let log = (try? String(contentsOfFile: directory + "/trove.log", encoding: .utf8)) ?? ""
            throw TestSupportError("trove serve did not answer: \(log.suffix(2000))")
        }
        return (trove, proxyPort, "http://127.0.0.1:\(adminPort)")
    }

    private static func temporaryDirectory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("trove-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Resident memory of a process, in bytes (`VmRSS`).
    static func residentBytes(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// Runs blocking socket work on a thread of its own: on Swift's cooperative pool (two threads here) it would
    /// wait behind other tests' blocking calls, and a client stalled that way looks to Trove like a slow one.
    static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// A connection handed between the test and `onOwnThread`: used by one thread at a time, since the test
    /// awaits each call before the next.
    final class Client: @unchecked Sendable {
        let connection: RawConnection
        init(port: Int, receiveBuffer: Int? = nil) throws { connection = try RawConnection(port: port, receiveBuffer: receiveBuffer) }
    }

    private static func get(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: trove.test\r\n\r\n"
    }

    /// A 1 GiB answer through a pass route costs Trove a window, not the answer.
    @Test func aGibibyteAnswerPassesThroughInAWindow() async throws {
        let served = try await Served.start()
        defer { served.cleanUp() }
        let (scenario, port) = (served.scenario, served.port)
        let client = try Client(port: port)
        let answer = try await Self.onOwnThread {
            try client.connection.send(Self.get("/stream?mb=1024"))
            return try client.connection.readDiscardingBody(within: 120)
        }
        #expect(answer.status == 200)
        #expect(answer.bodyBytes == 1 << 30)
        #expect(answer.headers["content-length"] == String(1 << 30))
        #expect(answer.headers["x-cache"] == "PASS")
        let growth = served.residentGrowth
        #expect(growth < 64 << 20, "Trove's resident memory grew by \(growth >> 20) MiB")
        client.connection.close()
        await scenario.stop()
    }

    /// A client that stops reading pauses the origin's transfer (the origin waits for Trove, which waits for
    /// the client), and reading again resumes it to the end; a client that goes away cancels it.
    @Test func aClientThatStopsReadingPausesTheOriginAndLeavingCancelsIt() async throws {
        let served = try await Served.start()
        defer { served.cleanUp() }
        let (scenario, port, admin) = (served.scenario, served.port, served.admin)
        let reader = try Client(port: port, receiveBuffer: 4096)
        try reader.connection.send(Self.get("/stream?mb=128"))
        try await eventually("the origin waits for Trove to take more", timeout: .seconds(30)) {
            scenario.origin.stats.snapshot.streamsBlocked == 1
        }
        let sent = scenario.origin.stats.snapshot.streamedBytes
        #expect(sent < 64 << 20, "the origin sent \(sent >> 20) MiB of 128 to a client that read nothing")
        let growth = served.residentGrowth
        #expect(growth < 64 << 20, "Trove's resident memory grew by \(growth >> 20) MiB")
        let metrics = { () async throws -> String in
            try await scenario.request(url: admin + "/metrics", headers: [Header("Authorization", "Bearer \(Scenario.token)")]).body
        }
        try await eventually("the paused transfer is counted") { try await metrics().contains(#"trove_streams_paused{waiting_for="client"} 1"#) }
        reader.connection.setReceiveBuffer(4 << 20)
        let answer = try await Self.onOwnThread { try reader.connection.readDiscardingBody(within: 60) }
        #expect(answer.bodyBytes == 128 << 20, "reading again resumed the transfer to its end")

        let leaver = try RawConnection(port: port, receiveBuffer: 4096)
        try leaver.send(Self.get("/stream?mb=1024&chunked=1"))
        try await eventually("the second transfer waits for its client", timeout: .seconds(30)) {
            scenario.origin.stats.snapshot.streamsBlocked == 1
        }
        leaver.close()
        try await eventually("the origin's transfer is cancelled", timeout: .seconds(30)) {
            scenario.origin.stats.snapshot.streamsAborted == 1
        }
        #expect(scenario.origin.stats.snapshot.streamedBytes < (128 << 20) + (1 << 30))
        try await eventually("no transfer is paused any more") { try await metrics().contains(#"trove_streams_paused{waiting_for="client"} 0"#) }
        #expect(try await metrics().contains(#"trove_stream_pause_duration_seconds_count{waiting_for="client"}"#))
        reader.connection.close()
        await scenario.stop()
    }

    /// An origin that stops taking an upload stops Trove reading it from the client (the client's writes back
    /// up, Trove holds a window), and the pause is counted; once the origin reads again the upload ends whole.
    @Test func anOriginThatTakesAnUploadSlowlyPausesTheClient() async throws {
        let served = try await Served.start(settings: "limits: {max_request_body: 1GB, request_body_budget: 1GB}")
        defer { served.cleanUp() }
        let (scenario, port, admin) = (served.scenario, served.port, served.admin)
        let metrics = { () async throws -> String in
            try await scenario.request(url: admin + "/metrics", headers: [Header("Authorization", "Bearer \(Scenario.token)")]).body
        }
        let client = try Client(port: port)
        let total = 256 << 20
        let upload = Task {
            try await Self.onOwnThread { () throws -> HTTPReply in
                try client.connection.send(
                    "POST /sink?hold=slow HTTP/1.1\r\nHost: trove.test\r\nContent-Length: \(total)\r\n\r\n")
                let piece = [UInt8](repeating: UInt8(ascii: "u"), count: 1 << 20)
                for _ in 0..<(total / piece.count) { try client.connection.send(piece) }
                return try client.connection.readAnswer(within: 60)
            }
        }
        try await eventually("the client's upload waits for the origin", timeout: .seconds(30)) {
            try await metrics().contains(#"trove_streams_paused{waiting_for="origin"} 1"#)
        }
        let growth = served.residentGrowth
        #expect(growth < 64 << 20, "Trove's resident memory grew by \(growth >> 20) MiB")
        #expect(scenario.origin.stats.snapshot.sunkBytes < total)
        try await scenario.control("/__release?group=slow")
        let answer = try await upload.value
        #expect(answer.status == 200)
        #expect(scenario.origin.stats.snapshot.sunkBytes == total)
        #expect(try await metrics().contains(#"trove_streams_paused{waiting_for="origin"} 0"#))
        #expect(try await metrics().contains(#"trove_stream_pause_duration_seconds_count{waiting_for="origin"}"#))
        client.connection.close()
        await scenario.stop()
    }

    /// A 1 GiB upload through a pass route goes to the origin as it arrives: Trove holds a window, not the body.
    @Test func aGibibyteUploadPassesThroughInAWindow() async throws {
        let served = try await Served.start(settings: "limits: {max_request_body: 1GB, request_body_budget: 1GB}")
        defer { served.cleanUp() }
        let (scenario, port, before) = (served.scenario, served.port, served.residentBefore)
        let client = try Client(port: port)
        let total = 1 << 30
        let pid = served.trove.pid
        let (answer, peak) = try await Self.onOwnThread { () throws -> (HTTPReply, Int) in
            try client.connection.send(
                "POST /sink HTTP/1.1\r\nHost: trove.test\r\nContent-Type: application/octet-stream\r\nContent-Length: \(total)\r\n\r\n")
            let piece = [UInt8](repeating: UInt8(ascii: "u"), count: 1 << 20)
            var peak = before
            for _ in 0..<(total / piece.count) {
                try client.connection.send(piece)
                peak = max(peak, Self.residentBytes(pid))
            }
            return (try client.connection.readAnswer(within: 60), peak)
        }
        #expect(answer.status == 200)
        #expect(answer.body.contains("\"received\":\(total)") || answer.body.contains("\"received\": \(total)"), "\(answer.body)")
        #expect(scenario.origin.stats.snapshot.sunkBytes == total)
        let growth = peak - before
        #expect(growth < 64 << 20, "Trove's resident memory grew by \(growth >> 20) MiB")
        client.connection.close()
        await scenario.stop()
    }
}
