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

        public init(forceMemoryStore: Bool = false, clock: any TroveClock = SystemClock(), logger: Logger = Logger(label: "trove"), threads: Int? = nil) {
            self.forceMemoryStore = forceMemoryStore
            self.clock = clock
            self.logger = logger
            self.threads = threads
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

    public var publicPort: Int { server.publicPort }
    public var adminPort: Int { server.adminPort }
    public var environment: ProxyEnvironment { server.environment }

    private init(server: TroveServer, group: MultiThreadedEventLoopGroup, origins: CurlOriginClient, stores: StoreDirectory) {
        self.server = server
        self.group = group
        self.origins = origins
        self.stores = stores
    }

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
        do {
            let stores: StoreDirectory
            if let redis = rules.store.redis, let endpoint = redis.endpoint, !options.forceMemoryStore {
                let factory = RedisStoreFactory(
                    settings: RedisConnectionSettings(endpoint: endpoint, connectTimeout: redis.connectTimeout,
                        commandTimeout: redis.commandTimeout),
                    namespace: rules.store.namespace, logger: options.logger)
                stores = try await StoreDirectory.perLoop(group: group, name: "redis") { loop in factory.makeStore(on: loop) }
                // Give the connections their connect timeout before serving, so the first requests find the
                // store; past it, serve anyway (from the origin) and keep connecting in the background.
                let ready = try await waitUntilReady(stores, loop: group.next(), within: redis.connectTimeout)
                if !ready {
                    options.logger.warning("Redis is not reachable yet; requests go to the origin until it is",
                        metadata: ["redis.endpoint": "\(endpoint)"])
                }
            } else {
                stores = StoreDirectory(memory: InMemoryStore<ByteBuffer>(capacity: rules.store.memoryBytes, clock: options.clock))
            }
            let environment = ProxyEnvironment(
                rules: RulesState(rules, loadedAt: options.clock.nowMilliseconds()), origins: origins, stores: stores,
                clock: options.clock, stats: ProxyStats(), logger: options.logger)
            let server = try await TroveServer.start(
                environment: environment, listen: rules.listen, admin: rules.admin.listen,
                adminToken: rules.admin.allowUnauthenticated ? nil : rules.admin.token?.value, group: group)
            return TroveApplication(server: server, group: group, origins: origins, stores: stores)
        } catch {
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

    /// Stops listening, closes the Redis connections and the curl thread, and stops the event loops.
    public func stop() async {
        await server.close()
        try? await stores.forEachStore { store in (store as? RedisStore)?.close() }
        await origins.shutdown()
        try? await group.shutdownGracefully()
    }
}
