public import TroveHTTP
/// Who Trove believes about where a request came from and which site it is for (`clients:` in the rules file):
/// the `Host` names it answers for, and the proxies in front of it whose `X-Forwarded-*` headers are true.
///
/// An origin that builds links from `X-Forwarded-Host` or `Host` (Django with `USE_X_FORWARDED_HOST`, Flask's
/// `ProxyFix`) would otherwise answer a forged host, and the answer, stored under a key that does not name the
/// host, would be served to everyone. So the host the origin is told is fixed when Trove answers for one name,
/// and part of every cache key when it answers for several; forwarding headers from anyone but a trusted proxy
/// are replaced, never passed on.
public struct ClientSettings: Sendable, Equatable {
    /// The `Host` values answered (exact names, or `*.example.com` for any subdomain); empty: any host.
    public var hosts: [HostPattern] = []
    /// Clients whose `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded` are kept (and appended to).
    public var trustedProxies: [AddressRange] = []
    /// Headers that say who a request is for (lower-cased): `Credential.defaultHeaders` and the rules' own
    /// (`clients.credentials`). A request carrying one shares an entry only where the key holds it or the route is
    /// shared.
    public var credentialHeaders = Credential.defaultHeaders {
        didSet { credentialList = Array(credentialHeaders) }
    }
    /// The same, as an array: checked against every request's headers, and iterating an array is cheaper.
    private var credentialList = Array(Credential.defaultHeaders)

    public init(hosts: [HostPattern] = [], trustedProxies: [AddressRange] = []) {
        self.hosts = hosts
        self.trustedProxies = trustedProxies
    }

    /// The credentials `headers` carry.
    public func credentials(in headers: [Header]) -> Set<Credential> {
        var carried = Set<Credential>()
        for header in headers {
            // Most request headers are not credentials: compare without lower-casing each name.
            guard let name = credentialList.first(where: { HTTPSyntax.name(header.name, is: $0) }) else { continue }
            carried.insert(Credential(header: name))
        }
        return carried
    }

    /// True when `headers` carry any credential.
    public func carriesCredentials(_ headers: [Header]) -> Bool {
        Self.carriesCredentials(headers, among: credentialList)
    }

    /// True when `headers` carry one of `names` (lower-cased): for callers that keep the list at hand.
    public static func carriesCredentials(_ headers: [Header], among names: [String]) -> Bool {
        headers.contains { header in names.contains { HTTPSyntax.name(header.name, is: $0) } }
    }

    /// True when a request for `host` (a `Host` value, port and all) is answered.
    public func answers(host: String?) -> Bool {
        guard !hosts.isEmpty else { return true }
        guard let name = host.flatMap(HostPattern.name(ofHostHeader:)) else { return false }
        return hosts.contains { $0.matches(name) }
    }

    /// How the origin learns the host: not at all (any host is answered, so none is believed), one fixed name, or
    /// the request's own (one of several answered), which every cache key must then name.
    public enum ForwardedHost: Sendable, Equatable {
        case none
        case fixed(String)
        case requests

        /// The host to send the origin (`X-Forwarded-Host`, and `Host` for `preserve_host` origins) for a request
        /// whose `Host` is `requestHost` (already checked with `answers(host:)`). Read only when it matters.
        public func host(for requestHost: @autoclosure () -> String?) -> String? {
            switch self {
            case .none: nil
            case .fixed(let name): name
            case .requests: requestHost().flatMap(HostPattern.name(ofHostHeader:))
            }
        }
    }

    public var forwardedHost: ForwardedHost {
        if hosts.isEmpty { return .none }
        if hosts.count == 1, case .exact(let name) = hosts[0] { return .fixed(name) }
        return .requests
    }

    /// The host to send the origin for a request whose `Host` is `requestHost` (see `ForwardedHost.host(for:)`).
    public func forwardedHost(for requestHost: String?) -> String? {
        forwardedHost.host(for: requestHost)
    }

    /// True when a client at `address` is a proxy whose forwarding headers are believed.
    public func trusts(_ address: String?) -> Bool {
        guard !trustedProxies.isEmpty, let address, let parsed = IPAddress(address) else { return false }
        return trustedProxies.contains { $0.contains(parsed) }
    }

    /// In words, for `trove check`.
    public var described: [(String, String)] {
        var rows: [(String, String)] = []
        switch forwardedHost {
        case .none:
            rows.append(("hosts", "any Host is answered; the origin is not told the client's Host (no X-Forwarded-Host)"))
        case .fixed(let name):
            rows.append(("hosts", "only \(name) (others get 421); the origin is told X-Forwarded-Host: \(name)"))
        case .requests:
            rows.append(("hosts", hosts.map(\.description).joined(separator: ", ") + " (others get 421); the origin is told "
                + "the request's host, and every cache key names it"))
        }
        rows.append(("credentials", credentialHeaders.sorted().map { Credential(header: $0).description }.joined(separator: ", ")
            + ": requests carrying one share an entry only where the key holds it or the route is shared"))
        rows.append(("proxies", trustedProxies.isEmpty
            ? "none trusted: clients' X-Forwarded-* and Forwarded are replaced"
            : "X-Forwarded-For, X-Forwarded-Proto and Forwarded believed from " + trustedProxies.map(\.description).joined(separator: ", ")))
        return rows
    }
}

/// A host name Trove answers for: `api.example.com`, or `*.example.com` for every name under it.
public enum HostPattern: Sendable, Equatable, CustomStringConvertible {
    case exact(String)
    case subdomains(of: String)

    /// Parses a pattern; nil when it is not a host name (or `*.` and one).
    public init?(_ text: String) {
        let lowered = text.lowercased()
        if lowered.hasPrefix("*.") {
            let suffix = String(lowered.dropFirst(2))
            guard Self.isName(suffix) else { return nil }
            self = .subdomains(of: suffix)
        } else {
            guard Self.isName(lowered) || IPAddress(lowered) != nil else { return nil }
            self = .exact(lowered)
        }
    }

    public func matches(_ name: String) -> Bool {
        switch self {
        case .exact(let exact): name == exact
        case .subdomains(let suffix): name.hasSuffix("." + suffix) && name.count > suffix.count + 1
        }
    }

    public var description: String {
        switch self {
        case .exact(let name): name
        case .subdomains(let suffix): "*." + suffix
        }
    }

    /// The host name of a `Host` value: lower-cased, without its port or a trailing dot; nil when it is not a
    /// name or an address.
    public static func name(ofHostHeader value: String) -> String? {
        var text = Substring(value.trimmingWhitespace().lowercased())
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(isDigit)) else { return nil }
            let address = String(text[...close])
            return IPAddress(address) != nil ? address : nil
        }
        if let colon = text.lastIndex(of: ":") {
            guard text[text.index(after: colon)...].allSatisfy(isDigit) else { return nil }
            text = text[..<colon]
        }
        if text.hasSuffix(".") { text = text.dropLast() }
        let name = String(text)
        return isName(name) || IPAddress(name) != nil ? name : nil
    }

    /// An ASCII digit (`isNumber` also takes other scripts' digits, which no port is written in).
    private static func isDigit(_ character: Character) -> Bool {
        character.isASCII && character.isNumber
    }

    /// Letters, digits, `-` and `.`, in labels of 1 to 63 characters (RFC 1123), at most 253 in all.
    static func isName(_ text: String) -> Bool {
        guard (1...253).contains(text.utf8.count) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
                && label.first != "-" && label.last != "-"
        }
    }
}
