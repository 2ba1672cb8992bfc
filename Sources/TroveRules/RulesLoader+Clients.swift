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
        if let hostsNode = fields["hosts"], let list = reader.stringList(hostsNode, field: "clients.hosts") {
            for (offset, (text, itemNode)) in list.enumerated() {
                guard let pattern = HostPattern(text) else {
                    reader.error("'\(text)' is not a host name; write it like api.example.com or *.example.com (no port, no scheme)",
                        at: itemNode, field: "clients.hosts[\(offset)]")
                    continue
                }
                settings.hosts.append(pattern)
            }
        }
        if let proxiesNode = fields["trusted_proxies"], let list = reader.stringList(proxiesNode, field: "clients.trusted_proxies") {
            for (offset, (text, itemNode)) in list.enumerated() {
                guard let range = AddressRange(text) else {
                    reader.error("'\(text)' is not an address or range; write it like 10.0.0.0/8, 192.0.2.7 or fd00::/8",
                        at: itemNode, field: "clients.trusted_proxies[\(offset)]")
                    continue
                }
                if range.prefixLength == 0 {
                    reader.warning("trusts every client on the Internet to say who it is; name your load balancers instead",
                        at: itemNode, field: "clients.trusted_proxies[\(offset)]")
                }
                settings.trustedProxies.append(range)
            }
        }
        if let credentialsNode = fields["credentials"], let list = reader.stringList(credentialsNode, field: "clients.credentials") {
            for (offset, (text, itemNode)) in list.enumerated() {
                guard HTTPSyntax.isToken(text) else {
                    reader.error("'\(text)' is not a header name; write it like X-Shop-Token", at: itemNode, field: "clients.credentials[\(offset)]")
                    continue
                }
                settings.credentialHeaders.insert(text.lowercased())
            }
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
