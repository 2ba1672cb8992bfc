
/// A parsed `redis://[[user]:password@]host[:port][/db]` URL, or `rediss://` for TLS.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let database: Int
    public let username: String?
    public let password: String?
    /// `rediss://`: the connection speaks TLS (`store.tls` says how it is checked).
    public let tls: Bool

    public init(host: String, port: Int, database: Int = 0, username: String? = nil, password: String? = nil, tls: Bool = false) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// The URL without its password.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        return "\(tls ? "rediss" : "redis")://\(auth)\(host):\(port)/\(database)"
    }

    /// Parses a Redis URL; the error says what is wrong with it.
    public static func parse(_ text: String) -> Result<RedisEndpoint, RedisURLError> {
        let tls = text.hasPrefix("rediss://")
        guard text.hasPrefix("redis://") || tls else {
            return .failure(RedisURLError(message: "'\(text)' is not a redis:// URL; write redis://host:6379/0 (rediss:// for TLS)"))
        }
        var rest = Substring(text.dropFirst(tls ? "rediss://".count : "redis://".count))
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
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0 else {
                    return .failure(RedisURLError(message: "database '\(dbText)' is not a number"))
                }
                database = db
            }
        }
        var host = String(rest)
        var port = 6379
        if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let parsed = Int(rest[rest.index(after: colon)...]), (1...65535).contains(parsed) else {
                return .failure(RedisURLError(message: "port '\(rest[rest.index(after: colon)...])' is not valid"))
            }
            port = parsed
        }
        guard !host.isEmpty else { return .failure(RedisURLError(message: "the URL names no host")) }
        return .success(RedisEndpoint(host: host, port: port, database: database, username: username, password: password, tls: tls))
    }
}

public struct RedisURLError: Error, Sendable {
    public let message: String
}
