import Foundation

/// A real `redis-server` speaking TLS on a free loopback port (and plain TCP on another, for the fixture's own
/// commands), with certificates made for the test by `openssl`: a CA, a server certificate it signed for the name
/// `localhost` only (not for 127.0.0.1: connecting to the address, the name to check is then `server_name`'s, as
/// with managed Redis behind a DNS name), a client certificate it signed, and another CA that signed nothing Redis
/// shows.
public final class TLSRedisServer: Sendable {
    public let redis: RedisServer
    public let tlsPort: Int
    /// The folder holding `ca.pem`, `server.pem`, `server.key`, `other-ca.pem`, `client.pem`, `client.key`.
    public let directory: String

    /// `clientCertificates`: Redis requires a client certificate signed by the CA (`tls-auth-clients yes`).
    public init(clientCertificates: Bool = false) throws {
        let directory = NSTemporaryDirectory() + "trove-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        try Self.makeCertificates(in: directory)
        let tlsPort = try Sockets.freePort()
        self.tlsPort = tlsPort
        redis = try RedisServer(extraArguments: [
            "--tls-port", String(tlsPort), "--tls-cert-file", directory + "/server.pem", "--tls-key-file", directory + "/server.key",
            "--tls-ca-cert-file", directory + "/ca.pem", "--tls-auth-clients", clientCertificates ? "yes" : "no",
        ])
    }

    deinit {
        redis.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `rediss://127.0.0.1:TLSPORT/DB`.
    public func url(database: Int = 0) -> String { "rediss://127.0.0.1:\(tlsPort)/\(database)" }

    public func path(_ file: String) -> String { directory + "/" + file }

    static func makeCertificates(in directory: String) throws {
        func file(_ name: String) -> String { directory + "/" + name }
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + key + ["-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "2", "-subj", "/CN=Trove test CA"])
        try openssl(["req", "-x509"] + key + ["-keyout", file("other-ca.key"), "-out", file("other-ca.pem"), "-days", "2", "-subj", "/CN=Another CA"])
        try "subjectAltName=DNS:localhost\n".write(toFile: file("server.ext"), atomically: true, encoding: .utf8)
        for name in ["server", "client"] {
            try openssl(["req"] + key + ["-keyout", file("\(name).key"), "-out", file("\(name).csr"),
                "-subj", "/CN=\(name == "server" ? "localhost" : "trove")"])
            try openssl(["x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial",
                "-out", file("\(name).pem"), "-days", "2"] + (name == "server" ? ["-extfile", file("server.ext")] : []))
        }
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = try ChildProcess(executable: "/usr/bin/openssl", arguments: arguments)
        let status = process.waitForExit()
        guard status == 0 else { throw TestSupportError("openssl \(arguments.joined(separator: " ")) failed (\(status)); is openssl installed?") }
    }
}
