internal import TroveHTTP
internal import Foundation
internal import Yams

/// One load test: which rules and origin, what requests in which mix, at what load, for how long.
///
/// ```yaml
/// name: shopify-events
/// rules: ../../rules/shopify-events.yaml   # relative to this file
/// origin: {delay: 2s..3s, rate: 2, burst: 40}  # the demo origin, started where the rules' origin points
/// store: redis                             # redis, redis-sentinel, redis-cluster or memory
/// load: {mode: rate, rate: 20/s, connections: 64, duration: 30s, warmup: 10s}
/// users: 100                               # requests with `user: true` carry one of N tokens
/// requests:
///   - {weight: 85, get: "/api/v1/events?page={page}", page: "zipf(1..20, 1.2)"}
///   - {weight: 5, put: "/api/v1/events/{id}", id: "uniform(1..60)", body: '{"title": "x"}'}
/// ```
public struct Scenario: Sendable {
    public var name: String
    /// Absolute path of the rules file.
    public var rules: String
    public var origin: OriginSettings
    public var store: Store
    public var load: Load
    public var users: Int
    public var requests: [RequestTemplate]
    /// What to break during the measured run: Redis killed and started again (`chaos: {kill_redis: 5s,
    /// restart_redis: 10s}`), or the master killed and left to the sentinels or the cluster to replace
    /// (`chaos: {kill_master: 5s}`).
    public var chaos: Chaos?
    /// Which sides to measure: before (the origin alone) and after (through Trove), or one of them.
    public var sides: [String]
    /// The file it was read from.
    public var file: String

    public enum Store: String, Sendable, CaseIterable {
        /// One `redis-server`.
        case redis
        /// A master, a replica and three sentinels (`redis-sentinel://`), failing over after 1 s down.
        case redisSentinel = "redis-sentinel"
        /// Three masters with a replica each (`redis-cluster://`, `redis-cli --cluster create`), node timeout 2 s.
        case redisCluster = "redis-cluster"
        case memory

        var usesRedis: Bool { self != .memory }
    }

    public struct OriginSettings: Sendable {
        public var delay: Duration = .milliseconds(200)
        public var jitter: Duration = .zero
        public var rate: Double?
        public var burst = 40
    }

    public struct Load: Sendable {
        public enum Mode: String, Sendable {
            /// Requests start at a constant rate whatever happens to earlier ones (open loop); latency counts
            /// from when each should have started, so queueing is never hidden (no coordinated omission).
            case rate
            /// Each connection sends its next request when the previous answer is in (closed loop): peak
            /// throughput.
            case closed
        }

        public var mode: Mode = .rate
        /// Requests per second (rate mode).
        public var rate: Double = 100
        /// Connections at most (rate mode), or exactly (closed mode).
        public var connections = 64
        public var duration: Duration = .seconds(20)
        public var warmup: Duration = .seconds(5)
        /// An answer that takes longer counts as an error.
        public var timeout: Duration = .seconds(30)
    }

    public enum Chaos: Sendable {
        /// Redis killed (SIGKILL) at the first second, started again (empty) at the second.
        case redisOutage(kill: Duration, restart: Duration)
        /// The master killed (SIGKILL) at this second: the sentinels, or the cluster, promote its replica. In a
        /// cluster, the master of the shared counters, which every lookup reads.
        case masterKilled(at: Duration)
    }

    public struct RequestTemplate: Sendable {
        public var weight: Double
        public var method: String
        /// A path with `{name}` placeholders, filled from `values`.
        public var path: String
        public var values: [String: Distribution]
        public var user: Bool
        public var body: String?
        public var headers: [(String, String)]
    }

