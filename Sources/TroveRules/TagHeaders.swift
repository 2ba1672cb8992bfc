public import TroveHTTP

/// A response header whose values are tags (`tags_from`): the origin names, per answer, what a purge of those
/// tags must invalidate (`Surrogate-Key: product-42 collection-7`, `Cache-Tag: product-42,collection-7`, `xkey`).
public struct OriginTagHeader: Sendable, Equatable {
    /// The header's name, as written in the rules.
    public let name: String
    /// Whether the header stays on the answer clients get (off by default: it says how the origin's data is
    /// organised, which is nobody else's business).
    public let keep: Bool

    /// An answer naming more tags than this is not stored: each is a counter every hit reads.
    public static let maxCount = 64
    /// Nor is one naming a tag longer than this (bytes).
    public static let maxLength = 256

    private let lowercased: String

    public init(name: String, keep: Bool) {
        self.name = name
        self.keep = keep
        self.lowercased = name.lowercased()
    }

    /// The tags the answer's headers name, in order, once each (members separated by spaces or commas, over
    /// every field line of the header); nil when there are too many or one is too long to record.
    public func tags(in headers: [Header]) -> [String]? {
        var tags: [String] = []
        for header in headers where HTTPSyntax.name(header.name, is: lowercased) {
            for member in header.value.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) {
                guard member.utf8.count <= Self.maxLength else { return nil }
                let tag = String(member)
                if !tags.contains(tag) { tags.append(tag) }
                guard tags.count <= Self.maxCount else { return nil }
            }
        }
        return tags
    }

    /// True when the headers carry this one.
    public func isPresent(in headers: [Header]) -> Bool {
        headers.contains { HTTPSyntax.name($0.name, is: lowercased) }
    }

    /// The headers without this one, unless it is kept.
    public func strip(_ headers: [Header]) -> [Header] {
        guard !keep, isPresent(in: headers) else { return headers }
        return headers.filter { !HTTPSyntax.name($0.name, is: lowercased) }
    }
}

/// A header that carries an entry's tags on to a CDN in front of Trove (`send_tags`), so that one purge API
/// drives both: Fastly's `Surrogate-Key` and Varnish's `xkey` separate them with spaces, Cloudflare's and
/// Akamai's `Cache-Tag` (and any other) with commas.
public struct CDNTagHeader: Sendable, Equatable {
    public let name: String

    private let lowercased: String

    public init(name: String) {
        self.name = name
        self.lowercased = name.lowercased()
    }

    public var separator: String {
        lowercased == "surrogate-key" || lowercased == "xkey" ? " " : ","
    }

    /// The header for these tags (rule tags, then the origin's), replacing any the answer has; the headers as
    /// they are when there are none.
    public func apply(_ tags: [String], to headers: [Header]) -> [Header] {
        guard !tags.isEmpty else { return headers }
        var out = headers.filter { !HTTPSyntax.name($0.name, is: lowercased) }
        // Only what can be written back as a field value (rendered tags hold request data).
        let usable = tags.filter { HTTPSyntax.isFieldValue($0) && !$0.isEmpty }
        guard !usable.isEmpty else { return headers }
        out.append(Header(name, usable.joined(separator: separator)))
        return out
    }
}
