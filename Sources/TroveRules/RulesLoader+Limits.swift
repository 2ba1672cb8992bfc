internal import TroveHTTP
internal import Yams

/// `limits:`: what one client, and all of them, may cost. Every key is declared once, in `limitKeys`, with
/// its type and bounds; its default is `Limits`' own.
extension RulesLoader {
    /// One key of `limits:`: its name, and how its value is read into `Limits`.
    struct LimitKey: Sendable {
        let name: String
        let read: @Sendable (_ node: Node, _ field: String, _ reader: inout RulesReader, _ limits: inout Limits) -> Void

        static func duration(_ name: String, maximum: Duration, _ path: any WritableKeyPath<Limits, Duration> & Sendable) -> LimitKey {
            LimitKey(name: name) { node, field, reader, limits in
                if let value = reader.duration(node, field: field, maximum: maximum) { limits[keyPath: path] = value }
            }
        }

        static func size(_ name: String, maximum: Int, _ path: any WritableKeyPath<Limits, Int> & Sendable) -> LimitKey {
            LimitKey(name: name) { node, field, reader, limits in
                if let value = reader.size(node, field: field, maximum: maximum) { limits[keyPath: path] = value }
            }
        }

        static func count(_ name: String, range: ClosedRange<Int>, _ path: any WritableKeyPath<Limits, Int> & Sendable) -> LimitKey {
            LimitKey(name: name) { node, field, reader, limits in
                if let value = reader.int(node, field: field, range: range) { limits[keyPath: path] = value }
            }
        }
    }

    static let limitKeys: [LimitKey] = [
        .count("max_connections", range: 1...1_000_000, \.maxConnections),
        .duration("header_timeout", maximum: .seconds(600), \.headerTimeout),
        .duration("body_timeout", maximum: .seconds(3600), \.bodyTimeout),
        .duration("keepalive_timeout", maximum: .seconds(3600), \.keepAliveTimeout),
        .duration("send_timeout", maximum: .seconds(3600), \.sendTimeout),
        .size("max_request_body", maximum: 1 << 30, \.maxRequestBody),
        .size("max_response_body", maximum: 1 << 30, \.maxResponseBody),
        .size("request_body_budget", maximum: 1 << 40, \.requestBodyBudget),
        .size("response_body_budget", maximum: 1 << 40, \.responseBodyBudget),
        .count("max_pipelined", range: 1...1024, \.maxPipelined),
        .count("max_purge", range: 1...1_000_000, \.maxPurge),
        .size("max_decoded_body", maximum: 1 << 30, \.maxDecodedBody),
        .size("stream_window", maximum: 64 << 20, \.streamWindow),
    ]

    static func readLimits(_ node: Node?, reader: inout RulesReader) -> Limits {
        var limits = Limits()
        guard let node, let fields = reader.mapping(node, path: "limits", allowed: limitKeys.map(\.name), hints: [
            "client_header_timeout": "write header_timeout", "keepalive": "write keepalive_timeout",
            "client_max_body_size": "write max_request_body", "worker_connections": "write max_connections",
        ]) else { return limits }
        for key in limitKeys {
            if let node = fields[key.name] { key.read(node, "limits.\(key.name)", &reader, &limits) }
        }

        // A budget smaller than one body would refuse every body of that size, whatever else is going on.
        if limits.requestBodyBudget < limits.maxRequestBody {
            reader.error("request_body_budget (\(Units.format(bytes: limits.requestBodyBudget))) is smaller than one "
                + "max_request_body (\(Units.format(bytes: limits.maxRequestBody))); make it at least that",
                at: fields["request_body_budget"] ?? fields["max_request_body"], field: "limits.request_body_budget")
        }
        if limits.responseBodyBudget < limits.maxResponseBody {
            reader.error("response_body_budget (\(Units.format(bytes: limits.responseBodyBudget))) is smaller than one "
                + "max_response_body (\(Units.format(bytes: limits.maxResponseBody))); make it at least that",
                at: fields["response_body_budget"] ?? fields["max_response_body"], field: "limits.response_body_budget")
        }
        return limits
    }
}
