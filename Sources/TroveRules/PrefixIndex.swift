/// Values filed under the literal text their template starts with, to find the few that could render the same
/// text as another template without comparing every pair: two templates can render the same text only if one's
/// literal prefix is a prefix of the other's. `trove check` compares keys and tags through it, so a file of
/// 10,000 routes is checked in seconds, not minutes.
struct PrefixIndex<Value> {
    private var children: [[UInt8: Int]] = [[:]]
    private var values: [[Value]] = [[]]

    /// Files `value` under `prefix`.
    mutating func insert(_ prefix: String, _ value: Value) {
        var node = 0
        for byte in prefix.utf8 {
            if let next = children[node][byte] {
                node = next
            } else {
                children.append([:])
                values.append([])
                children[node][byte] = children.count - 1
                node = children.count - 1
            }
        }
        values[node].append(value)
    }

    /// The values filed under a prefix of `prefix` (`prefix` itself included) or under a text that `prefix`
    /// begins: the only ones whose templates can render the same text as one starting with `prefix`.
    func candidates(_ prefix: String) -> [Value] {
        var found: [Value] = values[0]
        var node = 0
        for byte in prefix.utf8 {
            guard let next = children[node][byte] else { return found }
            node = next
            found += values[node]
        }
        // Everything below: longer prefixes that start with this one.
        var stack = Array(children[node].values)
        while let next = stack.popLast() {
            found += values[next]
            stack += children[next].values
        }
        return found
    }
}

extension Template {
    /// The literal text the template starts with (empty when it starts with a placeholder).
    var literalPrefix: String {
        if case .literal(let text) = parts.first { text } else { "" }
    }
}
