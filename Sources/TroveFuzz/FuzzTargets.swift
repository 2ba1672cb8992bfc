internal import TroveHTTP
internal import Foundation
internal import NIOCore
internal import TroveCore
internal import TroveRedis
internal import TroveRules

/// The parsers that read what comes from outside, each as a function of arbitrary bytes, for libFuzzer
/// (`make fuzz`, the `trove-fuzz` executable) and for the regression tests that replay the committed corpus.
///
/// Each target parses, then checks what must hold of any result (a rendered key stays within its alphabet, a
/// normalized target normalizes to itself, an HTTP date is not before 1970); a violation traps, which libFuzzer
/// reports with the input that caused it.
public enum FuzzTargets {
    /// The targets by name, as `TROVE_FUZZ=name` selects them.
    public static let names = ["rules", "template", "target", "headers", "resp", "framing", "accesslog", "shadow"]

    public static func run(_ name: String, _ bytes: UnsafeRawBufferPointer) {
        switch name {
        case "rules": rules(bytes)
        case "template": template(bytes)
        case "target": target(bytes)
        case "headers": headers(bytes)
        case "resp": resp(bytes)
        case "framing": framing(bytes)
        case "accesslog": accesslog(bytes)
        case "shadow": shadow(bytes)
        default: fatalError("no fuzz target '\(name)'; targets: \(names.joined(separator: ", "))")
        }
    }

    /// The hit fast path's framing of a client's bytes (`RequestFraming`): whatever it says lies within the bytes
    /// given (a body may lie past them), a plain read's target and host lie within its head, framing the head
    /// alone says the same (the fast path frames a request again once more bytes arrive), and the fields handed to
    /// the full path hold the Host framing found.
    static func framing(_ bytes: UnsafeRawBufferPointer) {
        let maxHead = 1 + Int(bytes.first ?? 0) * 64
        let frame = RequestFraming.frame(bytes, maxHead: maxHead)
        switch frame {
        case .incomplete:
            precondition(bytes.count < maxHead, "incomplete past the most held")
        case .plainRead(let read):
            precondition(read.length <= bytes.count && read.length <= maxHead, "a head past the bytes: \(read)")
            precondition(read.target.upperBound < read.length && read.host.upperBound < read.length && !read.target.isEmpty, "\(read)")
            let again = RequestFraming.frame(UnsafeRawBufferPointer(rebasing: bytes[..<read.length]), maxHead: maxHead)
            precondition(again == frame, "the head alone frames differently: \(again)")
            // A prefix of a head is never a request.
            let cut = RequestFraming.frame(UnsafeRawBufferPointer(rebasing: bytes[..<(read.length - 1)]), maxHead: maxHead)
            precondition(cut == .incomplete || cut == .unframed, "a cut head framed as \(cut)")
            // The fields the full path is handed hold the one Host, with the value framing found.
            let fields = RequestFraming.fields(of: read, in: bytes)
            let hosts = fields.filter { $0.name.lowercased() == "host" }
            precondition(hosts.count == 1, "not one Host among \(fields)")
            // (As NIO's decoder does, bytes that are not UTF-8 are read as U+FFFD.)
            precondition(hosts[0].value == String(decoding: bytes[read.host], as: UTF8.self), "the Host value differs: \(hosts[0].value)")
        case .request(let length):
            precondition(length > 0, "an empty request")
        case .unframed:
            break
        }
    }

    /// `trove suggest`: access-log lines (Trove's JSON, nginx's combined format) read into requests, and the draft
    /// drafted from them. A request read has a path and a status in range; a draft always loads as rules.
    static func accesslog(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        var requests: [RulesDraft.Request] = []
        for line in text.split(separator: "\n").prefix(64) {
            guard let request = RulesDraft.parse(line: line) else { continue }
            precondition(request.path.hasPrefix("/") && (100...599).contains(request.status))
            requests.append(request)
        }
        guard !requests.isEmpty else { return }
        let draft = RulesDraft.draft(requests, origin: "http://127.0.0.1:8000", source: "fuzz")
        do {
            _ = try RulesLoader.parse(draft, file: "draft.yaml", environment: ["TROVE_ADMIN_TOKEN": "fuzz"])
        } catch {
            preconditionFailure("a draft that does not load: \(error)\n\(draft)")
        }
    }

