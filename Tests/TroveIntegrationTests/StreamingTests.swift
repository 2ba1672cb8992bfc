import TroveHTTP
import Foundation
import Testing
import TroveDemoOrigin
import TroveFixtures

/// Answers that are not stored pass through as they arrive: a window at a time, whatever their size, paced by
/// the client. `trove serve` runs as its own process, so that its resident memory is its own.
@Suite(.serialized) struct StreamingTests {
    /// `trove serve` in front of the scenario's origin, its proxy port, and its admin API's URL.
    private func serve(_ scenario: Scenario, directory: String) async throws -> (ChildProcess, Int, String) {
        let proxyPort = try Sockets.freePort()
        let adminPort = try Sockets.freePort()
        let yaml = scenario.yaml()
            .replacingOccurrences(of: "listen: 127.0.0.1:0\n", with: "listen: 127.0.0.1:\(proxyPort)\n")
            .replacingOccurrences(of: "{listen: 127.0.0.1:0,", with: "{listen: 127.0.0.1:\(adminPort),")
        try yaml.write(toFile: directory + "/rules.yaml", atomically: true, encoding: .utf8)
        let trove = try ChildProcess(
            executable: try ProcessTests.executable(), arguments: ["serve", "--config", directory + "/rules.yaml", "--drain", "1s"],
            outputFile: directory + "/trove.log", environment: ["TROVE_ADMIN_TOKEN": Scenario.token])
        try await eventually("trove serve answers") {
            (try? await scenario.request(url: "http://127.0.0.1:\(adminPort)/healthz").status) == 200
        }
        return (trove, proxyPort, "http://127.0.0.1:\(adminPort)")
    }

    private func temporaryDirectory() throws -> String {
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

    private static func get(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: trove.test\r\n\r\n"
    }

    /// A 1 GiB answer through a pass route costs Trove a window, not the answer.
    @Test func aGibibyteAnswerPassesThroughInAWindow() async throws {
        let scenario = try await Scenario(redis: false)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (trove, port, _) = try await serve(scenario, directory: directory)
        defer { trove.stop() }
        let before = Self.residentBytes(trove.pid)
        let client = try RawConnection(port: port)
        try client.send(Self.get("/stream?mb=1024"))
        let answer = try client.readDiscardingBody(within: 120)
        #expect(answer.status == 200)
        #expect(answer.bodyBytes == 1 << 30)
        #expect(answer.headers["content-length"] == String(1 << 30))
        #expect(answer.headers["x-cache"] == "PASS")
        let growth = Self.residentBytes(trove.pid) - before
        #expect(growth < 64 << 20, "Trove's resident memory grew by \(growth >> 20) MiB")
        client.close()
        await scenario.stop()
    }

    /// A client that stops reading pauses the origin's transfer (the origin waits for Trove, which waits for
    /// the client), and reading again resumes it to the end; a client that goes away cancels it.
    @Test func aClientThatStopsReadingPausesTheOriginAndLeavingCancelsIt() async throws {
        let scenario = try await Scenario(redis: false)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (trove, port, admin) = try await serve(scenario, directory: directory)
        defer { trove.stop() }
        let before = Self.residentBytes(trove.pid)
        let reader = try RawConnection(port: port, receiveBuffer: 4096)
        try reader.send(Self.get("/stream?mb=128"))
        try await eventually("the origin waits for Trove to take more", timeout: .seconds(30)) {
            scenario.origin.stats.snapshot.streamsBlocked == 1
        }
        let sent = scenario.origin.stats.snapshot.streamedBytes
        #expect(sent < 64 << 20, "the origin sent \(sent >> 20) MiB of 128 to a client that read nothing")
        let growth = Self.residentBytes(trove.pid) - before
        #expect(growth < 64 << 20, "Trove's resident memory grew by \(growth >> 20) MiB")
        let metrics = { () async throws -> String in
            try await scenario.request(url: admin + "/metrics", headers: [Header("Authorization", "Bearer \(Scenario.token)")]).body
        }
        #expect(try await metrics().contains("trove_streams_paused 1"), "the paused transfer is counted")
        reader.setReceiveBuffer(4 << 20)
        let answer = try reader.readDiscardingBody(within: 60)
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
        try await eventually("no transfer is paused any more") { try await metrics().contains("trove_streams_paused 0") }
        #expect(try await metrics().contains("trove_stream_pause_duration_seconds_count"))
        reader.close()
        await scenario.stop()
    }
}
