internal import Foundation
public import TroveHTTP
public import TroveRules

/// Whether what Trove would have served (a stored answer) is what the origin answers now, for a route in shadow:
/// the status, the headers the entry keeps, and the body, leaving out what the route says always changes
/// (`ShadowSettings`). Equal `ETag`s count as equal answers, whatever else differs. A JSON body is compared value by
/// value, so that the report can name the parts that differ (`$.results[3].price`) and the route can ignore some.
public enum ShadowComparison {
    /// An answer as compared: status, headers as stored (see `HeaderPolicy.storedHeaders`), body bytes.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [Header]
        public var body: [UInt8]

        public init(status: Int, headers: [Header], body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    public enum Verdict: Sendable, Equatable {
        case same
        /// What differs, at most `maxDifferences`: `status`, `header etag`, `$.count`, `body` (not JSON).
        case differs([String])
    }

    public static let maxDifferences = 8

    /// - Parameter namesParts: parse JSON bodies that differ to name the parts (false: a differing body is `body`,
    ///   and the route's ignored JSON paths cannot apply).
    public static func compare(stored: Answer, origin: Answer, settings: ShadowSettings, namesParts: Bool = true) -> Verdict {
        if let tag = etag(stored.headers), tag == etag(origin.headers) { return .same }
        var differences: [String] = []
        if stored.status != origin.status { differences.append("status") }
        for name in headerNames(stored.headers, origin.headers, settings: settings)
        where values(name, stored.headers) != values(name, origin.headers) {
            differences.append("header \(name)")
        }
        if stored.body != origin.body {
            differences += namesParts ? bodyDifferences(stored.body, origin.body, ignoring: settings.ignoredPaths) : ["body"]
        }
        return differences.isEmpty ? .same : .differs(Array(differences.prefix(maxDifferences)))
    }

    private static func etag(_ headers: [Header]) -> String? {
        headers.first { $0.name.lowercased() == "etag" }?.value
    }

    /// Every header either answer has, lower-cased and sorted, except those never compared or ignored.
    private static func headerNames(_ a: [Header], _ b: [Header], settings: ShadowSettings) -> [String] {
        Set((a + b).map { $0.name.lowercased() })
            .subtracting(ShadowSettings.neverCompared).subtracting(settings.ignoredHeaders).sorted()
    }

    private static func values(_ name: String, _ headers: [Header]) -> [String] {
        headers.filter { $0.name.lowercased() == name }.map(\.value)
    }

    /// The JSON places that differ, ignored ones left out; `body` when either side is not JSON.
    private static func bodyDifferences(_ a: [UInt8], _ b: [UInt8], ignoring ignored: [JSONPath]) -> [String] {
        guard let left = JSONTree.parse(a), let right = JSONTree.parse(b) else { return ["body"] }
        var found: [[JSONPath.Place]] = []
        var place: [JSONPath.Place] = []
        diff(left, right, at: &place, ignoring: ignored, into: &found)
        return found.map(JSONPath.written)
    }

    private static func diff(
        _ a: JSONTree, _ b: JSONTree, at place: inout [JSONPath.Place], ignoring ignored: [JSONPath], into found: inout [[JSONPath.Place]]
    ) {
        guard found.count < maxDifferences, !ignored.contains(where: { $0.covers(place) }) else { return }
        switch (a, b) {
        case (.object(let x), .object(let y)):
            for name in Set(x.keys).union(y.keys).sorted() {
                place.append(.member(name))
                diff(x[name] ?? .missing, y[name] ?? .missing, at: &place, ignoring: ignored, into: &found)
                place.removeLast()
            }
        case (.array(let x), .array(let y)):
            for index in 0..<max(x.count, y.count) {
                place.append(.index(index))
                diff(index < x.count ? x[index] : .missing, index < y.count ? y[index] : .missing, at: &place, ignoring: ignored, into: &found)
                place.removeLast()
            }
        default:
            if a != b { found.append(place) }
        }
    }
}

/// A JSON document as compared: numbers kept as written by the decoder (integers apart from other numbers), arrays
/// and objects whole. `missing` stands for a member or element one side lacks.
enum JSONTree: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])
    case missing

    /// Nil when `bytes` is not JSON (or is nested past the decoder's depth limit).
    static func parse(_ bytes: [UInt8]) -> JSONTree? {
        try? JSONDecoder().decode(JSONTree.self, from: Data(bytes))
    }

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Name.self) {
            var members: [String: JSONTree] = [:]
            for key in object.allKeys { members[key.stringValue] = try object.decode(JSONTree.self, forKey: key) }
            self = .object(members)
            return
        }
        if var list = try? decoder.unkeyedContainer() {
            var items: [JSONTree] = []
            while !list.isAtEnd { items.append(try list.decode(JSONTree.self)) }
            self = .array(items)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let flag = try? single.decode(Bool.self) {
            self = .bool(flag)
        } else if let whole = try? single.decode(Int64.self) {
            self = .integer(whole)
        } else if let number = try? single.decode(Double.self) {
            self = .number(number)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    private struct Name: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}
