
/// The admin listener: purge, explain, health, stats.
public struct AdminSettings: Sendable {
    public let listen: ListenAddress
    /// The bearer token callers must present; nil only when `allowUnauthenticated` is set.
    public let token: ConfigString?
    /// Run without a token; only accepted on a loopback listener.
    public let allowUnauthenticated: Bool
}
