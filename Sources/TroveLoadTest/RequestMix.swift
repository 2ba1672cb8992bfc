internal import Foundation

/// Turns a scenario's request templates into a deterministic sequence of concrete requests: the same seed
/// gives the same requests in the same order, so the runs before and after Trove see the same load.
public struct RequestMix: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var headers: [(String, String)]
        public var body: String?
        /// Index of the template it came from, for per-kind counts.
        public var template: Int
    }

    private let templates: [Scenario.RequestTemplate]
    private let cumulativeWeights: [Double]
    private let users: Int
    private var random: SplitMix64
    /// Cumulative weights of each Zipf distribution, computed once.
    private var zipfTables: [String: [Double]] = [:]

    public init(scenario: Scenario, seed: UInt64 = 42) {
        templates = scenario.requests
        var total = 0.0
        cumulativeWeights = scenario.requests.map { total += $0.weight; return total }
        users = max(1, scenario.users)
        random = SplitMix64(seed: seed)
        for template in templates {
            for (_, distribution) in template.values {
                if case .zipf(let range, let exponent) = distribution {
                    let key = "\(range)/\(exponent)"
                    if zipfTables[key] == nil {
                        var sum = 0.0
                        zipfTables[key] = range.map { value in
                            sum += 1 / pow(Double(value - range.lowerBound + 1), exponent)
                            return sum
                        }
                    }
                }
            }
        }
    }

    public mutating func next() -> Request {
        let pick = random.nextDouble() * (cumulativeWeights.last ?? 1)
        let index = cumulativeWeights.firstIndex { pick < $0 } ?? templates.count - 1
        let template = templates[index]
        var path = template.path
        for (name, distribution) in template.values {
            let text = value(distribution)
            path = path.replacingOccurrences(of: "{\(name)}", with: text.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? text)
        }
        var headers = template.headers
        if template.user {
            headers.append(("Authorization", "Bearer loadtest-user-\(Int(random.next() % UInt64(users)) + 1)"))
        }
        if template.body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            headers.append(("Content-Type", "application/json"))
        }
        return Request(method: template.method, path: path, headers: headers, body: template.body, template: index)
    }

    /// RFC 3986's unreserved characters: a value such as `Palm Jumeirah` or `a&b` stays one value.
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private mutating func value(_ distribution: Distribution) -> String {
        switch distribution {
        case .constant(let value):
            return value
        case .list(let values):
            return values[Int(random.next() % UInt64(values.count))]
        case .uniform(let range):
            return String(range.lowerBound + Int(random.next() % UInt64(range.count)))
        case .zipf(let range, let exponent):
            let table = zipfTables["\(range)/\(exponent)"]!
            let pick = random.nextDouble() * table.last!
            var low = 0
            var high = table.count - 1
            while low < high {
                let middle = (low + high) / 2
                if table[middle] < pick { low = middle + 1 } else { high = middle }
            }
            return String(range.lowerBound + low)
        }
    }
}

/// A small, fast, seedable random number generator (SplitMix64), so runs are repeatable.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func nextDouble() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}
