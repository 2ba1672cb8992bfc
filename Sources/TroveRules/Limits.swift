internal import TroveHTTP
/// What one client, or all of them together, may cost a running Trove: connections, time, and bytes held in
/// memory (`limits:` in the rules file). Every value has a default that is safe in front of a public network.
///
/// Timeouts follow nginx's: a request's head must arrive whole within `headerTimeout` of its first byte (or of
/// the connection opening), a body may pause at most `bodyTimeout` between two reads, an idle keep-alive
/// connection is closed after `keepAliveTimeout`, and a client that reads nothing of its answer for
/// `sendTimeout` is disconnected.
public struct Limits: Sendable, Equatable {
    /// Client connections to the proxy at once; past it, new ones are accepted and closed at once (the admin
    /// API has its own listener and keeps answering).
    public var maxConnections = 10_000
    public var headerTimeout: Duration = .seconds(10)
    public var bodyTimeout: Duration = .seconds(30)
    public var keepAliveTimeout: Duration = .seconds(60)
    public var sendTimeout: Duration = .seconds(60)
    /// One request's body; bigger ones are answered 413.
    public var maxRequestBody = 32 << 20
    /// One origin answer held while passing it on; bigger ones are answered 502.
    public var maxResponseBody = 256 << 20
    /// Request bodies held at once, all connections together; past it, 503 and close.
    public var requestBodyBudget = 256 << 20
    /// Origin answers being received, and large answers waiting to be written to clients, all requests together;
    /// past it, 503 (or a stale entry).
    public var responseBodyBudget = 1 << 30
    /// Complete requests one connection may have waiting behind the one being answered; past it, Trove stops
    /// reading from that connection until it catches up.
    public var maxPipelined = 16
    /// Counters one purge may name (tags and keys, after a webhook's expansion); larger purges are refused
    /// with a message, never half-applied.
    public var maxPurge = 10_000
    /// A gzip entry decoded for a client that does not take gzip may grow to at most this; past it, 502.
    public var maxDecodedBody = 64 << 20
    /// An answer that is not stored (pass, bypass, writes) is passed on as it arrives; at most this many of its
    /// bytes are held between the origin and the client, whatever its size (the origin's transfer pauses past it).
    public var streamWindow = 256 << 10

    public init() {}
}
