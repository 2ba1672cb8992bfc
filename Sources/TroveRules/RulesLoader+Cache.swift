internal import TroveHTTP
internal import Yams

/// A route's `cache:`: how entries are keyed, tagged and kept fresh.
///
/// Every key of `cache:` is declared once, in `cacheOptions`: its name, whether `defaults.cache` may give it,
/// and how it is read. A route starts from the defaults' values and reads its own over them, so adding a cache
/// option is one row here, one field in `CacheOptions` and `CachePolicy`, and its line in `docs/rules.md`.
extension RulesLoader {
    /// A cache option's values as read so far: the built-in defaults, then `defaults.cache`, then the route's.
    struct CacheOptions {
        /// nil: `{path}?{query}` (route only).
        var key: Template?
        var tags: [Template] = []
        var ttl: Duration?
        var statuses: [(status: Int, ttl: Duration?)] = [(200, nil)]
        /// `statuses: any`.
        var anyStatus = false
        var stale: Duration = .zero
        var staleIfError: Duration = .zero
        var maxBodyBytes = 16 << 20
        var shared = false
        var authenticated = false
        var overrideCacheControl = false
        var freshness = FreshnessSource.rules
        var maxTTL: Duration?
        var ignoreQuery: [String] = []
        var cookies = CookieFilter.all
        var tagsFrom: OriginTagHeader?
        var sendTags: CDNTagHeader?
        var shadow: ShadowSettings?
        /// Where each option was given (its value's node and its field), for diagnostics about it; an option
        /// not in here has its built-in default.
        var given: [String: (node: Node, field: String)] = [:]

        /// True when the route itself gives `name` (not `defaults.cache`).
        func routeGives(_ name: String) -> Bool { given[name]?.field.hasPrefix("cache.") == true }
    }

    /// What a template in the route may name: its path's parameters.
    struct PathParameters {
        var names: [String] = []
        var rest: Set<String> = []
    }

    /// One key of `cache:`.
    struct CacheOption: Sendable {
        /// Where it may be written: in `defaults.cache` too, or (with why) only in a route.
        enum Scope: Sendable, Equatable {
            case routeOrDefaults
            case routeOnly(String)
        }

        let name: String
        let scope: Scope
        /// Reads the value at `node` (its field is `field`) into `options`; false when it is not valid (the
        /// reader has the error).
        let read: @Sendable (_ node: Node, _ field: String, _ path: PathParameters, _ reader: inout RulesReader, _ options: inout CacheOptions) -> Bool

        /// A duration that `defaults.cache` may give too.
        static func duration(_ name: String, allowZero: Bool, _ path: any WritableKeyPath<CacheOptions, Duration> & Sendable) -> CacheOption {
            CacheOption(name: name, scope: .routeOrDefaults) { node, field, _, reader, options in
                guard let value = reader.duration(node, field: field, allowZero: allowZero) else { return false }
                options[keyPath: path] = value
                return true
            }
        }

        /// An optional duration (absent: none) that `defaults.cache` may give too.
        static func duration(_ name: String, allowZero: Bool, _ path: any WritableKeyPath<CacheOptions, Duration?> & Sendable) -> CacheOption {
            CacheOption(name: name, scope: .routeOrDefaults) { node, field, _, reader, options in
                guard let value = reader.duration(node, field: field, allowZero: allowZero) else { return false }
                options[keyPath: path] = value
                return true
            }
        }
    }

