internal import TroveHTTP
public import Logging
internal import NIOCore
internal import NIOPosix
public import TroveCore
internal import TroveCurl
internal import TroveRedis
public import TroveRules
public import TroveServer

/// A running Trove: the event loops, the origin client, the stores and both listeners, built from a rule set.
///
/// `trove serve` builds one and runs it until a signal; tests build one per scenario (with a manual clock,
/// on free ports) and stop it at the end.
public final class TroveApplication: Sendable {
    /// How to build one, beyond the rules.
    public struct Options: Sendable {
        /// Use the memory store even when the rules name a Redis.
        public var forceMemoryStore = false
        public var clock: any TroveClock = SystemClock()
        public var logger = Logger(label: "trove")
        /// Event loops; one per core when nil.
        public var threads: Int?
        /// The file the rules came from, re-read by `reload()` (SIGHUP, `POST /reload`); nil: no reload.
        public var rulesPath: String?
        /// The environment `{env: NAME}` values are read from on reload (the process's when nil).
        public var environment: [String: String]?
        /// Applied to the rules read on reload, as to those read at start (command-line overrides).
        public var adjust: @Sendable (RuleSet) -> RuleSet = { $0 }
        /// One line per request; nil: none.
        public var accessLog: AccessLog?

        public init(
            forceMemoryStore: Bool = false, clock: any TroveClock = SystemClock(), logger: Logger = Logger(label: "trove"),
            threads: Int? = nil, rulesPath: String? = nil, environment: [String: String]? = nil
        ) {
            self.forceMemoryStore = forceMemoryStore
            self.clock = clock
            self.logger = logger
            self.threads = threads
            self.rulesPath = rulesPath
            self.environment = environment
        }
    }

    /// Why a rule set cannot be served.
    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    public let server: TroveServer
    private let group: MultiThreadedEventLoopGroup
    private let origins: CurlOriginClient
    private let stores: StoreDirectory
    private let subscriber: RedisSubscriber?
    private let monitor: SentinelMonitor?
    private let topology: RedisClusterTopology?
    private let tracking: CounterTracking?
    private let drain: ConnectionDrain
    /// The proxy's client connections, counted against `limits.max_connections`.
    public let connections: ClientConnections

    public var publicPort: Int { server.publicPort }
    public var adminPort: Int { server.adminPort }
    public var environment: ProxyEnvironment { server.environment }
    /// Requests being answered now.
    public var inFlight: Int { drain.inFlight }

    private init(
        server: TroveServer, group: MultiThreadedEventLoopGroup, origins: CurlOriginClient, stores: StoreDirectory,
        subscriber: RedisSubscriber?, monitor: SentinelMonitor?, topology: RedisClusterTopology?, tracking: CounterTracking?, drain: ConnectionDrain,
        connections: ClientConnections
    ) {
        self.connections = connections
        self.server = server
        self.group = group
        self.origins = origins
        self.stores = stores
        self.subscriber = subscriber
        self.monitor = monitor
        self.topology = topology
        self.tracking = tracking
        self.drain = drain
    }

    /// The shortest admin token accepted, not counting spaces around it.
    public static let minimumTokenLength = 16

    /// Checks that `rules` can be served now: every environment variable it reads is set, and the admin API has
    /// a token or is allowed to run without one.
    public static func check(_ rules: RuleSet, options: Options) throws(StartError) {
        var missing = rules.missingEnvironment
        if options.forceMemoryStore, let variable = rules.store.redis?.url.environmentVariable {
            missing.removeAll { $0 == variable }
        }
        if !missing.isEmpty {
            let names = missing.joined(separator: ", ")
            throw StartError(description: "cannot start: \(missing.count == 1 ? "environment variable" : "environment variables") "
                + "\(names) \(missing.count == 1 ? "is" : "are") not set, and \(rules.file) reads "
                + "\(missing.count == 1 ? "it" : "them") (see `trove check --config \(rules.file)`)")
        }
        if !rules.admin.allowUnauthenticated, let token = rules.admin.token?.value,
            token.trimmingWhitespace().utf8.count < minimumTokenLength
        {
            // A short or blank token is guessed, or set by mistake: either way the admin API would not be protected.
            throw StartError(description: "cannot start: the admin token (\(rules.admin.token?.display ?? "")) has "
                + "\(token.trimmingWhitespace().utf8.count) characters; it needs at least \(minimumTokenLength) that are not "
                + "spaces. Make one with: openssl rand -hex 32")
        }
        if !options.forceMemoryStore, let redis = rules.store.redis, redis.endpoint == nil {
            throw StartError(description: "cannot start: store.redis is not a usable Redis URL (\(redis.url.display))")
        }
    }

