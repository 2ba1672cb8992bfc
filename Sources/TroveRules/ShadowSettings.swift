/// A route run in shadow (`cache.shadow`, or every cacheable route with `trove serve --shadow`): each request is
/// forwarded and answered with the origin's answer, while Trove looks up, stores and purges as it would, and
/// compares what it would have served with what the origin answered (see `docs/shadow.md`).
public struct ShadowSettings: Sendable, Equatable {
    /// Parts of a JSON answer that change on every request (a timestamp, a request id): not compared.
    public var ignoredPaths: [JSONPath] = []
    /// Response headers not compared, lower-cased (beside those never compared: `Date`, `Age`, `Expires`).
    public var ignoredHeaders: Set<String> = []

    public init(ignoredPaths: [JSONPath] = [], ignoredHeaders: Set<String> = []) {
        self.ignoredPaths = ignoredPaths
        self.ignoredHeaders = ignoredHeaders
    }

    /// Headers that differ between any two answers and say nothing about the data.
    public static let neverCompared: Set<String> = ["date", "age", "expires", "connection", "keep-alive", "transfer-encoding",
                                                    "content-length", "server-timing"]

    /// What `trove check` and `/rules` say about it.
    public var summary: String {
        let ignored = ignoredPaths.map(\.description) + ignoredHeaders.sorted()
        return ignored.isEmpty ? "shadow" : "shadow, ignoring \(ignored.joined(separator: ", "))"
    }
}
