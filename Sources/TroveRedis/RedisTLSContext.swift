internal import NIOCore
internal import NIOSSL

/// How a `rediss://` connection is made and checked, ready for every connection to use: swift-nio-ssl's context
/// (trusted certificates, an optional client certificate, verification) and the name the server must prove.
public struct RedisTLSContext: Sendable {
    let context: NIOSSLContext
    /// `store.tls.server_name`: sent as SNI and checked against every server's certificate, whatever its
    /// address; nil to use each server's own host name.
    let serverName: String?

    /// What `store.tls` says, as PEM texts. Throws a sentence saying what is wrong (a PEM that cannot be read).
    public init(caPEM: String?, certificatePEM: String?, keyPEM: String?, serverName: String?, verify: Bool) throws(RedisTLSError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        do {
            if let caPEM {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
            }
        } catch {
            throw RedisTLSError(message: "store.tls.ca_file holds no certificate swift-nio-ssl can read: \(error)")
        }
        do {
            if let certificatePEM, let keyPEM {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
            }
        } catch {
            throw RedisTLSError(message: "store.tls.cert_file or key_file cannot be read: \(error)")
        }
        configuration.certificateVerification = verify ? .fullVerification : .none
        do {
            self.context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisTLSError(message: "cannot set TLS up for Redis: \(error)")
        }
        self.serverName = serverName
    }

    static func isIPAddress(_ text: String) -> Bool {
        (try? SocketAddress(ipAddress: text, port: 0)) != nil
    }

    /// The handler that speaks TLS with `host`, first in a connection's pipeline. The certificate must name
    /// `server_name` when given, else `host`; an IP address is sent as no SNI and checked against the
    /// certificate's IP names (what a master the sentinels name by address has).
    func makeHandler(host: String) throws -> NIOSSLClientHandler {
        let name = serverName ?? host
        return try NIOSSLClientHandler(context: context, serverHostname: Self.isIPAddress(name) ? nil : name)
    }

    /// A sentence for an error the TLS layer reported, or nil when it is not one.
    static func describe(_ error: any Error) -> String? {
        let reason: String
        switch error {
        case let tls as NIOSSLError: reason = "\(tls)"
        case let extra as NIOSSLExtraError: reason = "\(extra)"
        case let boring as BoringSSLError: reason = "\(boring)"
        default: return nil
        }
        return "TLS handshake with Redis failed: \(reason) (check store.tls: ca_file, server_name, cert_file; and the port: "
            + "managed Redis often speaks TLS on 6380)"
    }
}

public struct RedisTLSError: Error, Sendable {
    public let message: String
}
