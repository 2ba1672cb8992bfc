import TroveHTTP
import Testing
@testable import TroveRules

@Suite struct TemplateTests {
    private func render(
        _ template: String, _ target: String, parameters: [String: String] = [:],
        headers: [(name: String, value: String)] = [], method: String = "GET", pathParameters: [String] = []
    ) throws -> String {
        let parsed = try Template(parsing: template, pathParameters: pathParameters.isEmpty ? Array(parameters.keys) : pathParameters)
        let context = TemplateContext(
            method: method, target: try RequestTarget(parsing: target), pathParameters: parameters,
            headers: headers.map { Header($0.name, $0.value) })
        return parsed.render(context)
    }

    /// The seed's events key renders with the query values and their defaults.
    @Test func rendersTheSeedKey() throws {
        let key = "events:list:page={query.page|default:1}:limit={query.limit|default:20}:search={query.search}"
        #expect(try render(key, "/api/v1/events?page=2&limit=5") == "events:list:page=2:limit=5:search=")
        #expect(try render(key, "/api/v1/events") == "events:list:page=1:limit=20:search=")
        #expect(try render(key, "/api/v1/events?search=rock%20concert") == "events:list:page=1:limit=20:search=rock%2520concert")
    }

    /// Path parameters, headers, cookies, the method and the whole path are all readable.
    @Test func readsEverySource() throws {
        #expect(try render("event:{id}", "/e/42", parameters: ["id": "42"]) == "event:42")
        #expect(try render("event:{path.id}", "/e/42", parameters: ["id": "42"]) == "event:42")
        #expect(try render("lang={header.Accept-Language|lower}", "/", headers: [("accept-language", "FR-ca")]) == "lang=fr-ca")
        #expect(try render("s={cookie.session}", "/", headers: [("Cookie", "a=1; session=\"xyz\"; b=2")]) == "s=xyz")
        #expect(try render("{method}:{path}", "/a/./b/../c", method: "HEAD") == "GET:/a/c")
        #expect(try render("{path}", "/a%2Fb/c") == "/a%252Fb/c")
        #expect(try render("x:{header.x-missing|default:none}", "/") == "x:none")
        #expect(try render("x:{query.q|upper|trim}", "/?q=%20abc%20") == "x:ABC")
    }

