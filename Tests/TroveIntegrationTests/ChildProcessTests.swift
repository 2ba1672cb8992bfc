import Foundation
import NIOCore
import NIOPosix
import Testing
import TroveDemoOrigin
import TroveFixtures

/// The processes tests start (redis-server, sentinels, `trove serve`) inherit nothing from the test process.
@Suite struct ChildProcessTests {
    /// SwiftNIO opens sockets without close-on-exec: a child that inherited an origin's listening socket kept the
    /// origin listening after the test stopped it, and a test of an unreachable origin saw timeouts instead.
    @Test func aChildHoldsNoneOfTheTestProcesssSockets() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await DemoOrigin.start(.init(), group: group)
        let child = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        defer { child.stop() }
        // Sockets only: the child's dynamic loader may hold a library file open for a moment after the spawn (seen in
        // CI as a descriptor 3 that was no socket's).
        let directory = "/proc/\(child.pid)/fd"
        let sockets = try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { name -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(name)") else { return nil }
            return target.hasPrefix("socket:") ? "\(name) → \(target)" : nil
        }
        #expect(sockets.isEmpty, "the child inherited \(sockets)")
        try await origin.stop()
        try await group.shutdownGracefully()
    }
}
