import Foundation
import Synchronization

/// A real `redis-server` on a free loopback port, started for a test and stopped by it (or when released).
///
/// Tests that need Redis fail, with a message saying how to install it, when `redis-server` is missing: they
/// never skip.
public final class RedisServer: Sendable {
    public let port: Int
    /// The password from `--requirepass`, which the fixture's own commands use.
    public let password: String?
    private let arguments: [String]
    private let process = Mutex<ChildProcess?>(nil)
    /// The server's working directory, its own: a replica writes the snapshot it syncs from its master there
    /// (`dump.rdb`), which must neither land in the directory the tests run from nor meet another replica's.
    private let directory: String

    /// Starts `redis-server` with no persistence; `extraArguments` such as `["--requirepass", "s3cret"]`.
    ///
    /// A free port can be taken by another test's server between being found and being bound: a server that
    /// exits at once (it could not bind) is started again on another port, up to three times.
    ///
    /// `eachAttempt` adds arguments chosen anew for each attempt (another free port: a cluster node's bus port).
    public init(extraArguments: [String] = [], eachAttempt: () throws -> [String] = { [] }) throws {
        let password = extraArguments.firstIndex(of: "--requirepass").map { extraArguments[$0 + 1] }
        self.password = password
        let directory = NSTemporaryDirectory() + "trove-redis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        var attempt = 0
        while true {
            let port = try Sockets.freePort()
            let arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning", "--dir", directory,
            ] + extraArguments + (try eachAttempt())
            let process = try ChildProcess(executable: try Self.executable(), arguments: arguments)
            do {
                try wait(until: "redis-server on port \(port) answers PING") {
                    if process.exitStatus != nil { throw TestSupportError("redis-server on port \(port) exited at once") }
                    return (try? Self.command(["PING"], port: port, password: password)) == "PONG"
                }
                self.port = port
                self.arguments = arguments
                self.process.withLock { $0 = process }
                return
            } catch {
                let exitedAtOnce = process.exitStatus != nil
                process.stop(signal: SIGKILL)
                attempt += 1
                guard attempt < 3, exitedAtOnce else {
                    try? FileManager.default.removeItem(atPath: directory)
                    throw error
                }
            }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The cluster bus port given with `--cluster-port`, if any.
    public var clusterPort: Int? {
        arguments.firstIndex(of: "--cluster-port").flatMap { Int(arguments[$0 + 1]) }
    }

    /// `redis://127.0.0.1:PORT/DB`.
    public func url(database: Int = 0) -> String { "redis://127.0.0.1:\(port)/\(database)" }

    public static func executable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/bin"]
        for directory in directories {
            let candidate = "\(directory)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestSupportError(
            "redis-server is not installed, and this needs a real Redis: run scripts/install-deps.sh "
                + "(or `apt-get install redis-server`). Tests that need Redis fail instead of skipping.")
    }

    /// Starts the server (again, on the same port) and waits until it answers PING.
    public func start() throws {
        let process = try ChildProcess(executable: try Self.executable(), arguments: arguments)
        self.process.withLock { $0 = process }
        try wait(until: "redis-server on port \(port) answers PING") { (try? self.command(["PING"], password: self.password)) == "PONG" }
    }

    /// Stops the server the way a crash would (SIGKILL), and waits until it is gone.
    public func kill() {
        process.withLock { $0.take() }?.stop(signal: SIGKILL)
    }

    /// Sends `signal` without waiting (`SIGSTOP` freezes the server, `SIGCONT` thaws it).
    public func signal(_ signal: Int32) {
        process.withLock { $0 }?.signal(signal)
    }

    /// Stops the server.
    public func stop() {
        process.withLock { $0.take() }?.stop(signal: SIGTERM)
    }

    /// Runs one command and returns its reply as text: the status or bulk string, the integer, `nil` for a
    /// null, `ERR …` for an error. `password` authenticates first; `database` is selected first.
    @discardableResult
    public func command(_ arguments: [String], password: String? = nil, database: Int = 0) throws -> String {
        try Self.command(arguments, port: port, password: password, database: database)
    }

    public static func command(_ arguments: [String], port: Int, password: String? = nil, database: Int = 0) throws -> String {
        var request: [UInt8] = []
        var expected = 1
        func encode(_ command: [String]) {
            request += Array("*\(command.count)\r\n".utf8)
            for argument in command { request += Array("$\(argument.utf8.count)\r\n\(argument)\r\n".utf8) }
        }
        if let password {
            encode(["AUTH", password])
            expected += 1
        }
        if database != 0 {
            encode(["SELECT", String(database)])
            expected += 1
        }
        encode(arguments)
        let reply = try Sockets.exchange(port: port, request: request) { Self.replies(in: $0)?.count ?? 0 >= expected }
        return Self.replies(in: reply)!.last!
    }

    /// The whole replies in `bytes`, as text; an array's elements are joined by spaces (`127.0.0.1 6380`,
    /// nested arrays flattened), and one that is not whole yet ends the list.
    static func replies(in bytes: [UInt8]) -> [String]? {
        var replies: [String] = []
        var index = 0
        func line() -> String? {
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: "\n")), end > index else { return nil }
            let text = String(decoding: bytes[index..<end - 1], as: UTF8.self)
            index = end + 1
            return text
        }
        func element() -> String? {
            guard let header = line() else { return nil }
            switch header.first {
            case "+", ":", "-": return String(header.dropFirst())
            case "$":
                let length = Int(header.dropFirst()) ?? -1
                if length < 0 { return "nil" }
                guard bytes.count >= index + length + 2 else { return nil }
                defer { index += length + 2 }
                return String(decoding: bytes[index..<index + length], as: UTF8.self)
            case "*":
                let count = Int(header.dropFirst()) ?? -1
                if count < 0 { return "nil" }
                var parts: [String] = []
                for _ in 0..<count {
                    guard let part = element() else { return nil }
                    parts.append(part)
                }
                return parts.joined(separator: " ")
            default:
                return nil
            }
        }
        while index < bytes.count {
            let start = index
            guard let reply = element() else {
                index = start
                return replies
            }
            replies.append(reply)
        }
        return replies
    }
}

/// Polls `condition` until it holds, failing after `timeout`: a test waits on a condition, never on a sleep.
public func wait(
    until description: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool
) throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return }
        Thread.sleep(forTimeInterval: 0.01)
    }
    throw TestSupportError("timed out after \(timeout) waiting until \(description)")
}

/// The async form of `wait(until:)`.
public func eventually(
    _ description: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TestSupportError("timed out after \(timeout) waiting until \(description)")
}