    /// Every key of `cache:`, once.
    static let cacheOptions: [CacheOption] = [
        CacheOption(name: "key", scope: .routeOnly("a key is chosen per route")) { node, field, path, reader, options in
            guard let text = reader.string(node, field: field, example: "\"events:{id}\""),
                let key = readTemplate(text, node: node, field: field, parameters: path.names, rest: path.rest, reader: &reader)
            else { return false }
            options.key = key
            return true
        },
        CacheOption(name: "tags", scope: .routeOnly("tags are chosen per route")) { node, field, path, reader, options in
            // A tag that cannot be read is reported and left out; the route still loads (the file does not).
            guard let list = reader.stringList(node, field: field) else { return true }
            options.tags = list.enumerated().compactMap { offset, item in
                readTemplate(item.0, node: item.1, field: "\(field)[\(offset)]", parameters: path.names, rest: path.rest, reader: &reader)
            }
            return true
        },
        // 0s is meaningful with freshness: origin (no guessing: only what the origin says is fresh is served).
        .duration("ttl", allowZero: true, \.ttl),
        CacheOption(name: "statuses", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let (statuses, any) = readStatuses(node, field: field, reader: &reader) else { return false }
            (options.statuses, options.anyStatus) = (statuses, any)
            return true
        },
        .duration("stale", allowZero: true, \.stale),
        .duration("stale_if_error", allowZero: true, \.staleIfError),
        CacheOption(name: "max_body", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let value = reader.size(node, field: field, maximum: maxBodyLimit) else { return false }
            options.maxBodyBytes = value
            return true
        },
        CacheOption(name: "shared", scope: .routeOnly("shared is decided per route")) { node, field, _, reader, options in
            guard let value = reader.bool(node, field: field) else { return true }
            options.shared = value
            return true
        },
        CacheOption(name: "authenticated", scope: .routeOnly("authenticated is decided per route")) { node, field, _, reader, options in
            guard let value = reader.bool(node, field: field) else { return true }
            options.authenticated = value
            return true
        },
        CacheOption(name: "override_cache_control", scope: .routeOnly("override_cache_control is decided per route")) {
            node, field, _, reader, options in
            guard let value = reader.bool(node, field: field) else { return true }
            options.overrideCacheControl = value
            return true
        },
        CacheOption(name: "freshness", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let value = readFreshness(node, field: field, reader: &reader) else { return false }
            options.freshness = value
            return true
        },
        .duration("max_ttl", allowZero: false, \.maxTTL),
        CacheOption(name: "ignore_query", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let value = readIgnoreQuery(node, field: field, reader: &reader) else { return false }
            options.ignoreQuery = value
            return true
        },
        CacheOption(name: "ignore_cookies", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let names = readCookieNames(node, field: field, prefixes: true, reader: &reader) else { return false }
            options.cookies = .ignoring(names)
            return true
        },
        CacheOption(name: "only_cookies", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let names = readCookieNames(node, field: field, prefixes: false, reader: &reader) else { return false }
            options.cookies = .only(names)
            return true
        },
        CacheOption(name: "tags_from", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let value = readTagsFrom(node, field: field, reader: &reader) else { return false }
            options.tagsFrom = value
            return true
        },
        CacheOption(name: "send_tags", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let name = readHeaderName(node, field: field, example: "Cache-Tag", reader: &reader) else { return false }
            options.sendTags = CDNTagHeader(name: name)
            return true
        },
        CacheOption(name: "shadow", scope: .routeOrDefaults) { node, field, _, reader, options in
            guard let value = readShadow(node, field: field, reader: &reader) else { return false }
            options.shadow = value
            return true
        },
    ]

    /// Reads the options of one `cache:` mapping (`prefix` is `cache` or `defaults.cache`) over `options`;
    /// false when one of them is not valid.
    static func readCacheOptions(
        _ fields: RulesReader.Fields, prefix: String, inDefaults: Bool, path: PathParameters,
        into options: inout CacheOptions, reader: inout RulesReader
    ) -> Bool {
        var valid = true
        if let ignore = fields["ignore_cookies"], fields["only_cookies"] != nil {
            reader.error("give ignore_cookies (the cookies that never matter) or only_cookies (the only ones that do), not both",
                at: ignore, field: "\(prefix).ignore_cookies")
            valid = false
        }
        for option in cacheOptions where !inDefaults || option.scope == .routeOrDefaults {
            guard let node = fields[option.name] else { continue }
            let field = "\(prefix).\(option.name)"
            if option.read(node, field, path, &reader, &options) {
                options.given[option.name] = (node, field)
            } else {
                valid = false
            }
        }
        return valid
    }

