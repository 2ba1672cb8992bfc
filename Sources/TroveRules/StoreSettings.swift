
/// Where entries are kept.
public struct StoreSettings: Sendable {
    /// Redis, when configured; the in-process memory store otherwise.
    public let redis: RedisSettings?
    /// Prefix of every Redis key Trove writes, so several applications can share one Redis.
    public let namespace: String
    /// Bytes the memory store may hold before it evicts the least recently used entries.
    public let memoryBytes: Int
    /// Cache keys longer than this many bytes are shortened: a prefix, `#`, and the SHA-256 of the whole key.
    public let maxKeyLength: Int
}

/// How to reach Redis.
public struct RedisSettings: Sendable {
    public let url: ConfigString
    /// The parsed URL; nil when it comes from an environment variable that is not set.
    public let endpoint: RedisEndpoint?
    public let connectTimeout: Duration
    /// After this long without an answer, a command fails and the request goes to the origin.
    public let commandTimeout: Duration
}
