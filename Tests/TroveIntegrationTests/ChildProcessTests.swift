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
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd").compactMap(Int.init).sorted()
        #expect(descriptors == [0, 1, 2])
        try await origin.stop()
        try await group.shutdownGracefully()
    }
}