    /// `{query:page,limit,search}` (#15): only those parameters, sorted like `{query}`; an absent one is left out,
    /// one present but empty is not; parameters it does not name never reach the key.
    @Test func namedQueryParameters() throws {
        let key = "events:{query:page,limit,search}"
        #expect(try render(key, "/e?search=rock%20x&utm_source=a&page=2&limit=20") == "events:limit=20&page=2&search=rock%2520x")
        #expect(try render(key, "/e?page=2&limit=20") == "events:limit=20&page=2")
        let swapped = try render(key, "/e?page=2&limit=20")
        #expect(try render(key, "/e?limit=20&page=2") == swapped)
        let absent = try render(key, "/e")
        #expect(try render(key, "/e?page=") != absent)
        #expect(try render(key, "/e") == "events:")
        #expect(try render("e:{query:tag}", "/e?tag=b&tag=a") == "e:tag=b&tag=a", "repeated values keep their order")
        #expect(throws: Template.ParseError(message: "'{query:}' must list query parameter names separated by commas, e.g. {query:page,limit}")) {
            try Template(parsing: "e:{query:}", pathParameters: [])
        }
        #expect(throws: Template.ParseError(message: "'{query:a,,b}' must list query parameter names separated by commas, e.g. {query:page,limit}")) {
            try Template(parsing: "e:{query:a,,b}", pathParameters: [])
        }
        #expect(throws: Template.ParseError(message: "'{query:a,a}' names a query parameter twice")) {
            try Template(parsing: "e:{query:a,a}", pathParameters: [])
        }
        // It renders `=` and `&`, so what follows it needs a separator they are not.
        #expect(throws: Template.ParseError.self) { try Template(parsing: "e:{query:a}&{query.b}", pathParameters: []) }
    }

    /// `{query}` sorts parameters by name, keeping repeated names in the order sent.
    @Test func sortsTheQuery() throws {
        #expect(try render("q:{query}", "/x?b=2&a=1") == "q:a=1&b=2")
        #expect(try render("q:{query}", "/x?a=1&b=2") == "q:a=1&b=2")
        #expect(try render("q:{query}", "/x?tag=b&tag=a") == "q:tag=b&tag=a")
        #expect(try render("q:{query}", "/x?tag=a&tag=b") == "q:tag=a&tag=b")
        #expect(try render("q:{query}", "/x?flag&flag=") == "q:flag&flag=")
        #expect(try render("q:{query}", "/x?a=%3D&b=1") == "q:a=%253D&b=1")
    }

    /// Hashing keeps credentials out of keys; an absent header hashes to nothing (the anonymous entry).
    @Test func hashesCredentials() throws {
        let key = "u:{header.authorization|sha256}"
        let alice = try render(key, "/", headers: [("Authorization", "Bearer alice")])
        let bob = try render(key, "/", headers: [("Authorization", "Bearer bob")])
        // sha256("Bearer alice"), computed independently with `printf 'Bearer alice' | sha256sum`.
        #expect(alice == "u:9d7cce461e4b2f090a3d686b4ae72d25ea18e93573d2772bb52ff548e6262aa3")
        #expect(alice != bob)
        #expect(try render(key, "/") == "u:")
    }

    /// No value can forge a separator: every pair of distinct requests renders a distinct key.
    @Test func keysAreInjective() throws {
        let values = ["", "1", "2", ":", "1:limit=5", "}", "{", "a}b", "%", "%25", "%3A", "=", "&", "#", "a#b", "é",
                      "a,b", "~", "+", " ", "limit=20", "1:limit=20:search="]
        let template = "events:list:page={query.page|default:1}:limit={query.limit|default:20}:search={query.search}"
        var seen: [String: String] = [:]
        func encoded(_ value: String) -> String {
            value.utf8.map { byte -> String in
                let char = Character(Unicode.Scalar(byte))
                return byte < 0x80 && (char.isLetter || char.isNumber || "-._~".contains(char))
                    ? String(char) : "%" + String(byte, radix: 16, uppercase: true).leftPadded()
            }.joined()
        }
        for page in values + [nil] as [String?] {
            for limit in values + [nil] as [String?] {
                for search in ["", "x:y}", nil] as [String?] {
                    var items: [String] = []
                    if let page { items.append("page=" + encoded(page)) }
                    if let limit { items.append("limit=" + encoded(limit)) }
                    if let search { items.append("search=" + encoded(search)) }
                    let target = "/api/v1/events?" + items.joined(separator: "&")
                    // Absent and default spell the same request to the origin's eyes only when equal: skip the
                    // pairs the template is meant to merge (page=1 vs no page, limit=20 vs no limit, search= vs none).
                    let request = "page=\(page ?? "1")|limit=\(limit ?? "20")|search=\(search ?? "")"
                    let key = try render(template, target)
                    if let other = seen[key] {
                        #expect(other == request, "\(target) and \(other) share key \(key)")
                    }
                    seen[key] = request
                }
            }
        }
        #expect(seen.count > values.count * values.count)
    }

    /// Malformed templates are refused with a message that says how to fix them.
    @Test(arguments: [
        ("", [], "the template is empty"),
        ("events:{id", ["id"], "'{' is never closed; write placeholders like {query.page}"),
        ("events:id}", [], "'}' without a matching '{'"),
        ("events:{}", [], "empty placeholder '{}'; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}"),
        ("events:{qurey.page}", [], "unknown placeholder '{qurey.page}' (did you mean {query.page}?); placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}"),
        ("events:{idd}", ["id"], "unknown placeholder '{idd}' (did you mean {id}?)"),
        ("events:{page}", [], "unknown placeholder '{page}': the route's path has no parameters; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}"),
        ("events:{path.slug}", ["id"], "unknown placeholder '{path.slug}': the route's path has {id}; placeholders are {NAME} (a path parameter), {query.NAME}, {header.NAME}, {cookie.NAME}, {method}, {path} and {query}"),
        ("events:{query.}", [], "'{query.}' names no query; write it like {query.NAME}"),
        ("events:{id|lowr}", ["id"], "'{id|lowr}': unknown filter 'lowr' (did you mean 'lower'?); filters are lower, upper, trim, sha256, token and default:VALUE"),
        ("events:{query.page|default}", [], "'{query.page|default}': default needs a value, e.g. default:1"),
        ("events:{query.page|default:}", [], "'{query.page|default:}': default needs a value, e.g. default:1"),
        ("events:{query.a}{query.b}", [], "placeholders {query.a} and {query.b} are not separated: put a character such as ':' between them, so that different values cannot render the same text"),
        ("events:{query.a}-{query.b}", [], "'-' after {query.a} cannot separate it from what follows, because the value can contain those characters; use a separator such as ':' or '=' (letters, digits, '-', '.', '_' and '~' appear in values)"),
        ("events:{path}/{query.b}", [], "'/' after {path} cannot separate it from what follows, because the value can contain those characters; use a separator such as ':' or '=' (letters, digits, '-', '.', '_' and '~' appear in values)"),
        ("events list", [], "text outside placeholders must be printable ASCII without spaces (found 'U+20')"),
        ("events#1", [], "'#' is reserved: Trove uses it to mark keys it shortened by hashing"),
    ] as [(String, [String], String)])
    func rejectsMalformedTemplates(text: String, parameters: [String], message: String) {
        #expect(throws: Template.ParseError(message: message)) {
            try Template(parsing: text, pathParameters: parameters)
        }
    }

    /// Two templates overlap when some request could make them render the same text.
    @Test(arguments: [
        ("event:{id}", "event:{id}", true),
        ("event:{id}", "event:42", true),
        ("event:{id}", "events", false),
        ("product:{id}", "product:{id}:variants", false),
        ("product:{id}:variants", "product:{query.product}:variants:list", false),
        ("areas:{kind}:{query}", "areas:buy:{query}", true),
        ("u:{header.authorization|sha256}", "u:alice", false),
        ("u:{header.authorization|sha256}", "u:", true),
        ("{path}?{query}", "/a?b=1", true),
    ])
    func overlap(a: String, b: String, overlaps: Bool) throws {
        let parameters = ["id", "kind"]
        let left = try Template(parsing: a, pathParameters: parameters)
        let right = try Template(parsing: b, pathParameters: parameters)
        #expect(left.canRenderSameText(as: right) == overlaps)
        #expect(right.canRenderSameText(as: left) == overlaps)
    }

    /// A template knows which credentials it holds.
    @Test func detectsCredentials() throws {
        #expect(try Template(parsing: "{header.Authorization|sha256}", pathParameters: []).credentials == [.authorization])
        #expect(try Template(parsing: "{cookie.sid|sha256}", pathParameters: []).credentials == [.cookie])
        #expect(try Template(parsing: "{header.x-user}", pathParameters: []).credentials == [])
    }
}

extension String {
    fileprivate func leftPadded() -> String { count == 1 ? "0" + self : self }
}
