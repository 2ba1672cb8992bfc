internal import TroveHTTP
internal import Yams
internal import Foundation

/// `admin:` and `store:`: the listeners' and the store's settings.
extension RulesLoader {
    static func readAdmin(_ node: Node?, reader: inout RulesReader, publicListen: ListenAddress) -> AdminSettings {
        var listen = ListenAddress(host: "127.0.0.1", port: 9090)
        let implied = " (admin.token defaults to {env: TROVE_ADMIN_TOKEN}; on a loopback admin.listen, "
            + "allow_unauthenticated: true runs without one)"
        guard let node,
            let fields = reader.mapping(node, path: "admin", allowed: ["listen", "token", "allow_unauthenticated"])
        else {
            let token = reader.environmentValue("TROVE_ADMIN_TOKEN", at: node, field: "admin.token", implied: implied)
            return AdminSettings(listen: listen, token: token, allowUnauthenticated: false)
        }
        var token: ConfigString?
        var allowUnauthenticated = false
        if let listenNode = fields["listen"], let text = reader.string(listenNode, field: "admin.listen") {
            if let parsed = ListenAddress(parsing: text) {
                listen = parsed
                if parsed.port != 0 && parsed.port == publicListen.port
                    && (parsed.host == publicListen.host || parsed.host == "0.0.0.0" || publicListen.host == "0.0.0.0")
                {
                    reader.error("the admin listener cannot share the public listener's address \(publicListen)",
                        at: listenNode, field: "admin.listen")
                }
            } else {
                reader.error("'\(text)' is not an address; write host:port, e.g. 127.0.0.1:9090",
                    at: listenNode, field: "admin.listen")
            }
        }
        if let tokenNode = fields["token"] {
            token = reader.configString(tokenNode, field: "admin.token", secret: true, suggestedVariable: "TROVE_ADMIN_TOKEN")
        }
        if let allowNode = fields["allow_unauthenticated"], let allow = reader.bool(allowNode, field: "admin.allow_unauthenticated") {
            allowUnauthenticated = allow
            if allow && !listen.isLoopback {
                reader.error("an admin API without a token is only allowed on a loopback address (127.0.0.1 or "
                    + "::1), not on \(listen): anyone who can reach it could purge the cache",
                    at: allowNode, field: "admin.allow_unauthenticated")
            }
            if allow && fields["token"] != nil {
                reader.error("say either token or allow_unauthenticated: true, not both", at: allowNode,
                    field: "admin.allow_unauthenticated")
            }
        }
        if !allowUnauthenticated && fields["token"] == nil {
            token = reader.environmentValue("TROVE_ADMIN_TOKEN", at: node, field: "admin.token", implied: implied)
        }
        return AdminSettings(listen: listen, token: allowUnauthenticated ? nil : token, allowUnauthenticated: allowUnauthenticated)
    }

