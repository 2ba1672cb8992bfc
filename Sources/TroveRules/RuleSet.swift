public import TroveHTTP
internal import Foundation

/// A validated, immutable rules file: listeners, store, origins and routes, ready to answer "what should
/// happen to this request?" (`plan(for:)`).
///
/// It is built only by `RulesLoader`, which rejects a file with any error; the warnings that remain are kept in
/// `warnings`. Nothing in it changes after loading: a reload builds a new `RuleSet`.
public struct RuleSet: Sendable {
    /// The path of the rules file, as given.
    public let file: String
    /// A short fingerprint of the file's bytes (12 hex digits of SHA-256), to tell which rules are in force.
    public let fingerprint: String
    public let listen: ListenAddress
    public let admin: AdminSettings
    public let store: StoreSettings
    /// Origins in file order.
    public let origins: [Origin]
    /// The origin for routes that name none, and for requests that match no route.
    public let defaultOrigin: String
    /// Routes in file order: the first that matches a request wins.
    public let routes: [Route]
    /// What to do with a request no route matches.
    public let unmatched: UnmatchedPolicy
    /// Findings that did not prevent loading.
    public internal(set) var warnings: [RulesDiagnostic]

    /// Environment variables the file reads that are not set; `trove serve` refuses to start until they are.
    public internal(set) var missingEnvironment: [String]
    /// The Shopify webhook endpoint, when the file declares one.
    public var shopifyWebhook: ShopifyWebhookRule? = nil
    /// Request targets `trove warm` fetches when given no list of its own (`warm:`).
    public var warm: [String] = []
    /// What clients may cost: connections, timeouts, bodies held (`limits:`).
    public var limits = Limits()
    /// The hosts answered and the proxies trusted (`clients:`).
    public var clients = ClientSettings()

    /// The same rules with where to listen, which Redis to use and where origins are replaced (from
    /// command-line options). `memory` drops `store.redis`; `origins` maps origin names to new addresses and
    /// keeps everything else about them (headers, timeouts, limits).
    public func overriding(
        listen: ListenAddress? = nil, admin: ListenAddress? = nil, redis: RedisEndpoint? = nil, memory: Bool = false,
        origins addresses: [String: OriginAddress] = [:]
    ) -> RuleSet {
        var store = self.store
        if memory {
            store = StoreSettings(redis: nil, namespace: store.namespace, memoryBytes: store.memoryBytes, maxKeyLength: store.maxKeyLength)
        } else if let redis {
            let current = store.redis
            store = StoreSettings(
                redis: RedisSettings(url: .literal(redis.description), endpoint: redis,
                    connectTimeout: current?.connectTimeout ?? .seconds(1), commandTimeout: current?.commandTimeout ?? .milliseconds(250)),
                namespace: store.namespace, memoryBytes: store.memoryBytes, maxKeyLength: store.maxKeyLength)
        }
        // Variables only the replaced settings read are no longer needed.
        var missing = missingEnvironment
        if memory || redis != nil, let variable = self.store.redis?.url.environmentVariable { missing.removeAll { $0 == variable } }
        return RuleSet(
            file: file, fingerprint: fingerprint, listen: listen ?? self.listen,
            admin: AdminSettings(listen: admin ?? self.admin.listen, token: self.admin.token,
                allowUnauthenticated: self.admin.allowUnauthenticated),
            store: store,
            origins: origins.map { origin in addresses[origin.name].map { origin.moved(to: $0) } ?? origin },
            defaultOrigin: defaultOrigin, routes: routes, unmatched: unmatched,
            warnings: warnings, missingEnvironment: missing, shopifyWebhook: shopifyWebhook, warm: warm, limits: limits,
            clients: clients)
    }

    public func origin(named name: String) -> Origin? {
        origins.first { $0.name == name }
    }

    public func route(named name: String) -> Route? {
        routes.first { $0.name == name }
    }
}

/// What happens to a request that matches no route.
public enum UnmatchedPolicy: String, Sendable {
    /// Forwarded to the default origin, never stored.
    case pass
    /// Answered 404 by Trove without contacting an origin.
    case reject
}

/// An address to listen on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    /// True when only this machine can connect (127.0.0.0/8, ::1, localhost).
    public var isLoopback: Bool {
        // An address, not a prefix of a name: `127.0.0.1.nip.io` resolves wherever its owner likes.
        host == "localhost" || IPAddress(host)?.isLoopback == true
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `host:port`, `[::1]:port` or `:port` (all interfaces).
    public init?(parsing text: String) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port),
            host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" })
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// A string written in the file, or read from an environment variable when the file says `{env: NAME}`.
public struct ConfigString: Sendable, Equatable {
    /// The environment variable the value comes from; nil when it is written in the file.
    public let environmentVariable: String?
    /// The value; nil when it comes from an environment variable that is not set.
    public let value: String?

