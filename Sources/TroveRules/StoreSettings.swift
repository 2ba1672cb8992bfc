internal import TroveHTTP

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
    /// The in-process tier in front of Redis (`store.local`); nil without one.
    public var local: LocalTier?

    public init(redis: RedisSettings?, namespace: String, memoryBytes: Int, maxKeyLength: Int, local: LocalTier? = nil) {
        self.redis = redis
        self.namespace = namespace
        self.memoryBytes = memoryBytes
        self.maxKeyLength = maxKeyLength
        self.local = local
    }
}

/// `store.local`: how much an in-process tier in front of Redis holds, and how it learns that a copy was purged.
public struct LocalTier: Sendable, Equatable {
    /// How a tier hit checks the purge counters the copy recorded.
    public enum Mode: String, Sendable, CaseIterable {
        /// Read from Redis on every hit (one small round trip): a purge answered is never followed by a stale
        /// answer on any instance.
        case strict
        /// Remembered, and kept current by Redis (`CLIENT TRACKING … BCAST`): no round trip; another instance may
        /// serve a purged copy until Redis' invalidation reaches it (see docs/architecture.md, "Two tiers").
        case tracked
    }

    /// `size`: bytes of entries the tier may hold.
    public var bytes: Int
    public var mode: Mode

    public init(bytes: Int, mode: Mode = .strict) {
        self.bytes = bytes
        self.mode = mode
    }

    /// For `trove check` and the startup banner: `in-process tier 64 MiB (strict)`.
    public var summary: String { "in-process tier \(Units.format(bytes: bytes)) (\(mode.rawValue))" }
}

/// How to reach Redis.
public struct RedisSettings: Sendable {
    public let url: ConfigString
    /// The parsed URL; nil when it comes from an environment variable that is not set.
    public let endpoint: RedisEndpoint?
    public let connectTimeout: Duration
    /// After this long without an answer, a command fails and the request goes to the origin.
    public let commandTimeout: Duration
    /// How a `rediss://` connection is checked (`store.tls`); the system's trust and full verification when the
    /// file says nothing.
    public var tls = RedisTLS()
    /// How Trove proves itself to the sentinels (`store.sentinel`); nothing when they ask for nothing.
    public var sentinelAuth = RedisSentinelAuth()

    /// Where Redis is and how Trove reaches it, in one line (`trove check`, the startup banner).
    public var summary: String {
        var endpointText = endpoint?.description ?? url.display
        if let endpoint, case .sentinel(let master) = endpoint.topology {
            let count = endpoint.nodes.count
            endpointText += " (master '\(master)' as \(count == 1 ? "the sentinel" : "the \(count) sentinels") name it, "
                + "followed through failovers)"
        }
        if let endpoint, case .cluster = endpoint.topology {
            let count = endpoint.nodes.count
            endpointText += " (a Redis Cluster, its slots read from \(count == 1 ? "this seed" : "these \(count) seeds"))"
        }
        guard endpoint?.tls == true else { return "redis \(endpointText)" }
        var how: [String] = [tls.caPEM == nil ? "the system's CAs" : "its CA file"]
        if let name = tls.serverName { how.append("name \(name)") }
        if tls.certificatePEM != nil { how.append("a client certificate") }
        if !tls.verify { how = ["certificate NOT checked"] }
        return "redis \(endpointText) over TLS (\(how.joined(separator: ", ")))"
    }
}

/// `store.sentinel`: the sentinels' own credentials (`requirepass` in sentinel.conf).
public struct RedisSentinelAuth: Sendable, Equatable {
    public var username: String?
    public var password: String?

    public init() {}
}

/// `store.tls`: how Trove checks a TLS Redis and proves itself to it. PEM texts, read when the rules are loaded.
public struct RedisTLS: Sendable, Equatable {
    /// Certificates to trust instead of the system's (`ca_file`).
    public var caPEM: String?
    /// A client certificate and its key, for Redis set to `tls-auth-clients yes` (`cert_file`, `key_file`).
    public var certificatePEM: String?
    public var keyPEM: String?
    /// The name the server's certificate must carry, when not the URL's host (`server_name`); also sent as SNI.
    public var serverName: String?
    /// Check the server's certificate (`verify`; on unless the file says `false`).
    public var verify = true

    public init() {}
}