    /// Why a scenario file cannot be used.
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func load(_ path: String) throws -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ParseError(description: "\(path): cannot be read (\(error.localizedDescription))")
        }
        guard let root = try Yams.compose(yaml: text), let top = root.mapping else {
            throw ParseError(description: "\(path): expected a mapping (see loadtest/README.md)")
        }
        func fail(_ node: Node?, _ message: String) -> ParseError {
            ParseError(description: "\(path)\(node?.mark.map { ":\($0.line):\($0.column)" } ?? ""): \(message)")
        }
        func check(_ fields: Node.Mapping, _ known: [String], in section: String) throws {
            for (key, _) in fields {
                let name = key.scalar?.string ?? ""
                if !known.contains(name) {
                    throw fail(key, "unknown key '\(section)\(name)'; known: \(known.joined(separator: ", "))")
                }
            }
        }
        try check(top, ["name", "rules", "origin", "store", "load", "users", "requests", "chaos", "sides"], in: "")
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        guard let rulesText = top["rules"]?.scalar?.string else { throw fail(root, "'rules:' names the rules file to serve") }
        let rules = URL(fileURLWithPath: rulesText, relativeTo: directory).standardizedFileURL.path

        func integer(_ node: Node?) -> Int? {
            node?.scalar.flatMap { Int($0.string) }
        }

        func duration(_ node: Node?, _ field: String) throws -> Duration? {
            guard let node else { return nil }
            guard let text = node.scalar?.string, let value = Units.parseDuration(text) else {
                throw fail(node, "\(field): '\(node.scalar?.string ?? "?")' is not a duration such as 500ms, 30s, 2m")
            }
            return value
        }

        var origin = OriginSettings()
        if let node = top["origin"] {
            guard let fields = node.mapping else { throw fail(node, "origin: expected {delay: 200ms, rate: 2, burst: 40}") }
            try check(fields, ["delay", "rate", "burst"], in: "origin.")
            if let delayNode = fields["delay"], let text = delayNode.scalar?.string {
                let bounds = text.components(separatedBy: "..").map { Units.parseDuration($0) }
                guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil, high >= low else {
                    throw fail(delayNode, "origin.delay: '\(text)' is not a duration or a range such as 2s..3s")
                }
                origin.delay = low
                origin.jitter = high - low
            }
            if let node = fields["rate"] {
                guard let rate = node.scalar.flatMap({ rate($0.string) }) else { throw fail(node, "origin.rate: a rate such as 2/s") }
                origin.rate = rate
            }
            if let burst = integer(fields["burst"]) { origin.burst = burst }
        }
        let store = Store(rawValue: top["store"]?.scalar?.string ?? "memory")
        guard let store else {
            throw fail(top["store"], "store: \(Store.allCases.map(\.rawValue).joined(separator: ", ")) (one of them)")
        }

        var load = Load()
        if let node = top["load"] {
            guard let fields = node.mapping else { throw fail(node, "load: expected {mode: rate, rate: 100/s, duration: 20s}") }
            try check(fields, ["mode", "rate", "connections", "duration", "warmup", "timeout"], in: "load.")
            if let modeText = fields["mode"]?.scalar?.string {
                guard let mode = Load.Mode(rawValue: modeText) else { throw fail(fields["mode"], "load.mode: rate or closed") }
                load.mode = mode
            }
            if let rateNode = fields["rate"], let text = rateNode.scalar?.string {
                guard let value = rate(text) else {
                    throw fail(rateNode, "load.rate: '\(text)' is not a rate such as 200/s")
                }
                load.rate = value
            }
            if let connections = integer(fields["connections"]) { load.connections = max(1, connections) }
            load.duration = try duration(fields["duration"], "load.duration") ?? load.duration
            load.warmup = try duration(fields["warmup"], "load.warmup") ?? load.warmup
            load.timeout = try duration(fields["timeout"], "load.timeout") ?? load.timeout
        }
        let users = integer(top["users"]) ?? 100

        guard let list = top["requests"]?.sequence, !list.isEmpty else {
            throw fail(root, "'requests:' lists the requests to send, e.g. - {weight: 90, get: /api/v1/events/{id}, id: zipf(1..60)}")
        }
        var requests: [RequestTemplate] = []
        for item in list {
            guard let fields = item.mapping else { throw fail(item, "a request is a mapping such as {weight: 90, get: /path}") }
            var method: String?
            var path: String?
            var values: [String: Distribution] = [:]
            var weight = 1.0
            var user = false
            var body: String?
            var headers: [(String, String)] = []
            for (key, value) in fields {
                let name = key.scalar?.string ?? ""
                let text = value.scalar?.string ?? ""
                switch name {
                case "get", "head", "post", "put", "patch", "delete":
                    method = name.uppercased()
                    path = text
                case "weight": weight = Double(text) ?? 1
                case "user": user = text == "true"
                case "body": body = text
                case "headers":
                    for (headerName, headerValue) in value.mapping ?? [:] {
                        headers.append((headerName.scalar?.string ?? "", headerValue.scalar?.string ?? ""))
                    }
                default:
                    guard let distribution = Distribution(parsing: text) else {
                        throw fail(value, "'\(name)': '\(text)' is not a value, a list [a, b], uniform(1..100) or zipf(1..100, 1.1)")
                    }
                    values[name] = distribution
                }
            }
            guard let method, let path else { throw fail(item, "say the method and path: get: /api/v1/events/{id}") }
            for placeholder in Self.placeholders(in: path) where values[placeholder] == nil {
                throw fail(item, "'{\(placeholder)}' in \(path) has no values; add \(placeholder): uniform(1..100)")
            }
            requests.append(RequestTemplate(weight: weight, method: method, path: path, values: values, user: user, body: body, headers: headers))
        }
        var sides = ["before", "after"]
        if let node = top["sides"] {
            let names = node.sequence?.compactMap { $0.scalar?.string } ?? []
            guard !names.isEmpty, names.allSatisfy({ ["before", "after"].contains($0) }) else {
                throw fail(node, "sides: [before, after], [before] or [after]")
            }
            sides = names
        }
        var chaos: Chaos?
        if let node = top["chaos"] {
            guard let fields = node.mapping else { throw fail(node, "chaos: {kill_redis: 5s, restart_redis: 10s} or {kill_master: 5s}") }
            try check(fields, ["kill_redis", "restart_redis", "kill_master"], in: "chaos.")
            if let master = try duration(fields["kill_master"], "chaos.kill_master") {
                guard fields.count == 1 else { throw fail(node, "chaos: {kill_master: 5s} alone (the sentinels or the cluster bring a master back)") }
                guard store == .redisSentinel || store == .redisCluster else {
                    throw fail(node, "chaos.kill_master needs a master to replace: store: redis-sentinel or redis-cluster")
                }
                chaos = .masterKilled(at: master)
            } else {
                guard store == .redis else { throw fail(node, "chaos.kill_redis kills the one Redis, so it needs store: redis") }
                guard let kill = try duration(fields["kill_redis"], "chaos.kill_redis"),
                    let restart = try duration(fields["restart_redis"], "chaos.restart_redis"), restart > kill
                else { throw fail(node, "chaos: {kill_redis: 5s, restart_redis: 10s}") }
                chaos = .redisOutage(kill: kill, restart: restart)
            }
        }
        return Scenario(
            name: top["name"]?.scalar?.string ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
            rules: rules, origin: origin, store: store, load: load, users: users, requests: requests, chaos: chaos, sides: sides,
            file: path)
    }

    /// `500ms`, `30s`, `2m`.
    public static func duration(_ text: String) -> Duration? {
        Units.parseDuration(text)
    }

    /// `200/s` or `200`.
    public static func rate(_ text: String) -> Double? {
        guard let value = Double(text.hasSuffix("/s") ? String(text.dropLast(2)) : text), value > 0 else { return nil }
        return value
    }

    static func placeholders(in path: String) -> [String] {
        var names: [String] = []
        var rest = Substring(path)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
}