    static func readStore(_ node: Node?, reader: inout RulesReader) -> StoreSettings {
        var namespace = "trove"
        var memoryBytes = 256 << 20
        var maxKeyLength = 256
        var redis: RedisSettings?
        guard let node,
            let fields = reader.mapping(node, path: "store", allowed: [
                "redis", "tls", "sentinel", "namespace", "connect_timeout", "command_timeout", "memory_size", "max_key_length", "local",
            ])
        else {
            return StoreSettings(redis: nil, namespace: namespace, memoryBytes: memoryBytes, maxKeyLength: maxKeyLength)
        }
        if let nsNode = fields["namespace"], let text = reader.string(nsNode, field: "store.namespace") {
            if text.count <= 64, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                namespace = text
            } else {
                reader.error("'\(text)' is not a namespace; use up to 64 letters, digits, '-', '_' or '.'",
                    at: nsNode, field: "store.namespace")
            }
        }
        if let sizeNode = fields["memory_size"], let size = reader.size(sizeNode, field: "store.memory_size", maximum: 1 << 40) {
            memoryBytes = size
        }
        if let lengthNode = fields["max_key_length"],
            let length = reader.int(lengthNode, field: "store.max_key_length", range: 100...4096)
        {
            maxKeyLength = length
        }
        let connectTimeout = fields["connect_timeout"].flatMap {
            reader.duration($0, field: "store.connect_timeout", maximum: .seconds(60))
        } ?? .seconds(1)
        let commandTimeout = fields["command_timeout"].flatMap {
            reader.duration($0, field: "store.command_timeout", maximum: .seconds(60))
        } ?? .milliseconds(250)
        if let redisNode = fields["redis"] {
            if let url = reader.configString(redisNode, field: "store.redis", secret: false, suggestedVariable: "REDIS_URL") {
                var endpoint: RedisEndpoint?
                if let value = url.value {
                    switch RedisEndpoint.parse(value) {
                    case .success(let parsed):
                        endpoint = parsed
                        if parsed.password != nil && url.environmentVariable == nil {
                            reader.error("the URL holds a password, which must not be written in the rules file; "
                                + "read the whole URL from the environment: {env: REDIS_URL}",
                                at: redisNode, field: "store.redis")
                        }
                    case .failure(let error):
                        let from = url.environmentVariable.map { " (from $\($0))" } ?? ""
                        reader.error(error.message + from, at: redisNode, field: "store.redis")
                    }
                }
                redis = RedisSettings(url: url, endpoint: endpoint, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
                if let tlsNode = fields["tls"] {
                    if let endpoint, !endpoint.tls {
                        reader.error("store.tls says how to check a TLS connection, but the URL is redis://; write rediss:// to "
                            + "speak TLS (managed Redis usually listens for it on 6380 or 6379)", at: tlsNode, field: "store.tls")
                    }
                    if let tls = readRedisTLS(tlsNode, reader: &reader) { redis?.tls = tls }
                }
                if let sentinelNode = fields["sentinel"] {
                    if let endpoint, endpoint.masterName == nil {
                        reader.error("store.sentinel gives the sentinels' credentials, but the URL names no sentinels; write "
                            + "redis-sentinel://host:26379,host:26379/mymaster", at: sentinelNode, field: "store.sentinel")
                    }
                    if let auth = readSentinelAuth(sentinelNode, reader: &reader) { redis?.sentinelAuth = auth }
                }
            }
        } else {
            for name in ["connect_timeout", "command_timeout", "tls", "sentinel"] where fields[name] != nil {
                reader.warning("has no effect without store.redis (the memory store has no timeouts)",
                    at: fields[name], field: "store.\(name)")
            }
            if fields["local"] != nil {
                reader.warning("has no effect without store.redis: the memory store is in-process already (size it with "
                    + "store.memory_size)", at: fields["local"], field: "store.local")
            }
        }
        let local = fields["local"].flatMap { redis == nil ? nil : readLocalTier($0, redis: redis?.endpoint, reader: &reader) }
        return StoreSettings(redis: redis, namespace: namespace, memoryBytes: memoryBytes, maxKeyLength: maxKeyLength, local: local)
    }

    /// `store.local: {size, mode}`: the in-process tier in front of Redis.
    static func readLocalTier(_ node: Node, redis: RedisEndpoint?, reader: inout RulesReader) -> LocalTier? {
        guard let fields = reader.mapping(node, path: "store.local", allowed: ["size", "mode"]) else { return nil }
        guard let sizeNode = fields["size"] else {
            reader.error("say how much memory the in-process tier may hold: local: {size: 64MB}", at: node, field: "store.local")
            return nil
        }
        guard let bytes = reader.size(sizeNode, field: "store.local.size", maximum: 1 << 40) else { return nil }
        var tier = LocalTier(bytes: bytes)
        if let modeNode = fields["mode"], let text = reader.string(modeNode, field: "store.local.mode") {
            guard let mode = LocalTier.Mode(rawValue: text) else {
                reader.error("'\(text)' is not a mode; write strict (counters read from Redis on every hit) or tracked (kept "
                    + "current by Redis, no round trip)", at: modeNode, field: "store.local.mode")
                return nil
            }
            if mode == .tracked, redis?.topology == .cluster {
                reader.error("tracked needs one Redis server or sentinels: in a cluster every master would have to track the "
                    + "counters it holds; use mode: strict", at: modeNode, field: "store.local.mode")
                return nil
            }
            tier.mode = mode
        }
        return tier
    }