    static func readCache(
        _ node: Node, methods: MethodSet, path: PathPattern, defaults: Defaults, reader: inout RulesReader
    ) -> CachePolicy? {
        guard let fields = reader.mapping(node, path: "cache", allowed: cacheOptions.map(\.name), hints: [
            "purge": "purge is a route action of its own, for write routes",
            "ttl_by_status": "write statuses: {200: 10m, 404: 30s}",
        ]) else { return nil }
        guard methods.isAllSafe else {
            let writes = methods.isAny ? "every method, writes included" : methods.written.filter { !MethodSet.safe.contains($0) }.joined(separator: ",")
            let what = fields["ttl"] != nil ? "cache.ttl has no meaning here" : "cache: has no meaning here"
            reader.error("the route matches \(writes): writes are forwarded and may purge, but their answers are never "
                + "stored, so \(what); match only GET (and HEAD), or use purge: for a write route",
                at: fields.keyNode("ttl") ?? node, field: fields["ttl"] != nil ? "cache.ttl" : "cache")
            return nil
        }
        let parameters = PathParameters(names: path.parameterNames, rest: path.restParameterNames)
        var options = defaults.cache
        // Credentials are never written in clear: checked for whatever key and tags could be read, even when
        // another option is wrong, so that one error does not hide the next.
        func checkCredentials(key: Template?, tags: [Template]) {
            for (template, field, templateNode) in (key.map { [($0, "cache.key", fields["key"])] } ?? []) + tags.enumerated().map({
                ($0.element, "cache.tags[\($0.offset)]", fields["tags"])
            }) {
                checkCredentialsHashed(template, field: field, node: templateNode ?? node, credentials: defaults.credentialHeaders,
                    reader: &reader)
            }
        }
        guard readCacheOptions(fields, prefix: "cache", inDefaults: false, path: parameters, into: &options, reader: &reader) else {
            checkCredentials(key: options.key, tags: options.tags)
            return nil
        }
        let key = options.key ?? (try? Template(parsing: "{path}?{query}", pathParameters: parameters.names, restParameters: parameters.rest))
        let tags = options.tags
        let (ttl, statuses, anyStatus, freshness) = (options.ttl, options.statuses, options.anyStatus, options.freshness)
        let (stale, staleIfError, maxBody, maxTTL, ignoreQuery) = (options.stale, options.staleIfError, options.maxBodyBytes, options.maxTTL, options.ignoreQuery)
        let (shared, authenticated, overrideCacheControl) = (options.shared, options.authenticated, options.overrideCacheControl)

        var statusTTLs: [(status: Int, ttl: Duration)] = []
        for (status, statusTTL) in statuses {
            guard let resolved = statusTTL ?? ttl else {
                reader.error("no TTL for \(status) answers: say how long answers stay fresh with cache.ttl (e.g. ttl: 5m), "
                    + "defaults.cache.ttl, or statuses: {\(status): 5m}",
                    at: options.given["statuses"]?.node ?? node, field: options.given["statuses"]?.field ?? "cache.ttl")
                return nil
            }
            statusTTLs.append((status, resolved))
        }
        if options.routeGives("ttl"), !statuses.isEmpty, statuses.allSatisfy({ $0.ttl != nil }) {
            reader.warning("has no effect, because every status in cache.statuses has its own TTL", at: fields["ttl"],
                field: "cache.ttl")
        }
        if anyStatus && freshness == .rules {
            reader.error("statuses: any stores every status the origin gives explicit freshness (Cache-Control: "
                + "max-age, s-maxage or Expires), so it needs freshness: origin; with freshness: rules, list the "
                + "statuses to store: [200, 404]", at: options.given["statuses"]?.node ?? node, field: "cache.statuses")
            return nil
        }
        // A zero TTL given in defaults with freshness: rules there is reported once, at the defaults.
        if ttl == .zero, freshness == .rules, let given = options.given["ttl"], options.routeGives("ttl") || options.routeGives("freshness") {
            reader.error("must be more than 0s (0s means \"only what the origin declares fresh\", with freshness: origin)",
                at: given.node, field: given.field)
            return nil
        }
        if options.routeGives("max_ttl"), freshness == .rules {
            reader.warning("has no effect with freshness: rules (the rule's TTLs are used as written); add "
                + "freshness: origin to let the origin's headers decide up to this", at: fields["max_ttl"], field: "cache.max_ttl")
        }

        // Credentials: never in clear, never both shared and per user, and never cached for everyone by accident.
        checkCredentials(key: key, tags: tags)
        guard let key else { return nil }
        let identity = key.credentials(among: defaults.credentialHeaders)
        if shared && !identity.isEmpty {
            reader.error("the route is shared: true, but its key holds the user's identity (\(identity.sorted { $0.rawValue < $1.rawValue }.map(\.description).joined(separator: ", "))); "
                + "a shared route keeps one entry for everyone: remove the identity from the key, or remove shared: "
                + "true to keep an entry per user", at: fields["shared"], field: "cache.shared")
        }
        if authenticated && !shared && identity.isEmpty {
            reader.error("the route caches authenticated requests, but its key does not hold the user's identity and "
                + "the route is not shared: every user would be served the first user's answer. Put the identity in "
                + "the key (e.g. key: \"\(suggestedIdentityKey(key))\"), or set shared: true if the answer is the "
                + "same for everyone", at: fields["authenticated"], field: "cache.authenticated")
        }

        // Parameters the path captures but the key ignores make different resources share one entry.
        let used = Set(key.placeholders.compactMap { placeholder -> String? in
            if case .pathParameter(let name) = placeholder.source { return name } else { return nil }
        })
        // A parameter the tags read but the key does not: requests carrying it are passed uncached (their answer
        // cannot be told apart under the key), so the tag never marks an entry.
        let keyedQuery = Set(key.placeholders.compactMap { placeholder -> [String]? in
            if case .queryParameter(let name) = placeholder.source { return [name] }
            if case .queryParameters(let names) = placeholder.source { return names }
            return nil
        }.joined())
        if !key.placeholders.contains(where: { $0.source == .query }) {
            for (offset, tag) in tags.enumerated() {
                for placeholder in tag.placeholders {
                    guard case .queryParameter(let name) = placeholder.source, !keyedQuery.contains(name) else { continue }
                    reader.warning("the tag reads {query.\(name)}, which the key does not name: requests with \(name) are "
                        + "passed uncached, so no entry ever carries this tag; add {query.\(name)} to the key",
                        at: fields["tags"], field: "cache.tags[\(offset)]")
                }
            }
        }
        let keyUsesPath = key.placeholders.contains { $0.source == .path }
        if !keyUsesPath {
            for parameter in parameters.names where !used.contains(parameter) {
                reader.warning("the key does not use the path parameter {\(parameter)}: every \(parameter) shares one "
                    + "entry; add {\(parameter)} to the key", at: fields["key"], field: "cache.key")
            }
        }
        return CachePolicy(
            key: key, tags: tags, statusTTLs: statusTTLs, stale: stale, staleIfError: staleIfError, maxBodyBytes: maxBody,
            shared: shared,
            authenticated: authenticated, overrideCacheControl: overrideCacheControl, freshness: freshness, maxTTL: maxTTL,
            anyStatus: anyStatus, ignoreQuery: ignoreQuery, cookies: options.cookies, tagsFrom: options.tagsFrom, sendTags: options.sendTags,
            keyedCredentials: identity, shadow: options.shadow)
    }

