import Testing
@testable import TroveRules

@Suite struct PathPatternTests {
    private func segments(_ path: String) throws -> [String] { try RequestTarget(parsing: path).segments }

    /// Named parameters capture one non-empty segment each.
    @Test func capturesParameters() throws {
        let pattern = try PathPattern(parsing: "/api/v1/events/{id}/tickets/{ticket}")
        #expect(pattern.parameterNames == ["id", "ticket"])
        #expect(pattern.match(try segments("/api/v1/events/42/tickets/7")) == ["id": "42", "ticket": "7"])
        #expect(pattern.match(try segments("/api/v1/events//tickets/7")) == nil)
        #expect(pattern.match(try segments("/api/v1/events/42/tickets")) == nil)
        #expect(pattern.match(try segments("/api/v1/events/42/tickets/7/x")) == nil)
    }

    /// A trailing slash is part of the path, as it is to Django.
    @Test func trailingSlashMatters() throws {
        let pattern = try PathPattern(parsing: "/api/products/")
        #expect(pattern.match(try segments("/api/products/")) == [:])
        #expect(pattern.match(try segments("/api/products")) == nil)
    }

    /// `*` matches one segment, `**` and `{name...}` the rest of the path (including nothing).
    @Test func wildcards() throws {
        let one = try PathPattern(parsing: "/files/*/meta")
        #expect(one.match(try segments("/files/x/meta")) == [:])
        #expect(one.match(try segments("/files/x/y/meta")) == nil)
        let rest = try PathPattern(parsing: "/static/{file...}")
        #expect(rest.match(try segments("/static/css/site.css")) == ["file": "css/site.css"])
        #expect(rest.match(try segments("/static")) == ["file": ""])
        let all = try PathPattern(parsing: "/**")
        #expect(all.match(try segments("/")) == [:])
        #expect(all.match(try segments("/a/b/c")) == [:])
    }

    /// A parameter may have literal text around it within its segment, as Shopify's `{id}.json`.
    @Test func parameterWithSuffix() throws {
        let pattern = try PathPattern(parsing: "/products/{id}.json")
        #expect(pattern.match(try segments("/products/632910392.json")) == ["id": "632910392"])
        #expect(pattern.match(try segments("/products/.json")) == nil)
        #expect(pattern.match(try segments("/products/42.xml")) == nil)
    }

    /// Literals match escaped spellings of the same text.
    @Test func literalsMatchEscapedSpellings() throws {
        let pattern = try PathPattern(parsing: "/caf%C3%A9/menu")
        #expect(pattern.match(try segments("/café/menu")) == [:])
        #expect(pattern.match(try segments("/caf%c3%a9/menu")) == [:])
    }

    /// Malformed path templates are refused with a message saying how to write them.
    @Test(arguments: [
        ("api/events", "the path must start with '/' (got 'api/events')"),
        ("/a/**/b", "'**' must be the last segment of the path"),
        ("/a/{rest...}/b", "'{rest...}' captures the rest of the path, so it must be last"),
        ("/a/{id}/b/{id}", "parameter '{id}' appears twice in the path"),
        ("/a/{1d}", "'{1d}' is not a valid parameter name; use letters, digits and '_', starting with a letter"),
        ("/a/{query}", "'{query}' cannot be a path parameter: 'query' names a built-in placeholder ({method}, {path}, {query}); choose another name"),
        ("/a/x*", "segment 'x*' is not a pattern Trove reads: a wildcard (*, **) must be a whole segment, and a placeholder is written {name}"),
        ("/a/{x}-{y}", "segment '{x}-{y}' is not a pattern Trove reads: a segment holds one {name}, optionally with text around it ({id}.json), and '{name...}' or '**' only alone"),
        ("/events?page=1", "the path must not contain a query ('?'); routes match paths, keys read the query"),
    ])
    func rejectsMalformedPatterns(text: String, message: String) {
        #expect(throws: PathPattern.ParseError(message: message)) { try PathPattern(parsing: text) }
    }

    /// `covers` is true exactly when every path one pattern matches is matched by the other.
    @Test(arguments: [
        ("/**", "/api/events", true),
        ("/api/{id}", "/api/events", true),
        ("/api/{id}", "/api/events/x", false),
        ("/api/events", "/api/{id}", false),
        ("/api/*", "/api/{id}", true),
        ("/api/{x}", "/api/*", true),
        ("/api/{id}.json", "/api/42.json", true),
        ("/api/{id}", "/api/{id}.json", true),
        ("/api/{id}.json", "/api/{id}", false),
        ("/api/{id}", "/api/", false),
        ("/api/**", "/api", true),
        ("/api/**", "/api/{rest...}", true),
        ("/api/{id}", "/api/**", false),
        ("/a/b", "/a/b", true),
        ("/a/b", "/a/b/", false),
    ])
    func coverage(general: String, specific: String, covers: Bool) throws {
        #expect(try PathPattern(parsing: general).covers(PathPattern(parsing: specific)) == covers)
    }
}
