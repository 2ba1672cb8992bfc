internal import TroveHTTP
internal import Yams

extension RulesLoader {
    static let clientsKeys = ["hosts", "trusted_proxies", "credentials"]

    /// `clients:`: the hosts Trove answers for and the proxies it trusts (see `ClientSettings`).
    static func readClients(_ node: Node?, reader: inout RulesReader) -> ClientSettings {
        var settings = ClientSettings()
        guard let node, let fields = reader.mapping(node, path: "clients", allowed: clientsKeys, hints: [
            "host": "write hosts: [api.example.com]", "trusted": "write trusted_proxies: [10.0.0.0/8]",
            "proxies": "write trusted_proxies: [10.0.0.0/8]",
        ]) else { return settings }
        if let node = fields["hosts"], let hosts = reader.list(node, field: "clients.hosts", parse: HostPattern.init,
            problem: { "'\($0)' is not a host name; write it like api.example.com or *.example.com (no port, no scheme)" })
        {
            settings.hosts = hosts
        }
        if let node = fields["trusted_proxies"], let ranges = reader.list(node, field: "clients.trusted_proxies", parse: AddressRange.init,
            problem: { "'\($0)' is not an address or range; write it like 10.0.0.0/8, 192.0.2.7 or fd00::/8" })
        {
            for (offset, range) in ranges.enumerated() where range.prefixLength == 0 {
                reader.warning("trusts every client on the Internet to say who it is; name your load balancers instead",
                    at: node.sequence?[offset] ?? node, field: "clients.trusted_proxies[\(offset)]")
            }
            settings.trustedProxies = ranges
        }
        if let node = fields["credentials"], let names = reader.list(node, field: "clients.credentials",
            parse: { HTTPSyntax.isToken($0) ? $0.lowercased() : nil }, problem: { "'\($0)' is not a header name; write it like X-Shop-Token" })
        {
            settings.credentialHeaders.formUnion(names)
        }
        return settings
    }

    /// What the host settings ask of origins and routes: an origin told the client's Host (`preserve_host`) needs
    /// the hosts to be known, and when several are answered every cache key must name the host, or one host's
    /// answer (with its links) would be served for another.
    static func checkClients(_ clients: ClientSettings, origins: [Origin], originsNode: Node?, routes: [Route], reader: inout RulesReader) {
        if clients.forwardedHost == .none {
            for origin in origins where origin.preserveHost {
                let node = originsNode?.mapping?[origin.name]?.mapping?["preserve_host"]
                reader.error("preserve_host: true sends the client's Host to the origin, and any Host is answered, so a forged "
                    + "Host would reach the origin and its answer the cache; list the hosts Trove answers for in clients.hosts",
                    at: node, field: "origins.\(origin.name).preserve_host")
            }
        }
        guard clients.forwardedHost == .requests else { return }
        for route in routes {
            guard let policy = route.cachePolicy,
                !policy.key.placeholders.contains(where: { $0.source == .header("host") })
            else { continue }
            reader.report(.error,
                "clients.hosts answers several hosts and the origin is told which one was asked for, but this key does not "
                    + "name it, so one host's answer would be served for another; add {header.host} to the key "
                    + "(e.g. \"{header.host}:\(policy.key.description)\"), or answer one host",
                at: route.lines.key ?? route.start, route: route.name, field: "cache.key")
        }
    }
}
