internal import Logging
internal import NIOCore
internal import NIOPosix
internal import TroveCore
internal import TroveHTTP
internal import TroveRedis
internal import TroveRules
internal import TroveServer

/// Builds the store Trove runs on from the rules: every loop's entries-and-purges store, fetch locks and delivery
/// claims, and the fetch notices. Adding a backend is implementing `CacheStore`, `FetchLocks` and
/// `DeliveryClaims` (and `FetchNotifications` if instances share it) and one case here.
enum StoreBackends {
    struct Built {
        let stores: StoreDirectory
        /// Fetch notices from other instances; nil for a store one instance uses alone.
        let notifications: RedisSubscriber?
        /// Names the master, for a Redis the URL gives as sentinels.
        let monitor: SentinelMonitor?
        /// Maps the slots, for a Redis Cluster.
        let topology: RedisClusterTopology?
        /// Keeps the in-process tier's counters current, in `tracked` mode.
        var tracking: CounterTracking?
    }

    /// `metrics` receives what the Redis connections report (per node, redirections, failovers).
    static func make(
        rules: RuleSet, group: MultiThreadedEventLoopGroup, options: TroveApplication.Options, metrics: ProxyMetrics
    ) async throws -> Built {
        guard let redis = rules.store.redis, let endpoint = redis.endpoint, !options.forceMemoryStore else {
            let memory = InMemoryStore<ByteBuffer>(capacity: rules.store.memoryBytes, clock: options.clock)
            return Built(stores: StoreDirectory(memory: memory, claims: LocalDeliveryClaims(clock: options.clock)), notifications: nil,
                monitor: nil, topology: nil)
        }
        var tls: RedisTLSContext?
        if endpoint.tls {
            do {
                tls = try RedisTLSContext(caPEM: redis.tls.caPEM, certificatePEM: redis.tls.certificatePEM,
                    keyPEM: redis.tls.keyPEM, serverName: redis.tls.serverName, verify: redis.tls.verify)
            } catch {
                throw TroveApplication.StartError(description: "cannot start: \(error.message)")
            }
        }
        var sentinel: RedisSentinelSettings?
        if case .sentinel(let master) = endpoint.topology {
            sentinel = RedisSentinelSettings(sentinels: endpoint.nodes, master: master,
                username: redis.sentinelAuth.username, password: redis.sentinelAuth.password)
        }
        var cluster: [ServerAddress]?
        if case .cluster = endpoint.topology { cluster = endpoint.nodes }
        let settings = RedisConnectionSettings(host: endpoint.host, port: endpoint.port, database: endpoint.database,
            username: endpoint.username, password: endpoint.password, connectTimeout: redis.connectTimeout,
            commandTimeout: redis.commandTimeout, tls: tls, sentinel: sentinel, cluster: cluster)
        let loop = group.next()
        let redisMetrics = RedisMetrics(factory: metrics.metricsFactory)
        let (monitor, topology) = try await loop.submit {
            (settings.sentinel == nil ? nil : SentinelMonitor(settings: settings, metrics: redisMetrics, eventLoop: loop, logger: options.logger),
             settings.cluster.map {
                 RedisClusterTopology(seeds: $0, settings: settings, metrics: redisMetrics, eventLoop: loop, logger: options.logger)
             })
        }.get()
        // The in-process tier, when the rules ask for one: one per process, shared by every loop's store.
        let local = rules.store.local.map { LocalEntries<ByteBuffer>(capacity: $0.bytes, clock: options.clock) }
        // Tracked: as many counters as the tier could need (an entry's key counter each, and the shared ones).
        let tracked = rules.store.local.flatMap { $0.mode == .tracked ? TrackedCounters(capacity: max(4096, $0.bytes / 512)) : nil }
        let factory = RedisStoreFactory(settings: settings, monitor: monitor, topology: topology, namespace: rules.store.namespace,
            metrics: redisMetrics, holdsBodies: local == nil, logger: options.logger)
        let stores = try await StoreDirectory.perLoop(group: group, name: "redis") { loop in
            let made = factory.make(on: loop)
            let store: any CacheStore<ByteBuffer> = if let local {
                TieredStore(remote: made.store, local: local, tracked: tracked, clock: options.clock)
            } else {
                made.store
            }
            return LoopStores(store: store, fetchLocks: made.fetchLocks, deliveryClaims: made.deliveryClaims)
        }
        let subscriber = try await loop.submit {
            RedisSubscriber(settings: settings, monitor: monitor, topology: topology, namespace: rules.store.namespace, eventLoop: loop, logger: options.logger)
        }.get()
        var tracking: CounterTracking?
        if let tracked {
            tracking = try await loop.submit {
                CounterTracking(settings: settings, monitor: monitor, namespace: rules.store.namespace, counters: tracked, eventLoop: loop,
                    logger: options.logger)
            }.get()
        }
        return Built(stores: stores, notifications: subscriber, monitor: monitor, topology: topology, tracking: tracking)
    }
}
