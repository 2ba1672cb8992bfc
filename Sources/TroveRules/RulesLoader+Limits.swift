internal import TroveHTTP
internal import Yams

extension RulesLoader {
    static let limitsKeys = [
        "max_connections", "header_timeout", "body_timeout", "keepalive_timeout", "send_timeout", "max_request_body",
        "max_response_body", "request_body_budget", "response_body_budget", "max_pipelined", "max_purge", "max_decoded_body",
    ]

    /// `limits:`: what one client, and all of them, may cost. Every key is optional; absent ones keep `Limits`'
    /// defaults.
    static func readLimits(_ node: Node?, reader: inout RulesReader) -> Limits {
        var limits = Limits()
        guard let node, let fields = reader.mapping(node, path: "limits", allowed: limitsKeys, hints: [
            "client_header_timeout": "write header_timeout", "keepalive": "write keepalive_timeout",
            "client_max_body_size": "write max_request_body", "worker_connections": "write max_connections",
        ]) else { return limits }

        func duration(_ name: String, maximum: Duration, into value: inout Duration) {
            guard let node = fields[name], let parsed = reader.duration(node, field: "limits.\(name)", maximum: maximum) else { return }
            value = parsed
        }
        func size(_ name: String, maximum: Int, into value: inout Int) {
            guard let node = fields[name], let parsed = reader.size(node, field: "limits.\(name)", maximum: maximum) else { return }
            value = parsed
        }
        func count(_ name: String, range: ClosedRange<Int>, into value: inout Int) {
            guard let node = fields[name], let parsed = reader.int(node, field: "limits.\(name)", range: range) else { return }
            value = parsed
        }
        count("max_connections", range: 1...1_000_000, into: &limits.maxConnections)
        duration("header_timeout", maximum: .seconds(600), into: &limits.headerTimeout)
        duration("body_timeout", maximum: .seconds(3600), into: &limits.bodyTimeout)
        duration("keepalive_timeout", maximum: .seconds(3600), into: &limits.keepAliveTimeout)
        duration("send_timeout", maximum: .seconds(3600), into: &limits.sendTimeout)
        size("max_request_body", maximum: 1 << 30, into: &limits.maxRequestBody)
        size("max_response_body", maximum: 1 << 30, into: &limits.maxResponseBody)
        size("request_body_budget", maximum: 1 << 40, into: &limits.requestBodyBudget)
        size("response_body_budget", maximum: 1 << 40, into: &limits.responseBodyBudget)
        count("max_pipelined", range: 1...1024, into: &limits.maxPipelined)
        count("max_purge", range: 1...1_000_000, into: &limits.maxPurge)
        size("max_decoded_body", maximum: 1 << 30, into: &limits.maxDecodedBody)

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
