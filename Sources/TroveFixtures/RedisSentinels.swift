import Foundation
import Synchronization

/// A master, its replica and sentinels watching them (`redis-server --sentinel`), all real and on free loopback
/// ports, started for a test and stopped by it: what `redis-sentinel://` URLs point at.
public final class RedisSentinels: Sendable {
    /// The name the sentinels monitor the master under.
    public let name = "mymaster"
    /// The two data servers; which one is the master changes with failovers (`masterPort`).
    public let servers: [RedisServer]
    public let sentinelPorts: [Int]
    /// With `tls`: the ports each server and sentinel speaks TLS on (what the sentinels name and the URL gives);
    /// the plain ports stay for the fixture's own commands.
    public let serverTLSPorts: [Int]
    public let sentinelTLSPorts: [Int]
    private let sentinels: Mutex<[ChildProcess?]>
    private let directory: String

    /// Starts a master, one replica, and `sentinels` sentinels (quorum 1), and waits until the replica is in sync
    /// and every sentinel knows it: from then on a failover has a replica to promote. `downAfter` is how long
    /// the master must be silent before a sentinel fails it over by itself.
    ///
    /// `tls`: every server and sentinel also speaks TLS (certificates as `TLSRedisServer` makes them, in `path`),
    /// replication and the sentinels' own connections use it, and the sentinels name the master's TLS port.
    public init(sentinels count: Int = 1, downAfter: Duration = .seconds(1), tls: Bool = false) throws {
        let directory = NSTemporaryDirectory() + "trove-sentinels-\(UUID().uuidString)"
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if tls { try TLSRedisServer.makeCertificates(in: directory) }
        let tlsPorts = tls ? [try Sockets.freePort(), try Sockets.freePort()] : []
        func tlsArguments(_ index: Int) -> [String] {
            guard tls else { return [] }
            return ["--tls-port", String(tlsPorts[index]), "--tls-cert-file", directory + "/server.pem", "--tls-key-file",
                directory + "/server.key", "--tls-ca-cert-file", directory + "/ca.pem", "--tls-auth-clients", "no",
                "--tls-replication", "yes"]
        }
        let master = try RedisServer(extraArguments: tlsArguments(0))
        let replica = try RedisServer(extraArguments: tlsArguments(1) + ["--replicaof", "127.0.0.1", String(tls ? tlsPorts[0] : master.port)])
        servers = [master, replica]
        serverTLSPorts = tlsPorts
        try wait(until: "the replica on port \(replica.port) is in sync with its master") {
            (try? replica.command(["INFO", "replication"]))?.contains("master_link_status:up") == true
        }
        var processes: [ChildProcess?] = []
        var ports: [Int] = []
        var sentinelTLS: [Int] = []
        for index in 0..<count {
            let (process, port, tlsPort) = try Self.startSentinel(directory: directory + "/\(index)", certificates: tls ? directory : nil,
                masterPort: tls ? tlsPorts[0] : master.port, name: name, downAfter: downAfter)
            processes.append(process)
            ports.append(port)
            if let tlsPort { sentinelTLS.append(tlsPort) }
        }
        sentinels = Mutex(processes)
        sentinelPorts = ports
        sentinelTLSPorts = sentinelTLS
        for port in ports {
            try wait(until: "the sentinel on port \(port) knows the replica", timeout: .seconds(20)) {
                let replicas = (try? RedisServer.command(["SENTINEL", "replicas", name], port: port)) ?? ""
                return replicas.contains("flags slave") && replicas.contains("master-link-status ok")
            }
        }
    }