    /// Builds and starts everything.
    public static func start(rules: RuleSet, options: Options = Options()) async throws -> TroveApplication {
        try check(rules, options: options)
        _ = CurlLibrary.initialized  // before any thread of ours exists
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads ?? System.coreCount))
        let origins = CurlOriginClient()
        var subscriber: RedisSubscriber?
        var monitor: SentinelMonitor?
        var topology: RedisClusterTopology?
        var tracking: CounterTracking?
        do {
            let metrics = ProxyMetrics(store: !options.forceMemoryStore && rules.store.redis != nil ? "redis" : "memory")
            let built = try await StoreBackends.make(rules: rules, group: group, options: options, metrics: metrics)
            let stores = built.stores
            subscriber = built.notifications
            monitor = built.monitor
            topology = built.topology
            tracking = built.tracking
            if let redis = rules.store.redis, let endpoint = redis.endpoint, subscriber != nil {
                // Give the connections their connect timeout before serving, so the first requests find the
                // store; past it, serve anyway (from the origin) and keep connecting in the background. With
                // sentinels (or a cluster), one connect timeout to ask them for the master (the slots), one to reach it.
                let ready = try await waitUntilReady(stores, loop: group.next(),
                    within: redis.connectTimeout * (monitor == nil && topology == nil ? 1 : 2))
                if !ready {
                    options.logger.warning("Redis is not reachable yet; requests go to the origin until it is",
                        metadata: ["redis.endpoint": "\(endpoint)"])
                }
            }
            let state = RulesState(rules, loadedAt: options.clock.nowMilliseconds())
            let gates = OriginGates(rules: rules, timerLoop: group.next())
            var reload: (@Sendable () -> ReloadOutcome)?
            if let path = options.rulesPath {
                reload = { @Sendable in Self.reload(path: path, into: state, gates: gates, options: options) }
            }
            let environment = ProxyEnvironment(
                rules: state, origins: origins, stores: stores, clock: options.clock,
                stats: ProxyStats(metrics: metrics),
                coalescer: Coalescer(clock: options.clock, notifications: subscriber), gates: gates,
                logger: options.logger, reload: reload, accessLog: options.accessLog)
            let drain = ConnectionDrain()
            let connections = ClientConnections()
            if connections.effectiveMaximum(rules.limits.maxConnections) < rules.limits.maxConnections {
                options.logger.warning("limits.max_connections is more than this process's file descriptors allow; raise `ulimit -n`", metadata: [
                    "limits.max_connections": "\(rules.limits.maxConnections)",
                    "connections.allowed": "\(connections.effectiveMaximum(rules.limits.maxConnections))",
                    "descriptors": "\(ClientConnections.currentDescriptorLimit())",
                ])
            }
            let server = try await TroveServer.start(
                environment: environment, listen: rules.listen, admin: rules.admin.listen,
                adminToken: rules.admin.allowUnauthenticated ? nil : rules.admin.token?.value, group: group, drain: drain,
                connections: connections)
            return TroveApplication(server: server, group: group, origins: origins, stores: stores, subscriber: subscriber, monitor: monitor, topology: topology, tracking: tracking,
                drain: drain,
                connections: connections)
        } catch {
            try? await subscriber?.stop()
            try? await monitor?.stop()
            try? await topology?.stop()
            try? await tracking?.stop()
            await origins.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func waitUntilReady(_ stores: StoreDirectory, loop: any EventLoop, within timeout: Duration) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout + .milliseconds(100)
        while clock.now < deadline {
            if try await stores.health(on: loop).get().ready { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Re-reads the rules file and puts it in force, or refuses it with the errors `trove check` gives and keeps
    /// the rules in force. Requests in flight finish under the rules they started with.
    public func reload() -> ReloadOutcome {
        guard let reload = environment.reload else {
            return ReloadOutcome(applied: false, version: environment.rules.current.rules.fingerprint,
                diagnostics: ["these rules were not read from a file"])
        }
        return reload()
    }

    static func reload(path: String, into state: RulesState, gates: OriginGates, options: Options) -> ReloadOutcome {
        let current = state.current.rules
        let rules: RuleSet
        do {
            rules = options.adjust(try RulesLoader.load(path: path, environment: options.environment))
        } catch {
            options.logger.error("reload refused: the rules file has errors; the rules in force stay",
                metadata: ["rules.file": "\(path)", "rules.errors": "\(error.errors.count)"])
            return ReloadOutcome(applied: false, version: current.fingerprint, diagnostics: error.diagnostics.map(\.description))
        }
        do {
            try check(rules, options: options)
        } catch {
            return ReloadOutcome(applied: false, version: current.fingerprint, diagnostics: [error.description])
        }
        var needsRestart: [String] = []
        if rules.listen != current.listen { needsRestart.append("listen") }
        if rules.admin.listen != current.admin.listen { needsRestart.append("admin.listen") }
        if rules.admin.token?.value != current.admin.token?.value || rules.admin.allowUnauthenticated != current.admin.allowUnauthenticated {
            needsRestart.append("admin.token")
        }
        if rules.store.redis?.endpoint != current.store.redis?.endpoint || rules.store.namespace != current.store.namespace
            || rules.store.memoryBytes != current.store.memoryBytes
        {
            needsRestart.append("store")
        }
        state.replace(with: rules, loadedAt: options.clock.nowMilliseconds())
        gates.update(for: rules)
        options.logger.notice("reloaded the rules", metadata: [
            "rules.file": "\(path)", "rules.version": "\(rules.fingerprint)", "rules.routes": "\(rules.routes.count)",
            "rules.needs_restart": "\(needsRestart)",
        ])
        return ReloadOutcome(applied: true, version: rules.fingerprint, diagnostics: rules.warnings.map(\.description),
            needsRestart: needsRestart)
    }

    /// Stops taking requests and lets those in flight finish for up to `grace`, then closes what is left:
    /// the remaining connections, Redis, the curl thread, the event loops.
    public func stop(grace: Duration = .seconds(10)) async {
        // Draining first: an answer written between the listener's close and the drain would otherwise keep its
        // connection alive (a connection accepted meanwhile sees the drain when it starts).
        drain.beginDraining()
        await server.closePublic()
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while drain.inFlight > 0 && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if drain.inFlight > 0 {
            environment.logger.warning("closing requests still in flight after the drain's grace period",
                metadata: ["requests": "\(drain.inFlight)"])
        }
        drain.closeAll()
        await server.close()
        try? await subscriber?.stop()
        try? await monitor?.stop()
        try? await topology?.stop()
        try? await tracking?.stop()
        await stores.shutdown()
        await origins.shutdown()
        try? await group.shutdownGracefully()
    }
}