/// Values for a placeholder: one value, a list, a uniform range, or a Zipf-like range where low values are
/// popular (`zipf(1..100, 1.1)`: value k is chosen with weight 1/k^1.1), like a few hot products and a long tail.
public enum Distribution: Sendable, Equatable {
    case constant(String)
    case list([String])
    case uniform(ClosedRange<Int>)
    case zipf(ClosedRange<Int>, exponent: Double)

    init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func range(_ inner: Substring) -> ClosedRange<Int>? {
            let parts = inner.components(separatedBy: "..")
            guard parts.count == 2, let low = Int(parts[0].trimmingCharacters(in: .whitespaces)),
                let high = Int(parts[1].trimmingCharacters(in: .whitespaces)), high >= low
            else { return nil }
            return low...high
        }
        if trimmed.hasPrefix("uniform("), trimmed.hasSuffix(")") {
            guard let bounds = range(trimmed.dropFirst(8).dropLast()) else { return nil }
            self = .uniform(bounds)
        } else if trimmed.hasPrefix("zipf("), trimmed.hasSuffix(")") {
            let inner = trimmed.dropFirst(5).dropLast().split(separator: ",")
            guard let bounds = range(inner[0]) else { return nil }
            let exponent = inner.count > 1 ? Double(inner[1].trimmingCharacters(in: .whitespaces)) ?? 1 : 1
            self = .zipf(bounds, exponent: exponent)
        } else if trimmed.hasPrefix("["), trimmed.hasSuffix("]") {
            self = .list(trimmed.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        } else if !trimmed.isEmpty {
            self = .constant(trimmed)
        } else {
            return nil
        }
    }
}