    /// `store.sentinel: {username, password}`: how Trove proves itself to the sentinels, which may differ from the
    /// master's credentials in the URL. The password comes from the environment.
    static func readSentinelAuth(_ node: Node, reader: inout RulesReader) -> RedisSentinelAuth? {
        guard let fields = reader.mapping(node, path: "store.sentinel", allowed: ["username", "password"], hints: [
            "user": "write username: NAME", "pass": "write password: {env: SENTINEL_PASSWORD}",
        ]) else { return nil }
        var auth = RedisSentinelAuth()
        if let userNode = fields["username"] { auth.username = reader.string(userNode, field: "store.sentinel.username") }
        if let passwordNode = fields["password"] {
            auth.password = reader.configString(passwordNode, field: "store.sentinel.password", secret: true,
                suggestedVariable: "SENTINEL_PASSWORD")?.value
        }
        if auth.username != nil && auth.password == nil && fields["password"] == nil {
            reader.error("a username needs a password: add password: {env: SENTINEL_PASSWORD}", at: node, field: "store.sentinel")
        }
        return auth
    }

    /// `store.tls: {ca_file, cert_file, key_file, server_name, verify}`. Each file is a path (relative to the rules
    /// file's folder), or `{env: NAME}` holding the PEM itself or a path.
    static func readRedisTLS(_ node: Node, reader: inout RulesReader) -> RedisTLS? {
        guard let fields = reader.mapping(node, path: "store.tls", allowed: ["ca_file", "cert_file", "key_file", "server_name", "verify"], hints: [
            "ca": "write ca_file: PATH", "cert": "write cert_file: PATH", "key": "write key_file: PATH", "sni": "write server_name: NAME",
        ]) else { return nil }
        var tls = RedisTLS()
        var valid = true
        func pem(_ name: String, marker: String) -> String? {
            guard let fileNode = fields[name] else { return nil }
            let field = "store.tls.\(name)"
            guard let value = reader.configString(fileNode, field: field, secret: false, suggestedVariable: "REDIS_TLS_" + name.uppercased()) else {
                valid = false
                return nil
            }
            guard let text = value.value else { return nil }  // an unset variable: reported; `trove serve` refuses to start
            if text.contains("-----BEGIN") { return text }
            let path = text.hasPrefix("/") ? text : URL(fileURLWithPath: reader.file).deletingLastPathComponent().appendingPathComponent(text).path
            guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
                reader.error("cannot read '\(path)' (a path is relative to the rules file's folder; {env: NAME} may hold the PEM itself)",
                    at: fileNode, field: field)
                valid = false
                return nil
            }
            guard contents.contains("-----BEGIN") && contents.contains(marker) else {
                reader.error("'\(path)' holds no \(marker) in PEM (-----BEGIN ...)", at: fileNode, field: field)
                valid = false
                return nil
            }
            return contents
        }
        tls.caPEM = pem("ca_file", marker: "CERTIFICATE")
        tls.certificatePEM = pem("cert_file", marker: "CERTIFICATE")
        tls.keyPEM = pem("key_file", marker: "KEY")
        if (fields["cert_file"] == nil) != (fields["key_file"] == nil) {
            reader.error("a client certificate needs its key: give cert_file and key_file together", at: fields["cert_file"] ?? fields["key_file"],
                field: fields["cert_file"] == nil ? "store.tls.key_file" : "store.tls.cert_file")
            valid = false
        }
        if let nameNode = fields["server_name"], let name = reader.string(nameNode, field: "store.tls.server_name", example: "redis.example.com") {
            tls.serverName = name
        }
        if let verifyNode = fields["verify"], let verify = reader.bool(verifyNode, field: "store.tls.verify") {
            tls.verify = verify
            if !verify {
                reader.warning("the Redis server's certificate is not checked: anyone between Trove and Redis can read and change "
                    + "the cache; give ca_file instead", at: verifyNode, field: "store.tls.verify")
            }
        }
        return valid ? tls : nil
    }
}
