internal import Foundation

/// Where an origin is: scheme, host, port and base path, parsed from its URL.
public struct OriginAddress: Sendable, Equatable {
    public let scheme: String
    public let host: String
    public let port: Int
    /// Never ends with `/`; empty for none.
    public let basePath: String

    /// Parses `http(s)://host[:port][/base]`; the error says what is wrong. `credentialsVariable` is the
    /// environment variable suggested when the URL holds credentials.
    public static func parse(_ text: String, credentialsVariable: String = "ORIGIN_AUTHORIZATION") -> Result<OriginAddress, OriginURLError> {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            return .failure(OriginURLError(message: "'\(text)' is not an http:// or https:// URL with a host"))
        }
        if components.query != nil || components.fragment != nil {
            return .failure(OriginURLError(message: "the origin URL must not have a query or fragment; Trove forwards the client's"))
        }
        if components.user != nil || components.password != nil {
            return .failure(OriginURLError(
                message: "credentials must not be written in the URL; send them with headers: {Authorization: {env: \(credentialsVariable)}}"))
        }
        var basePath = components.percentEncodedPath
        while basePath.hasSuffix("/") { basePath.removeLast() }
        return .success(OriginAddress(
            scheme: scheme, host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host,
            port: components.port ?? (scheme == "https" ? 443 : 80), basePath: basePath))
    }
}

public struct OriginURLError: Error, Sendable {
    public let message: String
}

/// An HTTP service Trove forwards to.
// A class: plans and state machines hold it for every request, and copying a reference is one retain where copying
// its fields is dozens. Immutable, so sharing it is safe.

public final class Origin: Sendable {
    public let name: String
    /// `http` or `https`.
    public let scheme: String
    public let host: String
    public let port: Int
    /// Prepended to every forwarded path (`/admin/api/2024-01`); empty for none. Never ends with `/`.
    public let basePath: String
    public let connectTimeout: Duration
    /// The whole exchange, from connecting to the last byte of the answer.
    public let timeout: Duration
    /// Headers added to every request sent to this origin (replacing any the client sent).
    public let headers: [(name: String, value: ConfigString)]
    /// Send the client's `Host` instead of the origin's.
    public let preserveHost: Bool
    /// How much of the origin Trove may use at once; nil fields mean no limit.
    public let protection: OriginProtection

    init(name: String, scheme: String, host: String, port: Int, basePath: String, connectTimeout: Duration, timeout: Duration, headers: [(name: String, value: ConfigString)], preserveHost: Bool, protection: OriginProtection) {
        self.name = name
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.headers = headers
        self.preserveHost = preserveHost
        self.protection = protection
    }

    /// `scheme://host:port` plus the base path.
    public var url: String {
        let defaultPort = scheme == "https" ? 443 : 80
        let portText = port == defaultPort ? "" : ":\(port)"
        return "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)\(portText)\(basePath)"
    }

    /// The same origin at another address.
    func moved(to address: OriginAddress) -> Origin {
        Origin(
            name: name, scheme: address.scheme, host: address.host, port: address.port, basePath: address.basePath,
            connectTimeout: connectTimeout, timeout: timeout, headers: headers, preserveHost: preserveHost, protection: protection)
    }

    /// The origin's value for the `Host` header.
    public var hostHeader: String {
        let defaultPort = scheme == "https" ? 443 : 80
        return port == defaultPort ? host : "\(host):\(port)"
    }
}

/// Limits that keep Trove from overwhelming an origin: requests at once, requests per second, and a bounded
/// queue for what exceeds them. Past the queue, Trove answers from a stale entry, or 503 with `Retry-After`.
public struct OriginProtection: Sendable, Equatable {
    /// Requests in flight to the origin at most; nil for no cap.
    public let maxConcurrency: Int?
    /// Requests per second, refilled continuously; nil for no rate limit.
    public let rate: Double?
    /// Requests that may go at once after a quiet period (the token bucket's size).
    public let burst: Int
    /// Requests that may wait for their turn; past it they are answered at once.
    public let queue: Int
    /// How long a request may wait in the queue.
    public let queueTimeout: Duration

    public static let unlimited = OriginProtection(maxConcurrency: nil, rate: nil, burst: 1, queue: 0, queueTimeout: .zero)

    public init(maxConcurrency: Int?, rate: Double?, burst: Int, queue: Int, queueTimeout: Duration) {
        self.maxConcurrency = maxConcurrency
        self.rate = rate
        self.burst = burst
        self.queue = queue
        self.queueTimeout = queueTimeout
    }

    public var isUnlimited: Bool { maxConcurrency == nil && rate == nil }
}

/// One entry of `routes:`: what requests it matches and what Trove does with them.
// A class: plans and state machines hold it for every request, and copying a reference is one retain where copying
// its fields is dozens. Immutable, so sharing it is safe.