    deinit {
        for process in sentinels.withLock({ $0 }) { process?.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `redis-sentinel://127.0.0.1:P1,127.0.0.1:P2/mymaster/DB`, the sentinels in the order given;
    /// `rediss-sentinel://` and their TLS ports when they speak TLS.
    public func url(database: Int = 0, order: [Int]? = nil) -> String {
        let tls = !sentinelTLSPorts.isEmpty
        let ports = (order ?? Array(sentinelPorts.indices)).map { tls ? sentinelTLSPorts[$0] : sentinelPorts[$0] }
        return "\(tls ? "rediss" : "redis")-sentinel://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(name)/\(database)"
    }

    /// A file the certificates were written to (`ca.pem`), with `tls`.
    public func path(_ file: String) -> String { directory + "/" + file }

    /// The master's port, as the first running sentinel names it.
    public func masterPort() throws -> Int {
        for (index, port) in sentinelPorts.enumerated() where sentinels.withLock({ $0[index] }) != nil {
            let reply = try RedisServer.command(["SENTINEL", "get-master-addr-by-name", name], port: port)
            guard let text = reply.split(separator: " ").last, let master = Int(text) else {
                throw TestSupportError("the sentinel on port \(port) named no master: \(reply)")
            }
            return master
        }
        throw TestSupportError("no sentinel runs")
    }

    /// The data server that is the master now.
    public func master() throws -> RedisServer {
        let port = try masterPort()
        // The sentinels name the TLS port when the servers speak TLS, the plain one otherwise.
        let ports = serverTLSPorts.isEmpty ? servers.map(\.port) : serverTLSPorts
        guard let index = ports.firstIndex(of: port) else {
            throw TestSupportError("port \(port) is no server of ours")
        }
        return servers[index]
    }

    /// The data server that is not the master now.
    public func replica() throws -> RedisServer {
        let master = try master()
        guard let server = servers.first(where: { $0 !== master }) else { throw TestSupportError("no replica") }
        return server
    }

    /// `SENTINEL FAILOVER`: the replica becomes the master (and the old master its replica) without anything
    /// failing. Returns once the sentinels name the new master and it says it is one.
    public func failover() throws {
        let before = try masterPort()
        _ = try RedisServer.command(["SENTINEL", "FAILOVER", name], port: sentinelPorts[0])
        try waitForMaster(other: before)
    }

    /// Waits until the sentinels name a master other than `port`, and it says it is the master.
    public func waitForMaster(other port: Int, timeout: Duration = .seconds(30)) throws {
        try wait(until: "the sentinels name a master other than port \(port)", timeout: timeout) {
            guard let now = try? masterPort(), now != port, let server = try? master() else { return false }
            return (try? server.command(["ROLE"]))?.hasPrefix("master") == true
        }
    }

    /// Stops one sentinel (SIGKILL).
    public func killSentinel(_ index: Int) {
        sentinels.withLock { $0[index].take() }?.stop(signal: SIGKILL)
    }

    /// A sentinel on a free port, with its own configuration file (sentinels rewrite it). A port taken between
    /// being found and bound makes the sentinel exit at once: it is started again on another, up to three times.
    private static func startSentinel(
        directory: String, certificates: String?, masterPort: Int, name: String, downAfter: Duration
    ) throws -> (ChildProcess, Int, Int?) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var attempt = 0
        while true {
            let port = try Sockets.freePort()
            let tlsPort = certificates == nil ? nil : try Sockets.freePort()
            var tls = ""
            if let certificates, let tlsPort {
                tls = """
                    tls-port \(tlsPort)
                    tls-cert-file \(certificates)/server.pem
                    tls-key-file \(certificates)/server.key
                    tls-ca-cert-file \(certificates)/ca.pem
                    tls-auth-clients no
                    tls-replication yes

                    """
            }
            let configuration = tls + """
                port \(port)
                bind 127.0.0.1
                protected-mode no
                daemonize no
                loglevel warning
                dir \(directory)
                sentinel monitor \(name) 127.0.0.1 \(masterPort) 1
                sentinel down-after-milliseconds \(name) \(downAfter.components.seconds * 1000 + downAfter.components.attoseconds / 1_000_000_000_000_000)
                sentinel failover-timeout \(name) 10000
                sentinel parallel-syncs \(name) 1

                """
            let file = directory + "/sentinel.conf"
            try configuration.write(toFile: file, atomically: true, encoding: .utf8)
            let process = try ChildProcess(executable: try RedisServer.executable(), arguments: [file, "--sentinel"])
            do {
                try wait(until: "the sentinel on port \(port) answers PING") {
                    if process.exitStatus != nil { throw TestSupportError("the sentinel on port \(port) exited at once") }
                    return (try? RedisServer.command(["PING"], port: port)) == "PONG"
                }
                return (process, port, tlsPort)
            } catch {
                let exitedAtOnce = process.exitStatus != nil
                process.stop(signal: SIGKILL)
                attempt += 1
                guard attempt < 3, exitedAtOnce else { throw error }
            }
        }
    }
}
