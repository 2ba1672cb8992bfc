import Testing
@testable import TroveRules

@Suite struct RequestTargetTests {
    /// Escapes of unreserved characters are decoded and hex is upper-cased; reserved escapes stay escaped.
    @Test func normalizesPercentEncoding() throws {
        let target = try RequestTarget(parsing: "/api/%7Euser/%65vents/a%2fb")
        #expect(target.segments == ["api", "~user", "events", "a%2Fb"])
        #expect(target.path == "/api/~user/events/a%2Fb")
    }

    /// Dot segments are removed, also when written as %2E, and cannot climb above the root.
    @Test func removesDotSegments() throws {
        #expect(try RequestTarget(parsing: "/a/./b/../c").path == "/a/c")
        #expect(try RequestTarget(parsing: "/a/%2E%2E/admin").path == "/admin")
        #expect(try RequestTarget(parsing: "/../../etc/passwd").path == "/etc/passwd")
        #expect(try RequestTarget(parsing: "/a/b/..").path == "/a/")
        #expect(try RequestTarget(parsing: "/").segments == [""])
    }

    /// The query is forwarded as sent and split into items with decoded names and normalized values.
    @Test func splitsTheQuery() throws {
        let target = try RequestTarget(parsing: "/events?page=2&search=a+b%2fc&flag&tag=x&tag=y")
        #expect(target.rawQuery == "page=2&search=a+b%2fc&flag&tag=x&tag=y")
        #expect(target.forwardTarget == "/events?page=2&search=a+b%2fc&flag&tag=x&tag=y")
        #expect(target.queryItems.map(\.name) == ["page", "search", "flag", "tag", "tag"])
        #expect(target.queryItems[1].value == "a+b%2Fc")
        #expect(target.queryItems[2].value == nil)
    }

    /// Proxies may receive absolute-form targets; only the path and query are used.
    @Test func acceptsAbsoluteForm() throws {
        let target = try RequestTarget(parsing: "http://shop.example.com/api/events?page=1")
        #expect(target.path == "/api/events")
        #expect(target.rawQuery == "page=1")
        #expect(try RequestTarget(parsing: "http://shop.example.com").path == "/")
    }

    /// A `%` that starts no escape is written `%25`, so decoding around it cannot complete it into one: normalizing
    /// twice gives what normalizing once did (fuzzing found `/%e%44` becoming `/%eD`, then `/%ED`).
    @Test func anIncompleteEscapeStaysAPercent() throws {
        let target = try RequestTarget(parsing: "/%44/%e%44/%4g?q=%e%44")
        #expect(target.path == "/D/%25eD/%254g")
        #expect(target.queryItems.first?.value == "%25eD")
        #expect(try RequestTarget(parsing: target.forwardTarget).path == target.path)
        #expect(try RequestTarget(parsing: "/100%").path == "/100%25")
    }

    /// `/` or `?` followed by a combining mark is one Character but two things to a URL: read as bytes, the mark
    /// stays in the segment or query it belongs to, and the normalized target reads the same again (fuzzing found
    /// `/./\u{596}` accepted but its normalized form `/\u{596}` refused).
    @Test func combiningMarksAfterSeparators() throws {
        let target = try RequestTarget(parsing: "/./\u{596}/x?\u{301}a=1")
        #expect(target.segments == ["\u{596}", "x"])
        #expect(target.rawQuery == "\u{301}a=1")
        #expect(try RequestTarget(parsing: target.forwardTarget).path == target.path)
        #expect(try RequestTarget(parsing: "http://h/\u{596}").segments == ["\u{596}"])
    }

    /// Targets that are not paths, or carry spaces or control characters, are refused with a reason.
    @Test func rejectsMalformedTargets() {
        #expect(throws: RequestTarget.ParseError(description: "the request target must start with '/' (got 'api/events')")) {
            try RequestTarget(parsing: "api/events")
        }
        #expect(throws: RequestTarget.ParseError(description: "the request target contains a space or a control character")) {
            try RequestTarget(parsing: "/a b")
        }
    }
}