    public static func literal(_ value: String) -> ConfigString {
        ConfigString(environmentVariable: nil, value: value)
    }

    /// How to show it without revealing a secret: `$NAME` or the literal.
    public var display: String {
        environmentVariable.map { "$" + $0 } ?? value ?? ""
    }
}

/// The admin listener: purge, explain, health, stats.
public struct AdminSettings: Sendable {
    public let listen: ListenAddress
    /// The bearer token callers must present; nil only when `allowUnauthenticated` is set.
    public let token: ConfigString?
    /// Run without a token; only accepted on a loopback listener.
    public let allowUnauthenticated: Bool
}

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

/// A parsed `redis://[[user]:password@]host[:port][/db]` URL.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let database: Int
    public let username: String?
    public let password: String?

    public init(host: String, port: Int, database: Int = 0, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
    }

    /// The URL without its password.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(auth)\(host):\(port)/\(database)"
    }

    /// Parses a Redis URL; the error says what is wrong with it.
    public static func parse(_ text: String) -> Result<RedisEndpoint, RedisURLError> {
        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") {
                return .failure(RedisURLError(
                    message: "TLS (rediss://) is not supported; reach Redis over loopback, a private network or a "
                        + "TLS tunnel such as stunnel"))
            }
            return .failure(RedisURLError(message: "'\(text)' is not a redis:// URL; write redis://host:6379/0"))
        }
        var rest = Substring(text.dropFirst("redis://".count))
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
        return .success(RedisEndpoint(host: host, port: port, database: database, username: username, password: password))
    }
}

public struct RedisURLError: Error, Sendable {
    public let message: String
}

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
public final class Route: Sendable {
    public let name: String
    /// 1-based position in `routes:`.
    public let index: Int
    /// Line of the route in the rules file.
    public let line: Int
    public let methods: MethodSet
    public let path: PathPattern
    public let origin: String
    public let action: Action
    /// Where parts of the route are written, for diagnostics that span routes.
    let lines: SourceLines
    /// True when the route's plan for a request depends on its headers (a key, tag or purge template reads
    /// one), not only on the method and URL.
    public let readsHeaders: Bool

    init(name: String, index: Int, line: Int, methods: MethodSet, path: PathPattern, origin: String, action: Action, lines: SourceLines) {
        self.name = name
        self.index = index
        self.line = line
        self.methods = methods
        self.path = path
        self.origin = origin
        self.action = action
        self.lines = lines
        switch action {
        case .cache(let policy): readsHeaders = policy.key.readsHeaders || policy.tags.contains(where: \.readsHeaders)
        case .purge(let rule): readsHeaders = (rule.tags + rule.keys).contains(where: \.readsHeaders)
        case .pass: readsHeaders = false
        }
    }

    struct SourceLines: Sendable {
        var name: SourcePosition?
        var match: SourcePosition?
        var key: SourcePosition?
        var purgeTags: [SourcePosition?] = []
        var purgeKeys: [SourcePosition?] = []
        var purgeRoutes: [SourcePosition?] = []
    }

    /// What a route does with the requests it matches.
    public enum Action: Sendable {
        /// Answer from the store when fresh; otherwise fetch, store and answer.
        case cache(CachePolicy)
        /// Forward; when the origin answers 2xx or 3xx, purge what the rule names.
        case purge(PurgeRule)
        /// Forward; never store.
        case pass
    }

    /// `GET /api/v1/events/{id}`, as written.
    public var match: String { "\(methods) \(path)" }

    public var cachePolicy: CachePolicy? {
        if case .cache(let policy) = action { policy } else { nil }
    }

    public var purgeRule: PurgeRule? {
        if case .purge(let rule) = action { rule } else { nil }
    }
}

