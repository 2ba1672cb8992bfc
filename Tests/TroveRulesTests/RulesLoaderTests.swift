import TroveHTTP
import Foundation
import Testing
@testable import TroveRules

/// Lines 1-5 of every test file; routes start on line 6.
private let head = """
    version: 1
    origins:
      api:
        url: http://127.0.0.1:8000
    routes:

    """

private func load(_ yaml: String, environment: [String: String] = [:]) throws -> RuleSet {
    try RulesLoader.parse(yaml, file: "test.yaml", environment: environment)
}

/// The diagnostics of a file that must be rejected (with the admin token set, so that only the file speaks).
private func rejection(_ yaml: String, environment: [String: String] = ["TROVE_ADMIN_TOKEN": "t"]) -> [String] {
    refusal(yaml, file: "test.yaml", environment: environment)
}

/// The warnings of a file that must be accepted (with the admin token set, so that only the file speaks).
private func warnings(_ yaml: String, environment: [String: String] = ["TROVE_ADMIN_TOKEN": "t"]) -> [String] {
    do {
        return try RulesLoader.parse(yaml, file: "test.yaml", environment: environment).warnings.map(\.description)
    } catch {
        Issue.record("the file was rejected: \(error)")
        return []
    }
}

@Suite struct RulesLoaderTests {
    // MARK: Accepted files

    /// A minimal file loads with the documented defaults.
    @Test func minimalFileUsesDefaults() throws {
        let rules = try load(head + """
              - name: events
                match: GET /api/events
                cache:
                  ttl: 5m
            """)
        #expect(rules.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(rules.admin.listen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(rules.admin.token?.environmentVariable == "TROVE_ADMIN_TOKEN")
        #expect(rules.store.redis == nil)
        #expect(rules.store.namespace == "trove")
        #expect(rules.store.memoryBytes == 256 << 20)
        #expect(rules.defaultOrigin == "api")
        #expect(rules.unmatched == .pass)
        let policy = try #require(rules.routes.first?.cachePolicy)
        #expect(policy.key.description == "{path}?{query}")
        #expect(policy.statusTTLs.map(\.status) == [200])
        #expect(policy.ttl(forStatus: 200) == .seconds(300))
        #expect(policy.ttl(forStatus: 404) == nil)
        #expect(policy.stale == .zero)
        #expect(policy.maxBodyBytes == 16 << 20)
        #expect(!policy.shared)
        #expect(rules.fingerprint.count == 12)
    }

    /// Route values override `defaults.cache`; per-status TTLs come from a mapping.
    @Test func defaultsAndOverrides() throws {
        let rules = try load("""
            version: 1
            origins:
              api: {url: "http://127.0.0.1:8000/base/"}
            defaults:
              cache: {ttl: 10m, stale: 1m, statuses: [200, 404], max_body: 64KB}
            routes:
              - {name: a, match: GET /a, cache: {}}
              - {name: b, match: GET /b, cache: {statuses: {200: 1h, 410: 5m}, stale: 0s, max_body: 2MB}}
            """)
        let a = try #require(rules.route(named: "a")?.cachePolicy)
        #expect(a.statusTTLs.map(\.status) == [200, 404])
        #expect(a.ttl(forStatus: 404) == .seconds(600))
        #expect(a.stale == .seconds(60))
        #expect(a.maxBodyBytes == 65536)
        let b = try #require(rules.route(named: "b")?.cachePolicy)
        #expect(b.ttl(forStatus: 200) == .seconds(3600))
        #expect(b.ttl(forStatus: 410) == .seconds(300))
        #expect(b.ttl(forStatus: 404) == nil)
        #expect(b.stale == .zero)
        #expect(b.maxBodyBytes == 2 << 20)
        #expect(rules.origins[0].basePath == "/base")
        #expect(rules.origins[0].url == "http://127.0.0.1:8000/base")
    }

