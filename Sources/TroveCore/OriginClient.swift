public import TroveHTTP
/// Sends requests to origins. The server uses libcurl (`CurlOriginClient`); tests may script one.
///
/// `completion` may be called on any thread (libcurl's, for the real client); callers hop back to their own.
public protocol OriginClient<Body>: Sendable {
    associatedtype Body: Sendable

    func send(_ request: OriginRequest<Body>, completion: @escaping @Sendable (Result<OriginResponse<Body>, OriginError>) -> Void)
}

/// One request to an origin, fully prepared: URL, headers as they go out, body for writes.
public struct OriginRequest<Body: Sendable>: Sendable {
    /// The origin's name from the rules file, for errors and logs.
    public var origin: String
    public var method: String
    public var url: String
    public var headers: [Header]
    public var body: Body?
    public var connectTimeout: Duration
    public var timeout: Duration
    /// Answers with a bigger body fail with `OriginError.tooLarge` instead of filling memory.
    public var maxResponseBytes: Int
    /// Shared by every answer being received, up to `budgetCapacity` bytes in all; an answer that does not fit
    /// fails with `OriginError.overloaded`. Nil: no shared bound.
    public var budget: ByteBudget?
    public var budgetCapacity: Int = .max
    /// Set for an answer that is not stored: it is handed over as it arrives, through the stream, with no size
    /// limit and no budget (the stream's window bounds it); the completion then carries an empty body and the
    /// number of bytes streamed.
    public var stream: OriginStream<Body>?
    /// Set for a write forwarded as its body arrives: the body is read from here, not from `body`.
    public var upload: OriginUpload?

    public init(
        origin: String, method: String, url: String, headers: [Header], body: Body?, connectTimeout: Duration,
        timeout: Duration, maxResponseBytes: Int
    ) {
        self.origin = origin
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// An origin's answer.
public struct OriginResponse<Body: Sendable>: Sendable {
    public var status: Int
    /// As received, hop-by-hop headers included; `HeaderPolicy` filters them.
    public var headers: [Header]
    public var body: Body
    public var bodyLength: Int

    public init(status: Int, headers: [Header], body: Body, bodyLength: Int) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyLength = bodyLength
    }
}

/// Why an origin gave no answer.
public struct OriginError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// No connection could be made (refused, DNS, connect timeout): the client gets 502.
        case unreachable
        /// Connected, but no whole answer within the origin's timeout: the client gets 504.
        case timeout
        /// The answer was bigger than Trove will hold: 502.
        case tooLarge
        /// The origin broke the protocol or the connection: 502.
        case failed
        /// Trove holds as many answers as its budget allows (`limits.response_body_budget`): 503.
        case overloaded
    }

    public let kind: Kind
    /// The origin's name.
    public let origin: String
    /// What went wrong, in words (libcurl's message, for the real client).
    public let reason: String

    public init(kind: Kind, origin: String, reason: String) {
        self.kind = kind
        self.origin = origin
        self.reason = reason
    }

    /// The status Trove answers with.
    public var status: Int {
        switch kind {
        case .timeout: 504
        case .overloaded: 503
        case .unreachable, .tooLarge, .failed: 502
        }
    }

    public var description: String {
        switch kind {
        case .unreachable: "origin '\(origin)' is unreachable: \(reason)"
        case .timeout: "origin '\(origin)' did not answer in time: \(reason)"
        case .tooLarge: "origin '\(origin)' answered with more than Trove will hold: \(reason)"
        case .failed: "origin '\(origin)' failed: \(reason)"
        case .overloaded: "Trove is holding as many answers as it may (\(reason)); try again shortly"
        }
    }
}
