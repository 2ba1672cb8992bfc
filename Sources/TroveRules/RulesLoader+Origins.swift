internal import Foundation
internal import TroveHTTP
internal import Yams

/// `origins:`: where each origin is, what Trove sends it, and how it is protected (rate, concurrency, queue).
extension RulesLoader {
    static func readOrigins(_ node: Node?, root: Node, reader: inout RulesReader) -> [Origin] {
        guard let node else {
            reader.error("'origins:' is missing; name at least one, e.g. origins: {api: {url: http://127.0.0.1:8000}}",
                at: root, field: nil)
            return []
        }
        guard let mapping = node.mapping else {
            reader.error("expected a mapping of origin names to settings, found \(reader.describe(node))",
                at: node, field: "origins")
            return []
        }
        if mapping.count == 0 {
            reader.error("name at least one origin", at: node, field: "origins")
        }
        var origins: [Origin] = []
        var seen = Set<String>()
        for (key, value) in mapping {
            guard let name = key.scalar?.string, isValidName(name) else {
                reader.error("'\(reader.describe(key))' is not an origin name; use up to 64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit",
                    at: key, field: "origins")
                continue
            }
            guard seen.insert(name).inserted else {
                reader.error("origin '\(name)' is named twice", at: key, field: "origins.\(name)")
                continue
            }
            if let origin = readOrigin(name, value, reader: &reader) { origins.append(origin) }
        }
        return origins
    }

    static func readOrigin(_ name: String, _ node: Node, reader: inout RulesReader) -> Origin? {
        let path = "origins.\(name)"
        guard let fields = reader.mapping(node, path: path, allowed: [
            "url", "connect_timeout", "timeout", "headers", "preserve_host", "max_concurrency", "rate", "burst", "queue",
            "queue_timeout",
        ]) else { return nil }
        guard let urlNode = fields["url"] else {
            reader.error("'url' is missing, e.g. url: http://127.0.0.1:8000", at: node, field: path)
            return nil
        }
        guard let urlText = reader.string(urlNode, field: "\(path).url") else { return nil }
        let address: OriginAddress
        switch OriginAddress.parse(urlText, credentialsVariable: "\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_AUTHORIZATION") {
        case .success(let parsed):
            address = parsed
        case .failure(let problem):
            reader.error(problem.message, at: urlNode, field: "\(path).url")
            return nil
        }

        let connectTimeout = fields["connect_timeout"].flatMap {
            reader.duration($0, field: "\(path).connect_timeout", maximum: .seconds(300))
        } ?? .seconds(2)
        let timeout = fields["timeout"].flatMap {
            reader.duration($0, field: "\(path).timeout", maximum: .seconds(3600))
        } ?? .seconds(30)
        if connectTimeout > timeout, let node = fields["connect_timeout"] {
            reader.warning("is longer than timeout (\(Units.format(timeout))), which bounds the whole exchange",
                at: node, field: "\(path).connect_timeout")
        }
        var headers: [(name: String, value: ConfigString)] = []
        if let headersNode = fields["headers"] {
            if let mapping = headersNode.mapping {
                for (key, value) in mapping {
                    guard let header = key.scalar?.string, isToken(header) else {
                        reader.error("\(reader.describe(key)) is not a header name", at: key, field: "\(path).headers")
                        continue
                    }
                    let field = "\(path).headers.\(header)"
                    if forbiddenOriginHeaders.contains(header.lowercased()) {
                        reader.error("Trove sets \(header) itself; it cannot be configured", at: key, field: field)
                        continue
                    }
                    let variable = header.uppercased().replacingOccurrences(of: "-", with: "_")
                    if let configured = reader.configString(
                        value, field: field, secret: looksSecret(header), suggestedVariable: variable)
                    {
                        headers.append((header, configured))
                    }
                }
            } else {
                reader.error("expected a mapping of header names to values", at: headersNode, field: "\(path).headers")
            }
        }
        let preserveHost = fields["preserve_host"].flatMap { reader.bool($0, field: "\(path).preserve_host") } ?? false
        let protection = readProtection(fields, path: path, timeout: timeout, reader: &reader)
        return Origin(
            name: name, scheme: address.scheme, host: address.host, port: address.port, basePath: address.basePath,
            connectTimeout: connectTimeout, timeout: timeout, headers: headers, preserveHost: preserveHost,
            protection: protection)
    }

    /// `max_concurrency: 8`, `rate: 2/s` (or `120/m`), `burst: 4`, `queue: 100`, `queue_timeout: 10s`.
    static func readProtection(
        _ fields: RulesReader.Fields, path: String, timeout: Duration, reader: inout RulesReader
    ) -> OriginProtection {
        let maxConcurrency = fields["max_concurrency"].flatMap {
            reader.int($0, field: "\(path).max_concurrency", range: 1...100_000)
        }
        var rate: Double?
        if let rateNode = fields["rate"], let text = reader.string(rateNode, field: "\(path).rate", example: "2/s") {
            let parts = text.replacingOccurrences(of: " ", with: "").split(separator: "/")
            let seconds: Double? = parts.count == 2 ? ["s": 1, "m": 60, "h": 3600][String(parts[1])] : nil
            // At least one request an hour: a rate much below that means "never", which the bucket's arithmetic
            // cannot express (a wait of 10^22 seconds), and which no origin needs.
            if let seconds, let count = Double(parts[0]), count.isFinite, count > 0, count <= 1_000_000, count / seconds >= 1.0 / 3600 {
                rate = count / seconds
            } else {
                reader.error("'\(text)' is not a rate from 1/h to 1000000/s; write requests per second, minute or hour: 2/s, 120/m, 5000/h",
                    at: rateNode, field: "\(path).rate")
            }
        }
        let defaultBurst = max(1, Int((rate ?? 1).rounded(.up)))
        let burst = fields["burst"].flatMap { reader.int($0, field: "\(path).burst", range: 1...100_000) } ?? defaultBurst
        if fields["burst"] != nil && rate == nil {
            reader.warning("has no effect without rate", at: fields["burst"], field: "\(path).burst")
        }
        let limited = rate != nil || maxConcurrency != nil
        let queue = fields["queue"].flatMap { reader.int($0, field: "\(path).queue", range: 0...1_000_000) } ?? (limited ? 100 : 0)
        let queueTimeout = fields["queue_timeout"].flatMap {
            reader.duration($0, field: "\(path).queue_timeout", maximum: .seconds(3600))
        } ?? min(timeout, .seconds(10))
        for name in ["queue", "queue_timeout"] where fields[name] != nil && !limited {
            reader.warning("has no effect without rate or max_concurrency", at: fields[name], field: "\(path).\(name)")
        }
        return OriginProtection(maxConcurrency: maxConcurrency, rate: rate, burst: burst, queue: queue, queueTimeout: queueTimeout)
    }

    static let forbiddenOriginHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "proxy-connection",
    ]

    /// Header names whose values are credentials: they must come from the environment.
    static func looksSecret(_ header: String) -> Bool {
        let name = header.lowercased()
        if ["authorization", "proxy-authorization", "cookie"].contains(name) { return true }
        return ["token", "secret", "password", "passwd", "api-key", "apikey", "api_key", "auth"].contains {
            name.contains($0)
        }
    }

    static func isToken(_ text: String) -> Bool {
        HTTPSyntax.isToken(text)
    }

    /// Route and origin names: they become metric labels and appear in purge requests.
    static func isValidName(_ text: String) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter || first.isNumber, text.count <= 64 else {
            return false
        }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }
}