    /// Shadow mode's comparison: the first line is a JSON path to ignore (`cache.shadow.ignore`), the rest two
    /// bodies separated by a NUL byte. A path parsed is written back as given; an answer equals itself; what
    /// differs is bounded; and the verdict does not depend on which side is the stored one.
    static func shadow(_ bytes: UnsafeRawBufferPointer) {
        let all = Array(bytes)
        let newline = all.firstIndex(of: 10) ?? all.endIndex
        let pathText = String(decoding: all[..<newline], as: UTF8.self)
        var settings = ShadowSettings()
        if case .success(let path) = JSONPath.parse(pathText) {
            precondition(path.description == pathText)
            settings.ignoredPaths = [path]
        }
        let rest = newline < all.endIndex ? Array(all[(newline + 1)...]) : []
        let split = rest.firstIndex(of: 0) ?? rest.endIndex
        let a = ShadowComparison.Answer(status: 200, headers: [], body: Array(rest[..<split]))
        let b = ShadowComparison.Answer(status: 200, headers: [], body: split < rest.endIndex ? Array(rest[(split + 1)...]) : [])
        precondition(ShadowComparison.compare(stored: a, origin: a, settings: settings) == .same)
        let forward = ShadowComparison.compare(stored: a, origin: b, settings: settings)
        let backward = ShadowComparison.compare(stored: b, origin: a, settings: settings)
        precondition((forward == .same) == (backward == .same))
        if case .differs(let found) = forward { precondition(!found.isEmpty && found.count <= ShadowComparison.maxDifferences) }
    }