    /// `{env: NAME}` reads the environment; an unset variable is a warning that `serve` turns into a refusal.
    @Test func environmentValues() throws {
        let yaml = """
            version: 1
            store:
              redis: {env: REDIS_URL}
            origins:
              shop:
                url: https://shop.example.com
                headers:
                  X-Shopify-Access-Token: {env: SHOPIFY_ACCESS_TOKEN}
            routes: [{name: all, match: ANY /**, pass: true}]
            """
        let set = try load(yaml, environment: [
            "REDIS_URL": "redis://:s3cret@10.0.0.5:6380/2", "SHOPIFY_ACCESS_TOKEN": "shpat_x", "TROVE_ADMIN_TOKEN": "t",
        ])
        #expect(set.store.redis?.endpoint == RedisEndpoint(host: "10.0.0.5", port: 6380, database: 2, username: nil, password: "s3cret"))
        #expect(set.store.redis?.endpoint?.description == "redis://:***@10.0.0.5:6380/2")
        #expect(set.origins[0].headers.first?.value.value == "shpat_x")
        #expect(set.missingEnvironment.isEmpty)
        #expect(set.warnings.isEmpty)
        #expect(set.admin.token?.value == "t")

        let unset = try load(yaml)
        #expect(unset.missingEnvironment == ["TROVE_ADMIN_TOKEN", "REDIS_URL", "SHOPIFY_ACCESS_TOKEN"])
        #expect(unset.warnings.map(\.description).contains(
            "test.yaml:3:16: warning: store.redis: environment variable REDIS_URL is not set; `trove serve` refuses to start until it is"))
    }

    /// YAML anchors and `<<` merges work, with the merging mapping's own keys winning.
    @Test func mergeKeys() throws {
        let rules = try load("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            defaults:
              cache: &common
                ttl: 5m
                stale: 1m
            routes:
              - name: a
                match: GET /a
                cache:
                  <<: *common
                  ttl: 1m
            """)
        let policy = try #require(rules.route(named: "a")?.cachePolicy)
        #expect(policy.ttl(forStatus: 200) == .seconds(60))
        #expect(policy.stale == .seconds(60))
    }

    // MARK: The file as a whole

    @Test func invalidYAMLNamesTheLine() {
        let found = rejection("version: 1\nroutes: [\n  - a\n")
        #expect(found.count == 1)
        #expect(found.first == "test.yaml:3:3: error: this is not valid YAML: while parsing a flow node: did not find expected node content")
    }

    @Test func noRoutesWarns() {
        #expect(warnings(head.replacingOccurrences(of: "routes:\n", with: "routes: []\n")) == [
            "test.yaml:5:9: warning: routes: there are no routes: every request will be passed to the origin unstored",
        ])
    }

    @Test func emptyFile() {
        #expect(rejection("") == ["test.yaml: error: the rules file is empty; see rules/example.yaml"])
    }

    @Test func missingFile() {
        do {
            _ = try RulesLoader.load(path: "/nonexistent/trove.yaml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.diagnostics.first?.description.hasPrefix(
                "/nonexistent/trove.yaml: error: the rules file does not exist (the working directory is ") == true)
        }
    }

    @Test func missingVersionOriginsAndRoutes() {
        #expect(rejection("listen: 127.0.0.1:8080\n") == [
            "test.yaml:1:1: error: 'version: 1' is missing; it says which rules format the file is written in",
            "test.yaml:1:1: error: 'origins:' is missing; name at least one, e.g. origins: {api: {url: http://127.0.0.1:8000}}",
            "test.yaml:1:1: error: 'routes:' is missing; it lists what to cache and what to purge",
        ])
    }

    @Test func wrongVersion() {
        #expect(rejection(head.replacingOccurrences(of: "version: 1", with: "version: 2").replacingOccurrences(of: "routes:\n", with: "routes: [{name: all, match: ANY /**, pass: true}]\n")) == [
            "test.yaml:1:10: error: version: this Trove reads rules format 1, not 2",
        ])
    }

    @Test func unknownTopLevelKeySuggestsTheRightOne() {
        let found = rejection(head.replacingOccurrences(of: "routes:\n", with: "routes: [{name: all, match: ANY /**, pass: true}]\nunmached: pass\n"))
        #expect(found == [
            "test.yaml:6:1: error: unmached: unknown key 'unmached' (did you mean 'unmatched'?); allowed here: version, listen, admin, store, limits, clients, origins, jwt, defaults, unmatched, routes, webhooks, warm",
        ])
    }

    @Test func duplicateKeys() {
        let found = rejection(head + """
              - name: a
                match: GET /a
                name: b
                pass: true
            """)
        #expect(found == [
            "test.yaml:8:5: error: 'name' is given twice in one mapping; YAML would keep only one of them, so say it once",
        ])
    }

    // MARK: Listeners, admin, store

    @Test func badListenAddress() {
        #expect(rejection("version: 1\nlisten: everywhere\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n") == [
            "test.yaml:2:9: error: listen: 'everywhere' is not an address; write host:port, e.g. 0.0.0.0:8080 or 127.0.0.1:8080",
        ])
    }

    @Test func adminWithoutTokenOnlyOnLoopback() {
        let yaml = "version: 1\nadmin:\n  listen: 0.0.0.0:9090\n  allow_unauthenticated: true\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n"
        #expect(rejection(yaml) == [
            "test.yaml:4:26: error: admin.allow_unauthenticated: an admin API without a token is only allowed on a loopback address (127.0.0.1 or ::1), not on 0.0.0.0:9090: anyone who can reach it could purge the cache",
        ])
        let loopback = try? load(yaml.replacingOccurrences(of: "0.0.0.0:9090", with: "127.0.0.1:9090"))
        #expect(loopback?.admin.allowUnauthenticated == true)
        #expect(loopback?.admin.token == nil)
    }

    @Test func adminTokenMustComeFromTheEnvironment() {
        #expect(rejection("version: 1\nadmin:\n  token: hunter2\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n") == [
            "test.yaml:3:10: error: admin.token: looks like a secret, which must not be written in the rules file; read it from the environment: {env: TROVE_ADMIN_TOKEN}",
        ])
    }

    @Test func adminCannotShareThePublicAddress() {
        #expect(rejection("version: 1\nlisten: 0.0.0.0:8080\nadmin: {listen: 127.0.0.1:8080}\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n") == [
            "test.yaml:3:17: error: admin.listen: the admin listener cannot share the public listener's address 0.0.0.0:8080",
        ])
    }

    @Test func redisURLs() {
        func store(_ url: String) -> [String] {
            rejection("version: 1\nstore:\n  redis: \(url)\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n")
        }
        #expect(store("redis://:pw@10.0.0.1:6379/0") == [
            "test.yaml:3:10: error: store.redis: the URL holds a password, which must not be written in the rules file; read the whole URL from the environment: {env: REDIS_URL}",
        ])
        #expect(store("127.0.0.1:6379") == [
            "test.yaml:3:10: error: store.redis: '127.0.0.1:6379' is not a Redis URL; write redis://host:6379/0 (rediss:// for TLS), redis-sentinel://host:26379,host:26379/mymaster for a master watched by sentinels, or redis-cluster://host:6379,host:6379 for a Redis Cluster",
        ])
        #expect(store("redis://cache:99999") == ["test.yaml:3:10: error: store.redis: port '99999' is not valid"])
    }

    /// `redis-sentinel://` names sentinels and the master they watch; `store.sentinel` gives their credentials.
    @Test func redisSentinel() throws {
        func rules(_ store: String, environment: [String: String] = [:]) throws -> RuleSet {
            try RulesLoader.parse("version: 1\nstore: \(store)\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n",
                file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"].merging(environment) { $1 })
        }
        let set = try rules("{redis: \"redis-sentinel://10.0.0.1,10.0.0.2:26380/cache/2\"}")
        let endpoint = try #require(set.store.redis?.endpoint)
        #expect(endpoint.topology == .sentinel(master: "cache"))
        #expect(endpoint.nodes == [.init(host: "10.0.0.1", port: 26379), .init(host: "10.0.0.2", port: 26380)])
        #expect(endpoint.database == 2)
        #expect(set.store.redis?.summary
            == "redis redis-sentinel://10.0.0.1:26379,10.0.0.2:26380/cache/2 (master 'cache' as the 2 sentinels name it, followed through failovers)")
        let secured = try rules("{redis: {env: REDIS_URL}, sentinel: {username: trove, password: {env: SENTINEL_PASSWORD}}}",
            environment: ["REDIS_URL": "rediss-sentinel://:pw@[::1]:26379/cache", "SENTINEL_PASSWORD": "s3"])
        #expect(secured.store.redis?.endpoint?.tls == true)
        #expect(secured.store.redis?.endpoint?.password == "pw")
        #expect(secured.store.redis?.endpoint?.nodes == [.init(host: "::1", port: 26379)])
        #expect(secured.store.redis?.sentinelAuth.username == "trove")
        #expect(secured.store.redis?.sentinelAuth.password == "s3")
        #expect(secured.store.redis?.endpoint?.description == "rediss-sentinel://:***@[::1]:26379/cache/0")
        func refused(_ store: String) -> [String] {
            rejection("version: 1\nstore: \(store)\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n")
        }
        #expect(refused("{redis: \"redis-sentinel://s1:26379,s2:26379\"}") == [
            "test.yaml:2:16: error: store.redis: a redis-sentinel:// URL names the master after the sentinels: redis-sentinel://host:26379,host:26379/mymaster",
        ])
        #expect(refused("{redis: \"redis://a:6379,b:6379/0\"}") == [
            "test.yaml:2:16: error: store.redis: a redis:// URL names one server; for several, use redis-sentinel:// with the sentinels' addresses, or redis-cluster:// with a cluster's nodes",
        ])
        #expect(refused("{redis: \"redis-sentinel://s1/cache/x\"}") == ["test.yaml:2:16: error: store.redis: database 'x' is not a number"])
        #expect(refused("{redis: \"redis-sentinel://s1:0/cache\"}") == ["test.yaml:2:16: error: store.redis: port '0' is not valid"])
        #expect(refused("{redis: \"redis://cache:6379\", sentinel: {password: hunter2}}") == [
            "test.yaml:2:48: error: store.sentinel: store.sentinel gives the sentinels' credentials, but the URL names no sentinels; write redis-sentinel://host:26379,host:26379/mymaster",
            "test.yaml:2:59: error: store.sentinel.password: looks like a secret, which must not be written in the rules file; read it from the environment: {env: SENTINEL_PASSWORD}",
        ])
    }

    /// `redis-cluster://` names any of a cluster's nodes as seeds; a cluster has only database 0.
    @Test func redisCluster() throws {
        let set = try RulesLoader.parse(
            "version: 1\nstore: {redis: \"redis-cluster://10.0.0.1:7000,10.0.0.2\"}\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n",
            file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])
        let endpoint = try #require(set.store.redis?.endpoint)
        #expect(endpoint.topology == .cluster)
        #expect(endpoint.nodes == [.init(host: "10.0.0.1", port: 7000), .init(host: "10.0.0.2", port: 6379)])
        #expect(set.store.redis?.summary == "redis redis-cluster://10.0.0.1:7000,10.0.0.2:6379 (a Redis Cluster, its slots read from these 2 seeds)")
        #expect(rejection("version: 1\nstore: {redis: \"rediss-cluster://c:7000/2\"}\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n") == [
            "test.yaml:2:16: error: store.redis: a Redis Cluster has only database 0; remove '/2' from the URL",
        ])
    }

    /// `rediss://` speaks TLS; `store.tls` says how it is checked, and what it cannot use is refused with the fix.
    @Test func redisTLS() throws {
        func rules(_ store: String) throws -> RuleSet {
            try RulesLoader.parse("version: 1\nstore: \(store)\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n",
                file: "test.yaml", environment: ["TROVE_ADMIN_TOKEN": "t", "CA": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"])
        }
        let plain = try rules("{redis: \"rediss://cache.example.com:6380/0\"}")
        #expect(plain.store.redis?.endpoint?.tls == true)
        #expect(plain.store.redis?.endpoint?.description == "rediss://cache.example.com:6380/0")
        #expect(plain.store.redis?.tls == RedisTLS(), "the system's trust, verified")
        #expect(plain.store.redis?.summary == "redis rediss://cache.example.com:6380/0 over TLS (the system's CAs)")
        let fromEnvironment = try rules("{redis: \"rediss://cache:6380\", tls: {ca_file: {env: CA}, server_name: cache.internal}}")
        #expect(fromEnvironment.store.redis?.tls.caPEM?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
        #expect(fromEnvironment.store.redis?.tls.serverName == "cache.internal")
        #expect(fromEnvironment.store.redis?.summary == "redis rediss://cache:6380/0 over TLS (its CA file, name cache.internal)")
        let unchecked = try rules("{redis: \"rediss://cache:6380\", tls: {verify: false}}")
        #expect(unchecked.warnings.map(\.description) == [
            "test.yaml:2:53: warning: store.tls.verify: the Redis server's certificate is not checked: anyone between Trove and Redis can read and change the cache; give ca_file instead",
        ])
        func refused(_ store: String) -> [String] {
            rejection("version: 1\nstore: \(store)\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n")
        }
        #expect(refused("{redis: \"redis://cache:6379\", tls: {server_name: cache}}") == [
            "test.yaml:2:43: error: store.tls: store.tls says how to check a TLS connection, but the URL is redis://; write rediss:// to speak TLS (managed Redis usually listens for it on 6380 or 6379)",
        ])
        #expect(refused("{redis: \"rediss://cache:6380\", tls: {cert_file: /nowhere/client.pem}}").contains {
            $0.contains("store.tls.cert_file: cannot read '/nowhere/client.pem'")
        })
        let notAKey = NSTemporaryDirectory() + "trove-not-a-key-\(UInt32.random(in: 0 ... .max)).pem"
        try "hello\n".write(toFile: notAKey, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: notAKey) }
        let keyOnly = refused("{redis: \"rediss://cache:6380\", tls: {key_file: \(notAKey)}}")
        #expect(keyOnly.contains { $0.contains("store.tls.key_file: '\(notAKey)' holds no KEY in PEM") }, "\(keyOnly)")
        #expect(keyOnly.contains { $0.contains("a client certificate needs its key: give cert_file and key_file together") })
        #expect(refused("{redis: \"rediss://cache:6380\", tls: {ca: x}}").first?.contains("write ca_file: PATH") == true)
    }

    @Test func badNamespaceAndSizes() {
        #expect(rejection("version: 1\nstore:\n  namespace: 'my app'\n  memory_size: lots\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n") == [
            "test.yaml:3:14: error: store.namespace: 'my app' is not a namespace; use up to 64 letters, digits, '-', '_' or '.'",
            "test.yaml:4:16: error: store.memory_size: 'lots' is not a size; write it like 512KB, 1MB or 1048576 (bytes)",
        ])
    }

    /// `store.local: {size}`: an in-process tier in front of Redis; it needs a size, and means nothing without Redis.
    @Test func localTier() throws {
        func yaml(_ store: String) -> String {
            "version: 1\nstore: \(store)\norigins: {a: {url: 'http://x'}}\nroutes: [{name: all, match: ANY /**, pass: true}]\n"
        }
        let tiered = try load(yaml("{redis: \"redis://cache:6379\", local: {size: 64MB}}"))
        #expect(tiered.store.local == LocalTier(bytes: 64 << 20, mode: .strict), "strict unless told")
        #expect(tiered.store.local?.summary == "in-process tier 64 MiB (strict)")
        #expect(try load(yaml("{redis: \"redis://cache:6379\"}")).store.local == nil, "no tier unless asked for")
        #expect(tiered.overriding(redis: try RedisEndpoint.parse("redis://other:6379").get()).store.local?.bytes == 64 << 20,
            "--redis keeps the tier")
        #expect(try load(yaml("{redis: \"redis-sentinel://s1,s2/main\", local: {size: 1MB, mode: tracked}}")).store.local?.mode == .tracked)
        #expect(rejection(yaml("{redis: \"redis-cluster://h1:7000\", local: {size: 1MB, mode: tracked}}")) == [
            "test.yaml:2:68: error: store.local.mode: tracked needs one Redis server or sentinels: in a cluster every master would have to "
                + "track the counters it holds; use mode: strict",
        ])
        #expect(rejection(yaml("{redis: \"redis://cache:6379\", local: {size: 1MB, mode: fast}}")) == [
            "test.yaml:2:63: error: store.local.mode: 'fast' is not a mode; write strict (counters read from Redis on every hit) or tracked "
                + "(kept current by Redis, no round trip)",
        ])
        #expect(rejection(yaml("{redis: \"redis://cache:6379\", local: {}}")) == [
            "test.yaml:2:45: error: store.local: say how much memory the in-process tier may hold: local: {size: 64MB}",
        ])
        #expect(rejection(yaml("{redis: \"redis://cache:6379\", local: {size: 64MB, speed: fast}}")).first?.contains("store.local") == true)
        #expect(rejection(yaml("{redis: \"redis://cache:6379\", local: {size: lots}}")).first?.contains("'lots' is not a size") == true)
        #expect(warnings(yaml("{local: {size: 64MB}}")) == [
            "test.yaml:2:16: warning: store.local: has no effect without store.redis: the memory store is in-process already (size it with store.memory_size)",
        ])
        #expect(try load(yaml("{local: {size: 64MB}}")).store.local == nil)
    }

    // MARK: Origins

    @Test func originURLs() {
        func origin(_ url: String) -> [String] {
            rejection("version: 1\norigins:\n  api:\n    url: \(url)\nroutes: [{name: all, match: ANY /**, pass: true}]\n")
        }
        #expect(origin("ftp://files.example.com") == [
            "test.yaml:4:10: error: origins.api.url: 'ftp://files.example.com' is not an http:// or https:// URL with a host",
        ])
        #expect(origin("http://x/api?key=1") == [
            "test.yaml:4:10: error: origins.api.url: the origin URL must not have a query or fragment; Trove forwards the client's",
        ])
        #expect(origin("http://user:pw@x/api") == [
            "test.yaml:4:10: error: origins.api.url: credentials must not be written in the URL; send them with headers: {Authorization: {env: API_AUTHORIZATION}}",
        ])
    }

    /// `trove serve --listen/--admin-listen/--redis/--memory/--origin` replace those settings and keep the rest.
    @Test func commandLineOverrides() throws {
        let rules = try load("""
            version: 1
            admin: {listen: 127.0.0.1:9090, token: {env: TROVE_ADMIN_TOKEN}}
            store: {redis: {env: REDIS_URL}, namespace: shop}
            origins:
              api:
                url: https://api.example.com/v2
                timeout: 7s
                headers: {X-Api-Key: {env: API_KEY}}
                rate: 2/s
              other:
                url: http://127.0.0.1:8001
            defaults: {origin: api}
            routes: [{name: all, match: ANY /**, pass: true}]
            """, environment: ["TROVE_ADMIN_TOKEN": "t", "API_KEY": "k"])
        #expect(rules.missingEnvironment == ["REDIS_URL"])
        let address = try OriginAddress.parse("http://127.0.0.1:18080/base/").get()
        #expect(address == OriginAddress(scheme: "http", host: "127.0.0.1", port: 18080, basePath: "/base"))
        let moved = rules.overriding(
            listen: ListenAddress(parsing: "127.0.0.1:1"), admin: ListenAddress(parsing: "127.0.0.1:2"),
            redis: try RedisEndpoint.parse("redis://127.0.0.1:3/4").get(), origins: ["api": address])
        #expect(moved.listen.port == 1)
        #expect(moved.admin.listen.port == 2)
        #expect(moved.store.redis?.endpoint?.port == 3)
        #expect(moved.store.namespace == "shop")
        #expect(moved.missingEnvironment.isEmpty, "REDIS_URL is no longer read")
        let api = try #require(moved.origin(named: "api"))
        #expect(api.url == "http://127.0.0.1:18080/base")
        #expect(api.timeout == .seconds(7))
        #expect(api.headers.map(\.name) == ["X-Api-Key"])
        #expect(api.protection.rate == 2)
        #expect(moved.origin(named: "other")?.url == "http://127.0.0.1:8001", "an origin not named stays where it was")
        #expect(rules.overriding(memory: true).store.redis == nil)
        guard case .failure(let problem) = OriginAddress.parse("127.0.0.1:8000") else {
            Issue.record("a URL without a scheme was accepted")
            return
        }
        #expect(problem.message == "'127.0.0.1:8000' is not an http:// or https:// URL with a host")
    }

    /// Tokens are read from the environment, never written in the file.
    @Test func originSecretsMustComeFromTheEnvironment() {
        let found = rejection("""
            version: 1
            origins:
              shop:
                url: https://shop.example.com
                headers:
                  X-Shopify-Access-Token: shpat_123
                  Host: other
                  Accept: application/json
            routes: [{name: all, match: ANY /**, pass: true}]
            """)
        #expect(found == [
            "test.yaml:6:31: error: origins.shop.headers.X-Shopify-Access-Token: looks like a secret, which must not be written in the rules file; read it from the environment: {env: X_SHOPIFY_ACCESS_TOKEN}",
            "test.yaml:7:7: error: origins.shop.headers.Host: Trove sets Host itself; it cannot be configured",
        ])
    }

    @Test func severalOriginsNeedADefault() {
        #expect(rejection("version: 1\norigins:\n  a: {url: 'http://a'}\n  b: {url: 'http://b'}\nroutes: [{name: all, match: ANY /**, pass: true}]\n") == [
            "test.yaml: error: defaults.origin: there are 2 origins; say which one routes use by default with defaults.origin (one of a, b)",
        ])
    }

    @Test func unknownOriginSuggestsOne() {
        #expect(rejection(head + "  - {name: a, match: GET /a, origin: apl, pass: true}\n") == [
            "test.yaml:6:38: error: route 'a': origin: there is no origin 'apl' (did you mean 'api'?); origins: api",
        ])
    }

    // MARK: Routes

    @Test func routeNeedsNameAndMatch() {
        #expect(rejection(head + "  - pass: true\n") == [
            "test.yaml:6:5: error: route '#1': 'name' is missing; every route needs a unique name (metrics and purges use it)",
            "test.yaml:6:5: error: route '#1': 'match' is missing, e.g. match: GET /api/v1/events/{id}",
        ])
    }

    @Test func badRouteName() {
        #expect(rejection(head + "  - {name: 'events list', match: GET /a, pass: true}\n") == [
            "test.yaml:6:12: error: route '#1': name: 'events list' is not a route name; use up to 64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit (names become metric labels), e.g. events-list",
        ])
    }

    @Test func duplicateRouteNames() {
        #expect(rejection(head + """
              - {name: events, match: GET /a, pass: true}
              - {name: events, match: GET /b, pass: true}
            """) == [
            "test.yaml:7:12: error: route 'events': name: the name is already used by route #1 (line 6); names must be unique because metrics, purges and explanations refer to routes by name",
        ])
    }

    @Test func badMatch() {
        #expect(rejection(head + "  - {name: a, match: /api/events, pass: true}\n") == [
            "test.yaml:6:22: error: route 'a': match: '/api/events' is not 'METHODS PATH'; add the method: 'GET /api/events'",
        ])
        #expect(rejection(head + "  - {name: a, match: FETCH /api/events, pass: true}\n") == [
            "test.yaml:6:22: error: route 'a': match: 'FETCH' is not a method Trove routes; use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY, separated by commas",
        ])
        #expect(rejection(head + "  - {name: a, match: 'GET /a/{id}/b/{id}', pass: true}\n") == [
            "test.yaml:6:22: error: route 'a': match: parameter '{id}' appears twice in the path",
        ])
    }

    @Test func routeDoesExactlyOneThing() {
        #expect(rejection(head + "  - {name: a, match: GET /a}\n") == [
            "test.yaml:6:5: error: route 'a': say what to do with matching requests: cache: (store answers), purge: (a write that invalidates entries) or pass: true (forward, never store)",
        ])
        #expect(rejection(head + "  - {name: a, match: GET /a, pass: true, cache: {ttl: 1m}}\n") == [
            "test.yaml:6:30: error: route 'a': pass: says cache and pass; a route does exactly one of cache, purge or pass",
        ])
        #expect(rejection(head + "  - {name: a, match: GET /a, pass: false}\n") == [
            "test.yaml:6:36: error: route 'a': pass: pass: false says nothing; use cache: or purge:, or pass: true",
        ])
    }

    @Test func misplacedKeysGetAHint() {
        #expect(rejection(head + "  - {name: a, match: GET /a, ttl: 5m, pass: true}\n") == [
            "test.yaml:6:30: error: route 'a': ttl: unknown key 'ttl' (write it inside cache: as cache.ttl); allowed here: name, match, origin, jwt, cache, purge, pass",
        ])
    }

    /// Writes are never stored, so a TTL on one is an error.
    @Test func writeRouteWithATTL() {
        #expect(rejection(head + """
              - name: event-update
                match: PUT /api/events/{id}
                cache:
                  ttl: 5m
            """) == [
            "test.yaml:9:7: error: route 'event-update': cache.ttl: the route matches PUT: writes are forwarded and may purge, but their answers are never stored, so cache.ttl has no meaning here; match only GET (and HEAD), or use purge: for a write route",
        ])
    }

    @Test func readRouteCannotPurge() {
        #expect(rejection(head + "  - {name: a, match: GET /a, purge: {tags: [x]}}\n") == [
            "test.yaml:6:37: error: route 'a': purge: the route matches GET; only writes (POST, PUT, PATCH, DELETE) purge",
        ])
        #expect(rejection(head + "  - {name: a, match: POST /a, purge: {}}\n") == [
            "test.yaml:6:38: error: route 'a': purge: purges nothing; list tags, keys or routes to purge (or all: true)",
        ])
    }

    /// `statuses: any` stores whatever status the origin declares fresh, so it only makes sense with
    /// freshness: origin; the heuristically cacheable statuses keep the rule's TTL as their fallback.
    @Test func anyStatus() throws {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, statuses: any}}\n") == [
            "test.yaml:6:57: error: route 'a': cache.statuses: statuses: any stores every status the origin gives explicit freshness (Cache-Control: max-age, s-maxage or Expires), so it needs freshness: origin; with freshness: rules, list the statuses to store: [200, 404]",
        ])
        let rules = try load(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, statuses: any, freshness: origin}}\n",
            environment: ["TROVE_ADMIN_TOKEN": "t"])
        let policy = try #require(rules.routes.first?.cachePolicy)
        #expect(policy.anyStatus)
        #expect(policy.ttl(forStatus: 404) == .seconds(60), "heuristically cacheable: the rule's TTL as fallback")
        #expect(policy.ttl(forStatus: 503) == nil, "stored only with explicit freshness")
        #expect(policy.storesWithExplicitFreshness(503) && policy.storesWithExplicitFreshness(599))
        #expect(!policy.storesWithExplicitFreshness(206) && !policy.storesWithExplicitFreshness(304))
        let listed = try #require(try load(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, statuses: [200], freshness: origin}}\n",
            environment: ["TROVE_ADMIN_TOKEN": "t"]).routes.first?.cachePolicy)
        #expect(!listed.storesWithExplicitFreshness(503), "a list is a list, whatever the origin says")
    }

    @Test func badDurations() {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 5 minutes}}\n") == [
            "test.yaml:6:43: error: route 'a': cache.ttl: '5 minutes' is not a duration; write it like 30s, 10m, 1h or 1h30m (units: ms, s, m, h, d)",
        ])
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 300}}\n") == [
            "test.yaml:6:43: error: route 'a': cache.ttl: '300' has no unit; write 300s (or 250ms, 10m, 1h)",
        ])
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 0s}}\n") == [
            "test.yaml:6:43: error: route 'a': cache.ttl: must be more than 0s (0s means \"only what the origin declares fresh\", with freshness: origin)",
        ])
        #expect(warnings(head + "  - {name: a, match: GET /a, cache: {ttl: 0s, freshness: origin}}\n") == [], "0s is meaningful there")
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, max_body: 1TB}}\n") == [
            "test.yaml:6:57: error: route 'a': cache.max_body: '1TB' is not a size; write it like 512KB, 1MB or 1048576 (bytes)",
        ])
    }

    @Test func missingTTL() {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {key: 'a'}}\n") == [
            "test.yaml:6:37: error: route 'a': cache.ttl: no TTL for 200 answers: say how long answers stay fresh with cache.ttl (e.g. ttl: 5m), defaults.cache.ttl, or statuses: {200: 5m}",
        ])
    }

    @Test func badStatuses() {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, statuses: [200, 206, 99, 200]}}\n") == [
            "test.yaml:6:63: error: route 'a': cache.statuses: 206 answers cannot be stored: they are not whole representations",
            "test.yaml:6:68: error: route 'a': cache.statuses: '99' is not an HTTP status from 200 to 599",
            "test.yaml:6:72: error: route 'a': cache.statuses: 200 is listed twice",
        ])
        #expect(warnings(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, statuses: [200, 503]}}\n") == [
            "test.yaml:6:63: warning: route 'a': cache.statuses: stores 503 answers: while they are fresh, an origin outage keeps being served from the cache after the origin has recovered",
        ])
    }

    // MARK: Templates in routes

    @Test func unknownPlaceholders() {
        #expect(rejection(head + "  - {name: a, match: 'GET /events/{id}', cache: {ttl: 1m, key: 'event:{ID}'}}\n") == [
            "test.yaml:6:64: error: route 'a': cache.key: unknown placeholder '{ID}' (did you mean {id}?)",
        ])
        #expect(rejection(head + "  - {name: a, match: 'GET /events/{id}', cache: {ttl: 1m, tags: ['event:{slug}']}}\n") == [
            "test.yaml:6:66: error: route 'a': cache.tags[0]: unknown placeholder '{slug}': the route's path has {id}; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}",
        ])
    }

    /// A purge template may only name the write route's own parameters.
    /// Every error of a route at once (#15): an unknown placeholder no longer hides the unseparated placeholders
    /// and the credentials in clear of the same key, nor those of its tags.
    @Test func everyErrorOfARouteAtOnce() {
        #expect(rejection(head + """
              - name: a
                match: GET /a
                cache: {ttl: 1m, key: "a:{header.authorization}:{nope}:{query.x}{query.y}", tags: ["t:{header.authorization}"]}
            """) == [
            "test.yaml:8:27: error: route 'a': cache.key: unknown placeholder '{nope}': the route's path has no parameters; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}",
            "test.yaml:8:27: error: route 'a': cache.key: placeholders {query.x} and {query.y} are not separated: put a character such as ':' between them, so that different values cannot render the same text",
            "test.yaml:8:27: error: route 'a': cache.key: {header.authorization} would write a credential into the store in clear (Redis keys are readable by anyone with access to Redis, and appear in logs); hash it: {header.authorization|sha256}",
            "test.yaml:8:87: error: route 'a': cache.tags[0]: {header.authorization} would write a credential into the store in clear (Redis keys are readable by anyone with access to Redis, and appear in logs); hash it: {header.authorization|sha256}",
        ])
        // Two unknown placeholders, a stray brace and a '#': all four, and nothing next to a broken placeholder is
        // taken for adjacent.
        #expect(rejection(head + "  - {name: b, match: GET /b, cache: {ttl: 1m, key: 'b:{x}{y}}#'}}\n") == [
            "test.yaml:6:52: error: route 'b': cache.key: unknown placeholder '{x}': the route's path has no parameters; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}",
            "test.yaml:6:52: error: route 'b': cache.key: unknown placeholder '{y}': the route's path has no parameters; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}",
            "test.yaml:6:52: error: route 'b': cache.key: '}' without a matching '{'",
            "test.yaml:6:52: error: route 'b': cache.key: '#' is reserved: Trove uses it to mark keys it shortened by hashing",
        ])
    }

    /// `soft:` beside a write's purge lists: true, false, or a duration (soft, with that much more stale window);
    /// the write's keys stay hard. Anything else says what to write.
    @Test func softPurges() throws {
        let cached = "  - {name: e, match: 'GET /events/{id}', cache: {ttl: 1m, tags: [events]}}\n"
        let soft = try load(head + cached + "  - {name: w, match: 'PUT /events/{id}', purge: {tags: [events], soft: true}}\n",
            environment: ["TROVE_ADMIN_TOKEN": "t"])
        guard case .write(let purges) = soft.plan(for: RequestHead(method: "PUT", target: "/events/7")).decision else {
            Issue.record("a write"); return
        }
        #expect(purges.soft == SoftPurge(extraStale: 0, keys: false))
        #expect(purges.tags == ["events"] && !purges.keys.isEmpty, "the write's own target is purged too, hard")
        let windowed = try load(head + cached + "  - {name: w, match: POST /events, purge: {tags: [events], soft: 90s}}\n",
            environment: ["TROVE_ADMIN_TOKEN": "t"])
        guard case .write(let withWindow) = windowed.plan(for: RequestHead(method: "POST", target: "/events")).decision else {
            Issue.record("a write"); return
        }
        #expect(withWindow.soft == SoftPurge(extraStale: 90_000, keys: false))
        let hard = try load(head + cached + "  - {name: w, match: POST /events, purge: {tags: [events], soft: false}}\n",
            environment: ["TROVE_ADMIN_TOKEN": "t"])
        guard case .write(let hardPurges) = hard.plan(for: RequestHead(method: "POST", target: "/events")).decision else {
            Issue.record("a write"); return
        }
        #expect(hardPurges.soft == nil)
        #expect(rejection(head + cached + "  - {name: w, match: POST /events, purge: {tags: [events], soft: maybe}}\n") == [
            "test.yaml:7:66: error: route 'w': purge.soft: 'maybe' is not true, false or a duration; write soft: true, or soft: 1m for a minute more of stale window",
        ])
        #expect(rejection(head + cached + "  - {name: w, match: POST /events, purge: {tags: [events], soft: 8d}}\n") == [
            "test.yaml:7:66: error: route 'w': purge.soft: '8d' is longer than the maximum of 7d",
        ])
    }

    @Test func purgeTemplateNamesAParameterTheRouteLacks() {
        #expect(rejection(head + """
              - {name: e, match: 'GET /events/{id}', cache: {ttl: 1m, tags: ['event:{id}']}}
              - {name: w, match: POST /events, purge: {tags: ['event:{id}']}}
            """) == [
            "test.yaml:7:51: error: route 'w': purge.tags[0]: unknown placeholder '{id}': the route's path has no parameters; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}",
        ])
    }

    @Test func adjacentPlaceholdersAreRefused() {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, key: 'a:{query.x}{query.y}'}}\n") == [
            "test.yaml:6:52: error: route 'a': cache.key: placeholders {query.x} and {query.y} are not separated: put a character such as ':' between them, so that different values cannot render the same text",
        ])
    }

    /// Credentials never reach a key or tag in clear.
    @Test func credentialsMustBeHashed() {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, key: 'a:{header.authorization}'}}\n") == [
            "test.yaml:6:52: error: route 'a': cache.key: {header.authorization} would write a credential into the store in clear (Redis keys are readable by anyone with access to Redis, and appear in logs); hash it: {header.authorization|sha256}",
        ])
        #expect(rejection(head + "  - {name: a, match: POST /a, purge: {keys: ['a:{cookie.sid}']}}\n") == [
            "test.yaml:6:46: error: route 'a': purge.keys[0]: {cookie.sid} would write a credential into the store in clear (Redis keys are readable by anyone with access to Redis, and appear in logs); hash it: {cookie.sid|sha256}",
        ])
    }

    /// The issue's case: caching authenticated requests without the identity in the key, and not shared.
    @Test func authenticatedRouteWithoutIdentityIsAnError() {
        #expect(rejection(head + """
              - name: asin-stats
                match: GET /api/v1/products/stats/asin-status
                cache:
                  key: "asin_stats"
                  ttl: 10s
                  authenticated: true
            """) == [
            "test.yaml:11:22: error: route 'asin-stats': cache.authenticated: the route caches authenticated requests, but its key does not hold the user's identity and the route is not shared: every user would be served the first user's answer. Put the identity in the key (e.g. key: \"asin_stats:user={header.authorization|sha256}\"), or set shared: true if the answer is the same for everyone",
        ])
        // Either remedy is accepted.
        #expect(warnings(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, key: 'a:{header.authorization|sha256}', authenticated: true}}\n") == [])
        #expect(warnings(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, key: 'a', authenticated: true, shared: true}}\n") == [])
    }

    @Test func sharedRouteCannotKeyOnIdentity() {
        #expect(rejection(head + "  - {name: a, match: GET /a, cache: {ttl: 1m, key: 'a:{cookie.sid|sha256}', shared: true}}\n") == [
            "test.yaml:6:85: error: route 'a': cache.shared: the route is shared: true, but its key holds the user's identity (Cookie); a shared route keeps one entry for everyone: remove the identity from the key, or remove shared: true to keep an entry per user",
        ])
    }

    @Test func keyIgnoringAPathParameterWarns() {
        #expect(warnings(head + "  - {name: a, match: 'GET /events/{id}', cache: {ttl: 1m, key: 'events'}}\n") == [
            "test.yaml:6:64: warning: route 'a': cache.key: the key does not use the path parameter {id}: every id shares one entry; add {id} to the key",
        ])
    }

    // MARK: Routes against each other

    /// A route that an earlier route always takes first is dead configuration.
    @Test func shadowedRoute() {
        #expect(rejection(head + """
              - {name: product, match: 'GET /api/products/{id}/', cache: {ttl: 1m, key: 'product:{id}'}}
              - {name: top-sellers, match: GET /api/products/top_sellers/, cache: {ttl: 1m, key: 'top'}}
            """) == [
            "test.yaml:7:32: error: route 'top-sellers': match: can never match: every request it matches (GET /api/products/top_sellers/) is taken first by route 'product' (line 6: GET /api/products/{id}/); routes match in file order, so move 'top-sellers' above 'product'",
        ])
        // Different methods do not shadow; a more specific route first is fine.
        #expect(warnings(head + """
              - {name: top, match: GET /api/products/top/, cache: {ttl: 1m, key: top}}
              - {name: product, match: 'GET /api/products/{id}/', cache: {ttl: 1m, key: 'product:{id}'}}
              - {name: change, match: 'PUT /api/products/{id}/', purge: {tags: [x]}}
              - {name: rest, match: ANY /**, pass: true}
            """) == [
            "test.yaml:8:69: warning: route 'change': purge.tags[0]: purges tag 'x', but no cached route tags its entries with anything it can match, so this purge removes nothing; tags in use: none",
        ])
    }

    @Test func catchAllFirstShadowsEverything() {
        let found = rejection(head + """
              - {name: all, match: ANY /**, pass: true}
              - {name: events, match: GET /events, pass: true}
            """)
        #expect(found.count == 1)
        #expect(found.first?.contains("route 'events': match: can never match") == true)
    }

    @Test func purgeRoutesMustNameCachedRoutes() {
        #expect(rejection(head + """
              - {name: events, match: GET /events, cache: {ttl: 1m}}
              - {name: other, match: GET /other, pass: true}
              - {name: w, match: POST /events, purge: {routes: [evnets, other]}}
            """) == [
            "test.yaml:8:53: error: route 'w': purge.routes[0]: there is no route 'evnets' (did you mean 'events'?); cached routes: events",
            "test.yaml:8:61: error: route 'w': purge.routes[1]: route 'other' does not cache, so there is nothing of it to purge",
        ])
    }

    @Test func purgesThatCannotReachAnythingWarn() {
        #expect(warnings(head + """
              - {name: events, match: 'GET /events/{id}', cache: {ttl: 1m, key: 'event:{id}', tags: ['event:{id}']}}
              - {name: w, match: 'PUT /events/{id}', purge: {tags: ['events:{id}'], keys: ['event:{id}', 'evt:{id}']}}
            """) == [
            "test.yaml:7:57: warning: route 'w': purge.tags[0]: purges tag 'events:{id}', but no cached route tags its entries with anything it can match, so this purge removes nothing; tags in use: event:{id}",
            "test.yaml:7:94: warning: route 'w': purge.keys[1]: purges key 'evt:{id}', but no cached route's key template can produce it, so this purge removes nothing; keys in use: event:{id}",
        ])
    }

    @Test func keysTwoRoutesCanShareWarn() {
        #expect(warnings(head + """
              - {name: a, match: GET /a, cache: {ttl: 1m, key: 'items:{query.page}'}}
              - {name: b, match: GET /b, cache: {ttl: 1m, key: 'items:{query.p}'}}
            """) == [
            "test.yaml:7:52: warning: route 'b': cache.key: its key 'items:{query.p}' can render the same text as the key 'items:{query.page}' of route 'a' (line 6), so the two routes can share entries; give one of them a distinct prefix if they serve different answers",
        ])
    }

    @Test func unmatchedPolicy() throws {
        #expect(rejection(head.replacingOccurrences(of: "routes:\n", with: "routes: [{name: all, match: ANY /**, pass: true}]\nunmatched: drop\n")) == [
            "test.yaml:6:12: error: unmatched: 'drop' is not pass or reject",
        ])
        #expect(try load(head.replacingOccurrences(of: "routes:\n", with: "routes: [{name: all, match: ANY /**, pass: true}]\nunmatched: reject\n")).unmatched == .reject)
    }

    /// All errors of a file are reported in one run, in line order.
    @Test func reportsEveryErrorAtOnce() {
        let found = rejection(head + """
              - {name: a, match: GET /a, cache: {ttl: soon}}
              - {name: b, match: GET /b, cache: {ttl: 1m, key: '{nope}'}}
              - {name: c, match: GET /c, pass: maybe}
            """)
        #expect(found.count == 3)
        #expect(found.map { $0.prefix(13) } == ["test.yaml:6:4", "test.yaml:7:5", "test.yaml:8:3"])
    }
}