    static func suggestedIdentityKey(_ key: Template) -> String {
        key.description + ":user={header.authorization|sha256}"
    }

    /// Reports every credential the template would write in clear; true when there is none.
    @discardableResult
    static func checkCredentialsHashed(
        _ template: Template, field: String, node: Node, credentials: Set<String> = Credential.defaultHeaders, reader: inout RulesReader
    ) -> Bool {
        var clean = true
        for placeholder in template.placeholders where placeholder.filters.last != .sha256 {
            let isCredential: Bool
            switch placeholder.source {
            case .header(let name) where credentials.contains(name) || name == "proxy-authorization": isCredential = true
            case .cookie: isCredential = true
            default: isCredential = false
            }
            if isCredential {
                let hashed = String(placeholder.written.dropLast()) + "|sha256}"
                reader.error("\(placeholder.written) would write a credential into the store in clear (Redis keys are "
                    + "readable by anyone with access to Redis, and appear in logs); hash it: \(hashed)",
                    at: node, field: field)
                clean = false
            }
        }
        return clean
    }

    /// `ignore_cookies: [_ga, "_hj*"]` (names, or prefixes ending in `*`), `only_cookies: [sessionid]` (names).
    static func readCookieNames(_ node: Node, field: String, prefixes: Bool, reader: inout RulesReader) -> [String]? {
        reader.list(node, field: field, parse: { text in
            let name = prefixes && text.hasSuffix("*") ? text.dropLast() : Substring(text)
            let usable = !name.isEmpty && HTTPSyntax.isToken(String(name))
            return usable ? text : nil
        }, problem: { text in
            prefixes ? "'\(text)' is not a cookie name; write a name (_ga) or a prefix ending in * (_hj*)"
                : "'\(text)' is not a cookie name; write the names of the cookies that identify the user (sessionid)"
        })
    }

