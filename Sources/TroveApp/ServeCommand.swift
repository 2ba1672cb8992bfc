internal import TroveHTTP
internal import ArgumentParser
internal import Foundation
internal import Logging
internal import ServiceLifecycle
internal import UnixSignals
internal import TroveRules
internal import TroveServer

/// `trove serve`: runs the proxy and the admin API until SIGINT or SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run Trove: the caching proxy on `listen`, the admin API on `admin.listen`.",
        discussion: """
            Reads the rules file, refuses to start if it has errors or reads environment variables that are \
            not set, then serves until SIGINT or SIGTERM, after which it stops accepting connections and lets \
            requests in flight finish (--drain). SIGHUP (or POST /reload on the admin API) re-reads the rules \
            file; a file with errors is refused and the rules in force stay. Redis is used when the rules name \
            one (requests go to the origin while it is down); --memory uses the in-process memory store instead.

            Example:
              TROVE_ADMIN_TOKEN=$(openssl rand -hex 32) trove serve -c rules/shopify-events.yaml
            """
    )

    @OptionGroup var options: ConfigOption

    @Flag(name: .customLong("memory"), help: "Use the in-process memory store even when the rules name a Redis.")
    var memory = false

    @Flag(help: ArgumentHelp(
        "Run every cacheable route in shadow: clients get the origin's answers; Trove stores, purges and compares, and reports "
            + "what it would have served at the admin API's /shadow (`trove shadow`). See docs/shadow.md."))
    var shadow = false

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "level"))
    var logLevel: String = "info"

    @Option(help: ArgumentHelp(
        "On SIGTERM/SIGINT, how long requests in flight may take to finish before their connections are closed.",
        valueName: "duration"))
    var drain: String = "10s"

    @Option(help: ArgumentHelp("Listen here instead of the rules' `listen` (e.g. 0.0.0.0:8080 in a container).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("Serve the admin API here instead of the rules' `admin.listen`.", valueName: "host:port"))
    var adminListen: String?

    @Option(help: ArgumentHelp("Use this Redis instead of the rules' `store.redis` (redis://, rediss://, redis-sentinel://s1:26379,s2:26379/mymaster, or redis-cluster://n1:6379,n2:6379).", valueName: "url"))
    var redis: String?

    @Option(help: ArgumentHelp(
        "Write one line per request to stdout, stderr or a file (appended to). Off by default.", valueName: "stdout|stderr|path"))
    var accessLog: String?

    @Option(help: ArgumentHelp("The access log's format: text, or json (one object per line).", valueName: "text|json"))
    var accessLogFormat: String = "text"

    @Option(
        name: .customLong("origin"),
        help: ArgumentHelp(
            "Send an origin's requests to another URL, keeping its headers, timeouts and limits (repeatable).",
            valueName: "name=http://host:port"))
    var originOverrides: [String] = []

    func validate() throws {
        _ = try originAddresses()
        for (name, value) in [("--listen", listen), ("--admin-listen", adminListen)] {
            if let value, ListenAddress(parsing: value) == nil {
                throw ValidationError("\(name) '\(value)' is not host:port, e.g. 0.0.0.0:8080")
            }
        }
        if let redis, case .failure(let error) = RedisEndpoint.parse(redis) {
            throw ValidationError("--redis: \(error.message)")
        }
        if redis != nil && memory {
            throw ValidationError("say --redis or --memory, not both")
        }
        guard Units.parseDuration(drain) != nil else {
            throw ValidationError("'\(drain)' is not a duration; write it like 10s or 500ms")
        }
        guard AccessLogHandler.Format(rawValue: accessLogFormat) != nil else {
            throw ValidationError("--access-log-format '\(accessLogFormat)' is not text or json")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("'\(logLevel)' is not a log level; use trace, debug, info, notice, warning or error")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "trove")
        let rules: RuleSet
        do {
            rules = try overridden(RulesLoader.load(path: options.config))
        } catch {
            print(RulesReport.rejection(error, path: options.config))
            throw ExitCode.failure
        }
        if let unknown = try originAddresses().keys.sorted().first(where: { rules.origin(named: $0) == nil }) {
            FileHandle.standardError.write(Data(
                "trove: --origin \(unknown)=…: \(options.config) has no origin named '\(unknown)'; it has \(rules.origins.map(\.name).joined(separator: ", "))\n".utf8))
            throw ExitCode.failure
        }
        if rules.admin.allowUnauthenticated && !rules.admin.listen.isLoopback {
            FileHandle.standardError.write(Data(
                "trove: --admin-listen \(rules.admin.listen): \(options.config) says admin.allow_unauthenticated: true, which is only allowed on a loopback address (anyone who can reach the admin API could purge the cache); set admin.token (e.g. {env: TROVE_ADMIN_TOKEN}) instead\n".utf8))
            throw ExitCode.failure
        }
        for warning in rules.warnings where !(memory && warning.field == "store.redis") {
            FileHandle.standardError.write(Data("\(warning)\n".utf8))
        }
        var sink: AccessLogSink?
        if let accessLog {
            do {
                sink = try AccessLogSink.open(accessLog)
            } catch {
                FileHandle.standardError.write(Data("trove: --access-log \(accessLog): cannot open it for writing (\(error)); give stdout, stderr or a writable file\n".utf8))
                throw ExitCode.failure
            }
        }
        // Every client connection is a descriptor: use all the hard limit allows (the soft default is often 1024).
        ClientConnections.raiseDescriptorLimit()
        let application: TroveApplication
        do {
            var settings = TroveApplication.Options(forceMemoryStore: memory, logger: logger, rulesPath: options.config)
            if let sink, let format = AccessLogHandler.Format(rawValue: accessLogFormat) {
                settings.accessLog = AccessLog(logger: Logger(label: "trove.access") { _ in AccessLogHandler(format: format, sink: sink) })
            }
            let command = self
            settings.adjust = { command.overridden($0) }
            application = try await TroveApplication.start(rules: rules, options: settings)
        } catch let error as TroveApplication.StartError {
            FileHandle.standardError.write(Data("trove: \(error)\n".utf8))
            throw ExitCode.failure
        } catch {
            FileHandle.standardError.write(Data("trove: cannot listen: \(error) (is another process using the port?)\n".utf8))
            throw ExitCode.failure
        }
        // Written at once: stdout to a file or a pipe is block-buffered, and the banner tells where Trove listens.
        FileHandle.standardOutput.write(Data((Self.banner(rules, application: application, memory: memory) + "\n").utf8))
        let grace = Units.parseDuration(drain) ?? .seconds(10)
        let group = ServiceGroup(
            services: [
                ShutdownService {
                    logger.notice("draining: no new connections; requests in flight may take \(Units.format(grace))")
                    await application.stop(grace: grace)
                },
                ReloadService(application: application, logger: logger),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        sink?.close()
        logger.info("stopped")
    }

    /// The rules with the command line's --listen, --admin-listen, --redis, --memory, --origin and --shadow applied.
    /// (`validate()` has checked the --origin options.)
    func overridden(_ rules: RuleSet) -> RuleSet {
        rules.overriding(
            listen: listen.flatMap(ListenAddress.init(parsing:)), admin: adminListen.flatMap(ListenAddress.init(parsing:)),
            redis: redis.flatMap { try? RedisEndpoint.parse($0).get() }, memory: memory, origins: (try? originAddresses()) ?? [:],
            shadow: shadow)
    }

    /// `--origin name=url` options, parsed.
    func originAddresses() throws -> [String: OriginAddress] {
        var addresses: [String: OriginAddress] = [:]
        for text in originOverrides {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw ValidationError("--origin '\(text)' is not name=URL, e.g. --origin events-api=http://127.0.0.1:8001")
            }
            switch OriginAddress.parse(String(text[text.index(after: equals)...])) {
            case .success(let address): addresses[String(text[..<equals])] = address
            case .failure(let problem): throw ValidationError("--origin \(text): \(problem.message)")
            }
        }
        return addresses
    }

    static func banner(_ rules: RuleSet, application: TroveApplication, memory: Bool) -> String {
        let store: String
        if let redis = rules.store.redis, redis.endpoint != nil, !memory {
            store = "\(redis.summary), namespace '\(rules.store.namespace)'" + (rules.store.local.map { ", " + $0.summary } ?? "")
        } else {
            store = "memory, \(Units.format(bytes: rules.store.memoryBytes))"
        }
        var lines = [
            "trove \(TroveVersion.current): serving \(rules.file) (rules \(rules.fingerprint), \(rules.routes.count) routes)",
            "  proxy    http://\(rules.listen.host):\(application.publicPort)",
            "  admin    http://\(rules.admin.listen.host):\(application.adminPort)"
                + (rules.admin.allowUnauthenticated ? " (no token)" : " (bearer token from \(rules.admin.token?.display ?? "?"))"),
            "  store    \(store)",
            "  limits   \(application.connections.effectiveMaximum(rules.limits.maxConnections)) connections, "
                + "headers within \(Units.format(rules.limits.headerTimeout)), idle \(Units.format(rules.limits.keepAliveTimeout)), "
                + "bodies up to \(Units.format(bytes: rules.limits.maxRequestBody)) (see limits: in docs/rules.md)",
        ]
        for origin in rules.origins { lines.append("  origin   \(origin.name) → \(origin.url)") }
        let shadowed = rules.shadowRoutes
        if !shadowed.isEmpty {
            lines.append("  shadow   \(shadowed.count == rules.routes.filter({ $0.cachePolicy != nil }).count ? "every cacheable route" : shadowed.map(\.name).joined(separator: ", ")): "
                + "clients get the origin's answers; see `trove shadow --admin URL`")
        }
        return lines.joined(separator: "\n")
    }
}

/// Re-reads the rules file on each SIGHUP.
struct ReloadService: Service {
    let application: TroveApplication
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            let outcome = application.reload()
            if outcome.applied {
                let restart = outcome.needsRestart.isEmpty ? "" : "; restart to apply \(outcome.needsRestart.joined(separator: ", "))"
                logger.notice("SIGHUP: rules \(outcome.version) in force\(restart)")
            } else {
                let errors = outcome.diagnostics.map { "  \($0)" }.joined(separator: "\n")
                logger.error("SIGHUP: the rules file was refused; the rules in force stay:\n\(errors)")
            }
        }
    }
}

/// Waits for the service group's graceful shutdown, then runs `stop`.
struct ShutdownService: Service {
    let stop: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }
}