/// How a cacheable route stores answers.
// A class: plans and state machines hold it for every request, and copying a reference is one retain where copying
// its fields is dozens. Immutable, so sharing it is safe.
public final class CachePolicy: Sendable {
    public let key: Template
    public let tags: [Template]
    /// How long an answer of each storable status stays fresh, in the order written.
    public let statusTTLs: [(status: Int, ttl: Duration)]
    /// How long after it stops being fresh an entry may still be served while it is refreshed.
    public let stale: Duration
    /// How long after it stops being fresh an entry may still be served when the origin fails.
    public let staleIfError: Duration
    /// Answers with a bigger body are passed through unstored.
    public let maxBodyBytes: Int
    /// One entry for everyone, even for requests carrying credentials.
    public let shared: Bool
    /// The route's requests carry credentials (the endpoint needs a login).
    public let authenticated: Bool
    /// Store answers even when the origin says `Cache-Control: private` or `no-store`: the route's TTL
    /// decides. Answers with `Set-Cookie` are never stored, whatever this says.
    public let overrideCacheControl: Bool
    /// Whose word sets how long an answer stays fresh: the rule's TTLs, or the origin's caching headers.
    public let freshness: FreshnessSource
    /// With `freshness: origin`, no answer stays fresh longer than this, whatever the origin says.
    public let maxTTL: Duration?
    /// `statuses: any` (with `freshness: origin`): an answer of any final status except 206 and 304 is stored when
    /// the origin gives it explicit freshness; `statusTTLs` then lists the heuristically cacheable statuses, which
    /// fall back to the rule's TTL when the origin says nothing (RFC 9111 §3, RFC 9110 §15.1).
    public let anyStatus: Bool
    /// Query parameters that change nothing in the answer (`utm_*`, `fbclid`): removed before the key is rendered
    /// and before the request is forwarded. Names, or prefixes ending in `*`.
    public let ignoreQuery: [String]

    init(key: Template, tags: [Template], statusTTLs: [(status: Int, ttl: Duration)], stale: Duration, staleIfError: Duration, maxBodyBytes: Int, shared: Bool, authenticated: Bool, overrideCacheControl: Bool, freshness: FreshnessSource = .rules, maxTTL: Duration? = nil, anyStatus: Bool = false, ignoreQuery: [String] = [], keyedCredentials: Set<Credential>? = nil) {
        self.ignoreQuery = ignoreQuery
        self.keyedCredentials = keyedCredentials ?? key.credentials
        self.keyedQueryNames = Self.queryNames(of: key)
        self.freshness = freshness
        self.anyStatus = anyStatus
        self.maxTTL = maxTTL
        self.key = key
        self.tags = tags
        self.statusTTLs = statusTTLs
        self.stale = stale
        self.staleIfError = staleIfError
        self.maxBodyBytes = maxBodyBytes
        self.shared = shared
        self.authenticated = authenticated
        self.overrideCacheControl = overrideCacheControl
    }

    /// How long an answer with this status stays fresh when the origin says nothing; nil when such answers are
    /// only stored with explicit freshness (`statuses: any`) or not at all.
    public func ttl(forStatus status: Int) -> Duration? {
        statusTTLs.first { $0.status == status }?.ttl
    }

    /// True when an answer with this status may be stored if the origin gives it explicit freshness.
    public func storesWithExplicitFreshness(_ status: Int) -> Bool {
        anyStatus ? HTTPStatus.isStorable(status) : ttl(forStatus: status) != nil
    }

    /// True when query parameter `name` (decoded) is one the route ignores.
    public func ignoresQuery(_ name: String) -> Bool {
        ignoreQuery.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }

    /// The query parameters the key tells apart; nil when it reads the whole query (`{query}`), which tells every
    /// parameter apart. A request with any other parameter must not be stored under the key: an origin that
    /// reads it (`?callback=...`) would answer differently, and that answer would be served for the key.
    public let keyedQueryNames: Set<String>?

    private static func queryNames(of key: Template) -> Set<String>? {
        var names = Set<String>()
        for placeholder in key.placeholders {
            switch placeholder.source {
            case .query: return nil
            case .queryParameter(let name): names.insert(name)
            default: break
            }
        }
        return names
    }

    /// The credentials the key holds, hashed: requests carrying them get entries of their own.
    public let keyedCredentials: Set<Credential>
}

/// Whose word sets how long a route's answers stay fresh.
public enum FreshnessSource: String, Sendable, Equatable {
    /// The rule's `ttl` and `statuses` (legacy APIs send no caching headers): the default.
    case rules
    /// The origin's `Cache-Control` (`s-maxage`, `max-age`, `no-cache`, `must-revalidate`,
    /// `stale-while-revalidate`, `stale-if-error`), `Expires` and `Age`, as RFC 9111 says; the rule's TTL
    /// when the origin says nothing, `max_ttl` as a cap.
    case origin
}

/// What a write route invalidates when the origin accepts the write.
public struct PurgeRule: Sendable {
    /// Tags, rendered from the write request: every entry carrying one is purged.
    public let tags: [Template]
    /// Cache keys, rendered from the write request: those entries are purged.
    public let keys: [Template]
    /// Route names: every entry those routes stored is purged.
    public let routes: [String]
    /// Purge every entry.
    public let everything: Bool
}