    /// The rules loader: YAML, validation, and a plan and an explanation for a request to each route.
    static func rules(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let rules = try? RulesLoader.parse(text, file: "fuzz.yaml", environment: ["TROVE_ADMIN_TOKEN": "fuzz-token-0123456789"])
        else { return }
        for route in rules.routes.prefix(8) {
            let head = RequestHead(method: route.methods.description.split(separator: ",").first.map(String.init) ?? "GET",
                target: "/" + route.path.description.dropFirst().replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: ""))
            let plan = rules.plan(for: head)
            _ = Explanation(plan: plan, rules: rules, request: head).text
        }
        _ = rules.counterLifetime
    }

    /// Templates: parsed from the first line, rendered for the request the other lines describe (a target, then
    /// `Name: value` headers). A rendered key never holds whitespace, `#`, `{` or `}`.
    static func template(_ bytes: UnsafeRawBufferPointer) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Every problem at once, and the partial template beside them (what `trove check` reads): never a trap, and
        // a template is usable exactly when there is no problem.
        if let first = lines.first {
            let parsed = Template.parse(first, pathParameters: ["id", "rest"], restParameters: ["rest"])
            precondition(parsed.problems.isEmpty == ((try? Template(parsing: first, pathParameters: ["id", "rest"], restParameters: ["rest"])) != nil))
            if let partial = parsed.template { _ = partial.placeholders.count }
        }
        guard let first = lines.first,
            let template = Template.parse(first, pathParameters: ["id", "rest"], restParameters: ["rest"], tokenClaims: true).template,
            Template.parse(first, pathParameters: ["id", "rest"], restParameters: ["rest"], tokenClaims: true).problems.isEmpty,
            lines.count > 1, let target = try? RequestTarget(parsing: lines[1])
        else { return }
        let headers = lines.dropFirst(2).compactMap { line -> Header? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return Header(String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        // The Authorization header's token, checked as a route with `jwt:` checks it: whatever it holds, a forged
        // token is refused (the fuzzer does not know the secret), and claims are bounded.
        var claims: [String: String] = [:]
        if case .verified(let verified) = Self.verifier.verify(headers, now: 1_800_000_000_000) {
            precondition(verified.count <= 64, "unbounded claims")
            claims = verified
        }
        let context = TemplateContext(method: "GET", target: target, pathParameters: ["id": target.segments.first ?? "", "rest": target.path],
            headers: headers, tokenClaims: claims)
        let rendered = template.render(context)
        // Values are escaped: nothing a request sends can put `#` or whitespace into a key the template does not.
        for forbidden: UInt8 in [UInt8(ascii: "#"), UInt8(ascii: " "), 9, 10, 13] where !first.utf8.contains(forbidden) {
            precondition(!rendered.utf8.contains(forbidden), "a request value wrote byte \(forbidden) into a key: \(rendered)")
        }
    }

    /// An HS256 verifier with a secret of the fuzzer's own.
    static let verifier: TokenVerifier = {
        let rules = try! RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            jwt: {t: {algorithm: HS256, secret: {env: S}}}
            routes: [{name: a, match: GET /a, jwt: t, cache: {key: "a:{jwt.sub}", ttl: 1m}}]
            """, file: "fuzz.yaml", environment: ["TROVE_ADMIN_TOKEN": "fuzz-token-0123456789", "S": "fuzz-secret-0123456789abcdef-0123456789"])
        return rules.routes[0].tokenVerifier!
    }()

    /// Request targets: parsing, normalizing, removing query items. A normalized target parses to itself.
    static func target(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let target = try? RequestTarget(parsing: text) else { return }
        let again = try? RequestTarget(parsing: target.forwardTarget)
        precondition(again?.path == target.path, "normalizing \(text) twice changed its path: \(target.path) → \(again?.path ?? "nil")")
        let stripped = target.removingQueryItems { $0.hasPrefix("utm_") }
        precondition(!stripped.queryItems.contains { $0.name.hasPrefix("utm_") }, "utm_ left in \(stripped.forwardTarget)")
        _ = target.queryItems.map(\.value)
    }

    /// Header values from outside: Cache-Control, Expires, Date, Age, Last-Modified, If-Modified-Since,
    /// If-None-Match, Vary, Accept-Encoding, Host and addresses.
    static func headers(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        let values = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func value(_ index: Int) -> String { values.isEmpty ? "" : values[index % values.count] }
        let names = ["Cache-Control", "Expires", "Date", "Age", "Last-Modified", "ETag", "Vary", "Content-Encoding"]
        let response = names.enumerated().map { Header($0.element, value($0.offset)) }
        let request = ["If-Modified-Since", "If-None-Match", "Accept-Encoding", "Accept-Language", "Host"].enumerated().map {
            Header($0.element, value($0.offset + names.count))
        }
        if let date = HTTPDate.milliseconds(value(0)) { precondition(date >= 0, "a date before 1970: \(value(0))") }
        _ = ConditionalRequest.notModified(request: request, entryStatus: 200, entryHeaders: response)
        _ = Freshness.initialAge(response)
        for policy in Self.policies {
            if let freshness = Freshness.of(status: 200, headers: response, policy: policy, now: 1_800_000_000_000) {
                precondition(freshness.ttl >= 0 && freshness.stale >= 0 && freshness.staleIfError >= 0, "a negative window: \(freshness)")
            }
        }
        let variant = HeaderPolicy.variant(vary: response, request: request)
        precondition(HeaderPolicy.matches(variant: variant, request: request), "a request does not match its own variant")
        _ = ContentCoding.acceptsGzip(request)
        _ = ContentCoding.isGzip(response)
        _ = HeaderPolicy.responseHeaders(response)
        // The origin's tags: bounded, each once, none empty or holding a separator, and the stripped headers hold none.
        let origin = OriginTagHeader(name: response.first?.name ?? "Surrogate-Key", keep: false)
        if let tags = origin.tags(in: response) {
            precondition(tags.count <= OriginTagHeader.maxCount && Set(tags).count == tags.count, "tags not bounded or repeated: \(tags)")
            precondition(tags.allSatisfy { !$0.isEmpty && $0.utf8.count <= OriginTagHeader.maxLength && !$0.contains(" ") && !$0.contains(",") })
            let sent = CDNTagHeader(name: "Cache-Tag").apply(tags, to: origin.strip(response))
            precondition(!sent.contains { $0.name.lowercased() == origin.name.lowercased() && $0.name.lowercased() != "cache-tag" })
        }
        _ = HostPattern.name(ofHostHeader: value(3))
        _ = IPAddress(value(4)).map { AddressRange($0.description + "/8")?.contains($0) }
    }

    static let policies: [CachePolicy] = {
        let rules = try! RulesLoader.parse("""
            version: 1
            origins: {api: {url: "http://127.0.0.1:8000"}}
            routes:
              - {name: a, match: GET /a, cache: {ttl: 1m, stale: 30s, freshness: origin, max_ttl: 1h, statuses: any}}
              - {name: b, match: GET /b, cache: {ttl: 5m}}
            """, file: "fuzz.yaml", environment: ["TROVE_ADMIN_TOKEN": "fuzz-token-0123456789"])
        return rules.routes.compactMap(\.cachePolicy)
    }()

    /// Redis replies through hiredis' reader, fed in two pieces; and stored entry heads.
    static func resp(_ bytes: UnsafeRawBufferPointer) {
        let reader = RESPReader()
        let split = bytes.count / 2
        reader.feed(Array(bytes[..<split]))
        reader.feed(Array(bytes[split...]))
        var replies = 0
        while replies < 10_000, let reply = try? reader.next(allocator: ByteBufferAllocator()) {
            _ = reply
            replies += 1
        }
        _ = EntryCodec.decodeHead(bytes)
        _ = EntryCodec.decodeHead(prefix: bytes)
    }
}
