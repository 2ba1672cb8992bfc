public import TroveHTTP

/// A parsed Redis URL: one server (`redis://[[user]:password@]host[:port][/db]`), or the sentinels that watch a
/// master (`redis-sentinel://[[user]:password@]h1:26379,h2:26379/mymaster[/db]`); the `rediss` forms speak TLS.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// How the servers named are used.
    public enum Topology: Sendable, Equatable {
        /// The one server named is the Redis Trove uses.
        case standalone
        /// The servers named are sentinels; the master they watch under this name is the Redis Trove uses.
        case sentinel(master: String)
        /// The servers named are nodes of a Redis Cluster (any reachable ones: seeds); its masters are the Redis.
        case cluster
    }

    /// A server's host and port, as the URL names it.
    public typealias Node = ServerAddress

    public let topology: Topology
    /// The server (standalone) or the sentinels, in the URL's order; never empty.
    public let nodes: [Node]
    public let database: Int
    /// Credentials for the Redis that holds the entries (not for the sentinels: `store.sentinel`).
    public let username: String?
    public let password: String?
    /// `rediss://`: connections speak TLS (`store.tls` says how they are checked).
    public let tls: Bool

    public init(host: String, port: Int, database: Int = 0, username: String? = nil, password: String? = nil, tls: Bool = false) {
        self.init(topology: .standalone, nodes: [Node(host: host, port: port)], database: database, username: username,
            password: password, tls: tls)
    }

    public init(topology: Topology, nodes: [Node], database: Int = 0, username: String? = nil, password: String? = nil, tls: Bool = false) {
        precondition(!nodes.isEmpty, "a Redis endpoint names at least one server")
        self.topology = topology
        self.nodes = nodes
        self.database = database
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// The master's name, for sentinels.
    public var masterName: String? {
        if case .sentinel(let master) = topology { master } else { nil }
    }

    /// The first server named (the only one, standalone).
    public var host: String { nodes[0].host }
    public var port: Int { nodes[0].port }

    /// The URL's scheme.
    public var scheme: String {
        switch topology {
        case .standalone: tls ? "rediss" : "redis"
        case .sentinel: tls ? "rediss-sentinel" : "redis-sentinel"
        case .cluster: tls ? "rediss-cluster" : "redis-cluster"
        }
    }

    /// The URL without its password.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        let servers = nodes.map(\.description).joined(separator: ",")
        switch topology {
        case .standalone: return "\(scheme)://\(auth)\(servers)/\(database)"
        case .sentinel(let master): return "\(scheme)://\(auth)\(servers)/\(master)/\(database)"
        case .cluster: return "\(scheme)://\(auth)\(servers)"
        }
    }

    static let schemes: [(prefix: String, sentinel: Bool, cluster: Bool, tls: Bool)] = [
        ("redis://", false, false, false), ("rediss://", false, false, true),
        ("redis-sentinel://", true, false, false), ("rediss-sentinel://", true, false, true),
        ("redis-cluster://", false, true, false), ("rediss-cluster://", false, true, true),
    ]

    /// Parses a Redis URL; the error says what is wrong with it.
    public static func parse(_ text: String) -> Result<RedisEndpoint, RedisURLError> {
        guard let scheme = schemes.first(where: { text.hasPrefix($0.prefix) }) else {
            return .failure(RedisURLError(message: "'\(text)' is not a Redis URL; write redis://host:6379/0 (rediss:// for TLS), "
                + "redis-sentinel://host:26379,host:26379/mymaster for a master watched by sentinels, "
                + "or redis-cluster://host:6379,host:6379 for a Redis Cluster"))
        }
        var rest = Substring(text.dropFirst(scheme.prefix.count))
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = credentials[..<colon].isEmpty ? nil : String(credentials[..<colon])
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var path: [Substring] = []
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
            rest = rest[..<slash]
        }
        var master: String?
        if scheme.sentinel {
            guard let name = path.first, !name.isEmpty else {
                return .failure(RedisURLError(message: "a redis-sentinel:// URL names the master after the sentinels: "
                    + "redis-sentinel://host:26379,host:26379/mymaster"))
            }
            master = String(name)
            path.removeFirst()
        }
        var database = 0
        if let dbText = path.first, !dbText.isEmpty {
            guard let db = Int(dbText), (0...1_000_000).contains(db) else {
                return .failure(RedisURLError(message: "database '\(dbText)' is not a number"))
            }
            database = db
        }
        if scheme.cluster && database != 0 {
            return .failure(RedisURLError(message: "a Redis Cluster has only database 0; remove '/\(database)' from the URL"))
        }
        guard path.count <= 1 else {
            return .failure(RedisURLError(message: "'\(path.joined(separator: "/"))' after the \(scheme.sentinel ? "master's name" : "host") "
                + "is not a database number"))
        }
        var nodes: [Node] = []
        for server in rest.split(separator: ",", omittingEmptySubsequences: false) {
            switch parseNode(server, defaultPort: scheme.sentinel ? 26379 : 6379) {
            case .success(let node): nodes.append(node)
            case .failure(let error): return .failure(error)
            }
        }
        guard !nodes.isEmpty else { return .failure(RedisURLError(message: "the URL names no host")) }
        guard scheme.sentinel || scheme.cluster || nodes.count == 1 else {
            return .failure(RedisURLError(message: "a \(scheme.prefix) URL names one server; for several, use redis-sentinel:// "
                + "with the sentinels' addresses, or redis-cluster:// with a cluster's nodes"))
        }
        guard nodes.count <= 16 else {
            return .failure(RedisURLError(message: "the URL names \(nodes.count) servers; name at most 16"))
        }
        let topology: Topology = scheme.cluster ? .cluster : master.map { .sentinel(master: $0) } ?? .standalone
        return .success(RedisEndpoint(topology: topology, nodes: nodes,
            database: database, username: username, password: password, tls: scheme.tls))
    }

    /// `host[:port]` or `[v6 address][:port]`.
    static func parseNode(_ text: Substring, defaultPort: Int) -> Result<Node, RedisURLError> {
        var host = text
        var portText: Substring?
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                return .failure(RedisURLError(message: "'\(text)' is not host:port"))
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        var port = defaultPort
        if let portText {
            guard let parsed = Int(portText), (1...65535).contains(parsed) else {
                return .failure(RedisURLError(message: "port '\(portText)' is not valid"))
            }
            port = parsed
        }
        guard !host.isEmpty else { return .failure(RedisURLError(message: "the URL names no host")) }
        return .success(Node(host: String(host), port: port))
    }
}

public struct RedisURLError: Error, Sendable {
    public let message: String
}
