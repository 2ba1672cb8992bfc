
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
    /// `trove serve --shadow`: every cacheable route runs in shadow (with its own `shadow` settings, if it has any).
    public var shadowEverything = false

    /// The same rules with where to listen, which Redis to use and where origins are replaced (from
    /// command-line options). `memory` drops `store.redis`; `origins` maps origin names to new addresses and
    /// keeps everything else about them (headers, timeouts, limits).
    public func overriding(
        listen: ListenAddress? = nil, admin: ListenAddress? = nil, redis: RedisEndpoint? = nil, memory: Bool = false,
        origins addresses: [String: OriginAddress] = [:], shadow: Bool = false
    ) -> RuleSet {
        var store = self.store
        if memory {
            store = StoreSettings(redis: nil, namespace: store.namespace, memoryBytes: store.memoryBytes, maxKeyLength: store.maxKeyLength)
        } else if let redis {
            let current = store.redis
            store = StoreSettings(
                redis: RedisSettings(url: .literal(redis.description), endpoint: redis,
                    connectTimeout: current?.connectTimeout ?? .seconds(1), commandTimeout: current?.commandTimeout ?? .milliseconds(250)),
                namespace: store.namespace, memoryBytes: store.memoryBytes, maxKeyLength: store.maxKeyLength, local: store.local)
        }
        // Variables only the replaced settings read are no longer needed.
        var missing = missingEnvironment
        if memory || redis != nil, let variable = self.store.redis?.url.environmentVariable { missing.removeAll { $0 == variable } }
        var overridden = RuleSet(
            file: file, fingerprint: fingerprint, listen: listen ?? self.listen,
            admin: AdminSettings(listen: admin ?? self.admin.listen, token: self.admin.token,
                allowUnauthenticated: self.admin.allowUnauthenticated),
            store: store,
            origins: origins.map { origin in addresses[origin.name].map { origin.moved(to: $0) } ?? origin },
            defaultOrigin: defaultOrigin, routes: routes, unmatched: unmatched,
            warnings: warnings, missingEnvironment: missing, shopifyWebhook: shopifyWebhook, warm: warm, limits: limits,
            clients: clients)
        overridden.shadowEverything = shadow || shadowEverything
        return overridden
    }

    /// The routes run in shadow, in file order.
    public var shadowRoutes: [Route] {
        routes.filter { route in route.cachePolicy.map { $0.shadow != nil || shadowEverything } ?? false }
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