    /// `tags_from: Surrogate-Key`, or `tags_from: {header: Surrogate-Key, keep: true}` to leave the header on the
    /// answer.
    static func readTagsFrom(_ node: Node, field: String, reader: inout RulesReader) -> OriginTagHeader? {
        guard node.mapping != nil else {
            return readHeaderName(node, field: field, example: "Surrogate-Key", reader: &reader).map { OriginTagHeader(name: $0, keep: false) }
        }
        guard let fields = reader.mapping(node, path: field, allowed: ["header", "keep"]) else { return nil }
        guard let headerNode = fields["header"] else {
            reader.error("say which response header holds the tags: {header: Surrogate-Key, keep: false}", at: node, field: field)
            return nil
        }
        guard let name = readHeaderName(headerNode, field: "\(field).header", example: "Surrogate-Key", reader: &reader) else { return nil }
        var keep = false
        if let keepNode = fields["keep"] {
            guard let value = reader.bool(keepNode, field: "\(field).keep") else { return nil }
            keep = value
        }
        return OriginTagHeader(name: name, keep: keep)
    }

    /// `shadow: true`, or `shadow: {ignore: [$.generated_at, X-Request-Id]}`: JSON paths (starting with `$`) and
    /// response headers left out of the comparison. `shadow: false` in a route undoes `defaults.cache.shadow`.
    static func readShadow(_ node: Node, field: String, reader: inout RulesReader) -> ShadowSettings?? {
        guard node.mapping != nil else {
            guard let on = reader.bool(node, field: field) else { return nil }
            return .some(on ? ShadowSettings() : nil)
        }
        guard let fields = reader.mapping(node, path: field, allowed: ["ignore"]) else { return nil }
        var settings = ShadowSettings()
        guard let ignoreNode = fields["ignore"] else { return .some(settings) }
        guard let items = reader.stringList(ignoreNode, field: "\(field).ignore") else { return nil }
        var valid = true
        for (offset, (text, itemNode)) in items.enumerated() {
            if text.hasPrefix("$") {
                switch JSONPath.parse(text) {
                case .success(let path): settings.ignoredPaths.append(path)
                case .failure(let problem):
                    reader.error("'\(text)' is not a JSON path: \(problem.message); e.g. $.generated_at or $.results[*].updated_at",
                        at: itemNode, field: "\(field).ignore[\(offset)]")
                    valid = false
                }
            } else if HTTPSyntax.isToken(text) {
                settings.ignoredHeaders.insert(text.lowercased())
            } else {
                reader.error("'\(text)' is neither a JSON path (starting with $, e.g. $.generated_at) nor a header name (e.g. X-Request-Id)",
                    at: itemNode, field: "\(field).ignore[\(offset)]")
                valid = false
            }
        }
        return valid ? .some(settings) : nil
    }

