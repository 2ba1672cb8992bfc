public import TroveHTTP

public final class Route: Sendable {
    public let name: String
    /// 1-based position in `routes:`.
    public let index: Int
    /// Line of the route in the rules file.
    public let line: Int
    public let methods: MethodSet
    public let path: PathPattern
    public let origin: String
    public let action: Action
    /// Where parts of the route are written, for diagnostics that span routes.
    let lines: SourceLines
    /// True when the route's plan for a request depends on its headers (a key, tag or purge template reads
    /// one), not only on the method and URL.
    public let readsHeaders: Bool
    /// Checks the token requests carry, for templates that read its claims (`jwt:`); nil when the route does not.
    public let tokenVerifier: TokenVerifier?

    init(
        name: String, index: Int, line: Int, methods: MethodSet, path: PathPattern, origin: String, action: Action, lines: SourceLines,
        tokenVerifier: TokenVerifier? = nil
    ) {
        self.tokenVerifier = tokenVerifier
        self.name = name
        self.index = index
        self.line = line
        self.methods = methods
        self.path = path
        self.origin = origin
        self.action = action
        self.lines = lines
        switch action {
        case .cache(let policy): readsHeaders = policy.key.readsHeaders || policy.tags.contains(where: \.readsHeaders)
        case .purge(let rule): readsHeaders = (rule.tags + rule.keys).contains(where: \.readsHeaders)
        case .pass: readsHeaders = false
        }
    }

    struct SourceLines: Sendable {
        var name: SourcePosition?
        var match: SourcePosition?
        var key: SourcePosition?
        var purgeTags: [SourcePosition?] = []
        var purgeKeys: [SourcePosition?] = []
        var purgeRoutes: [SourcePosition?] = []
    }

    /// What a route does with the requests it matches.
    public enum Action: Sendable {
        /// Answer from the store when fresh; otherwise fetch, store and answer.
        case cache(CachePolicy)
        /// Forward; when the origin answers 2xx or 3xx, purge what the rule names.
        case purge(PurgeRule)
        /// Forward; never store.
        case pass

        public var isPass: Bool {
            if case .pass = self { true } else { false }
        }

        /// True when requests render templates (keys, tags, purges): not for `pass`.
        var rendersTemplates: Bool {
            if case .pass = self { false } else { true }
        }
    }

    /// `GET /api/v1/events/{id}`, as written.
    public var match: String { "\(methods) \(path)" }

    public var cachePolicy: CachePolicy? {
        if case .cache(let policy) = action { policy } else { nil }
    }

    public var purgeRule: PurgeRule? {
        if case .purge(let rule) = action { rule } else { nil }
    }
}

/// How a cacheable route stores answers.
// A class: plans and state machines hold it for every request, and copying a reference is one retain where copying
// its fields is dozens. Immutable, so sharing it is safe.
