/// The HTTP methods a route answers. `GET` always brings `HEAD` along, because a HEAD is answered from the
/// GET entry; `ANY` matches every method, including ones Trove has no name for.
public struct MethodSet: Sendable, Equatable, CustomStringConvertible {
    public static let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    public static let safe: Set<String> = ["GET", "HEAD"]
    public static let unsafe: Set<String> = ["POST", "PUT", "PATCH", "DELETE"]

    /// True when a request with this method may change what the target holds, so a cache must invalidate it
    /// (RFC 9111 §4.4): every method not defined as safe (RFC 9110 §9.2.1), including ones Trove has no name for
    /// (M-SEARCH, PROPPATCH, ...).
    public static func invalidates(_ method: String) -> Bool {
        // A switch, not a collection: this runs on every request, and GET matches at the first comparison.
        switch method {
        case "GET", "HEAD", "OPTIONS", "TRACE": false
        default: true
        }
    }

    /// The methods as written (upper-case), for display.
    public let written: [String]
    public let isAny: Bool
    private let methods: Set<String>

    public init(written: [String]) {
        self.written = written
        self.isAny = written.contains("ANY")
        var methods = Set(written)
        if methods.contains("GET") { methods.insert("HEAD") }
        self.methods = methods
    }

    public func contains(_ method: String) -> Bool {
        isAny || methods.contains(method)
    }

    public func isSubset(of other: MethodSet) -> Bool {
        other.isAny || (!isAny && methods.isSubset(of: other.methods))
    }

    /// The methods as the rules file reads them: `GET`, `PUT,PATCH`, `ANY`.
    public var description: String { written.joined(separator: ",") }

    /// True when every method in the set is GET or HEAD.
    public var isAllSafe: Bool { !isAny && methods.isSubset(of: Self.safe) }
    /// True when every method in the set is POST, PUT, PATCH or DELETE.
    public var isAllUnsafe: Bool { !isAny && methods.isSubset(of: Self.unsafe) }
}