    /// A header name (a token), for `tags_from` and `send_tags`.
    static func readHeaderName(_ node: Node, field: String, example: String, reader: inout RulesReader) -> String? {
        guard let text = reader.string(node, field: field, example: example) else { return nil }
        guard HTTPSyntax.isToken(text) else {
            reader.error("'\(text)' is not a header name; write one such as \(example)", at: node, field: field)
            return nil
        }
        return text
    }

    /// `ignore_query: [utm_*, fbclid, gclid]`: query parameter names, or prefixes ending in `*`.
    static func readIgnoreQuery(_ node: Node, field: String, reader: inout RulesReader) -> [String]? {
        reader.list(node, field: field, parse: { text in
            let name = text.hasSuffix("*") ? text.dropLast() : Substring(text)
            let usable = !name.isEmpty && !name.contains { "*&= ".contains($0) }
            return usable ? text : nil
        }, problem: { "'\($0)' is not a query parameter name; write a name (fbclid) or a prefix ending in * (utm_*)" })
    }

    /// `freshness: rules|origin`.
    static func readFreshness(_ node: Node, field: String, reader: inout RulesReader) -> FreshnessSource? {
        guard let text = reader.string(node, field: field, example: "origin") else { return nil }
        guard let source = FreshnessSource(rawValue: text) else {
            reader.error("'\(text)' is not rules or origin (rules: the TTLs here decide; origin: the origin's "
                + "Cache-Control and Expires decide, with the TTL as fallback)", at: node, field: field)
            return nil
        }
        return source
    }

    /// Redis refuses values over 512 MiB; a cache entry is the body plus a little.
    static let maxBodyLimit = 256 << 20

    /// `[200, 404]` (each uses the route's ttl), `{200: 10m, 404: 30s}`, or `any`: every status the origin gives
    /// explicit freshness (with `freshness: origin`), the heuristically cacheable ones using the route's ttl when
    /// it gives none (`any` is true).
    static func readStatuses(
        _ node: Node, field: String, reader: inout RulesReader
    ) -> (statuses: [(status: Int, ttl: Duration?)], any: Bool)? {
        if node.scalar?.string.trimmingWhitespace().lowercased() == "any" {
            return (HTTPStatus.heuristicallyCacheable.map { ($0, nil) }, true)
        }
        var result: [(status: Int, ttl: Duration?)] = []
        var entries: [(Node, Node?)] = []
        if let sequence = node.sequence {
            entries = sequence.map { ($0, nil) }
        } else if let mapping = node.mapping {
            entries = mapping.map { ($0.key, $0.value) }
        } else if node.scalar != nil {
            entries = [(node, nil)]
        } else {
            reader.error("expected a list of statuses ([200, 404]) or statuses with TTLs ({200: 10m, 404: 30s})",
                at: node, field: field)
            return nil
        }
        var seen = Set<Int>()
        for (statusNode, ttlNode) in entries {
            guard let text = reader.string(statusNode, field: field) else { continue }
            guard let status = Int(text), (200...599).contains(status) else {
                reader.error("'\(text)' is not an HTTP status from 200 to 599", at: statusNode, field: field)
                continue
            }
            if status == 206 || status == 304 {
                reader.error("\(status) answers cannot be stored: they are not whole representations", at: statusNode,
                    field: field)
                continue
            }
            guard seen.insert(status).inserted else {
                reader.error("\(status) is listed twice", at: statusNode, field: field)
                continue
            }
            var ttl: Duration?
            if let ttlNode {
                guard let parsed = reader.duration(ttlNode, field: "\(field).\(status)") else { continue }
                ttl = parsed
            }
            if status >= 500 {
                reader.warning("stores \(status) answers: while they are fresh, an origin outage keeps being served "
                    + "from the cache after the origin has recovered", at: statusNode, field: field)
            }
            result.append((status, ttl))
        }
        return (result, false)
    }
}
