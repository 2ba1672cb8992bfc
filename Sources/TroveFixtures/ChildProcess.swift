#if canImport(Glibc)
public import Glibc
#elseif canImport(Darwin)
public import Darwin
#endif

import Synchronization

/// A process a test starts and stops: `posix_spawn` and `waitpid`, nothing else.
///
/// Foundation's `Process.waitUntilExit()` spins in a run loop when it is called from another thread than the
/// one that launched the process (as Swift concurrency does), so fixtures use this instead.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// The exit status once the process has been reaped: it can be reaped only once.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; its output goes to /dev/null unless `inheritOutput`, or to
    /// `outputFile`. `environment` adds to (or replaces) the test process's variables.
    public init(
        executable: String, arguments: [String], inheritOutput: Bool = false, outputFile: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let outputFile {
            posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else if !inheritOutput {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        // SwiftNIO opens its sockets without close-on-exec, so a child would inherit every socket the test
        // process has open at that moment (another test's origin listening, a Trove's Redis connections) and
        // hold it open after the test closes it: an origin "stopped" by a test kept listening inside a
        // redis-server started at the same time, and requests to it hung instead of being refused.
        guard let addCloseFrom = Self.addCloseFrom, addCloseFrom(&actions, 3) == 0 else {
            throw TestSupportError("this C library cannot close inherited descriptors in posix_spawn (glibc 2.34 or later can)")
        }
        // The spawning thread may block signals (libdispatch's workers block SIGTERM): give the child an empty
        // mask and default handlers, or it could never be stopped.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var variables: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") { variables[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            entry += 1
        }
        variables.merge(environment) { _, new in new }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw TestSupportError("cannot start \(executable): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), found at run time: Swift's Glibc
    /// module leaves out what glibc declares only for `_GNU_SOURCE`.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Sends `signal` and waits until the process has exited.
    public func stop(signal: Int32 = SIGTERM) {
        guard exitStatus == nil else { return }
        kill(pid, signal)
        _ = waitForExit()
    }

    /// Sends a signal without waiting.
    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the process to exit and returns its exit status (or 128 + the signal that killed it).
    public func waitForExit() -> Int32 {
        reap(blocking: true) ?? -1
    }

    /// The exit status if the process has exited, nil while it runs; never blocks.
    public var exitStatus: Int32? {
        reap(blocking: false)
    }

    private func reap(blocking: Bool) -> Int32? {
        reaped.withLock { reaped in
            if let reaped { return reaped }
            var status: Int32 = 0
            var result: pid_t
            repeat {
                result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            } while result == -1 && errno == EINTR
            guard result == pid else { return nil }
            let signal = status & 0x7F
            reaped = signal == 0 ? (status >> 8) & 0xFF : 128 + signal
            return reaped
        }
    }
}
