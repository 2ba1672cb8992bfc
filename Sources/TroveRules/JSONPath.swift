/// A path into a JSON document, as a route's `shadow.ignore` names the parts of an answer that change on every
/// request (`$.generated_at`, `$.results[*].updated_at`, `$['request-id']`): a small, safe subset of JSONPath,
/// with no filters, slices or recursive descent, so that matching is a walk along the path and nothing else.
public struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    /// One step of a path.
    public enum Step: Sendable, Equatable {
        /// An object's member.
        case member(String)
        /// An array's element.
        case index(Int)
        /// Any member or element (`*`, `[*]`).
        case any
    }

    /// One step of a concrete place in a document, as a comparison reports it.
    public enum Place: Sendable, Hashable {
        case member(String)
        case index(Int)
    }

    public let steps: [Step]
    /// As written.
    public let description: String

    /// Parses `$` followed by `.name`, `.*`, `['name']`, `["name"]`, `[N]` or `[*]` steps; nil with why when `text`
    /// is not such a path.
    public static func parse(_ text: String) -> Result<JSONPath, PathError> {
        var chars = Substring(text)
        guard chars.first == "$" else { return .failure(PathError("a JSON path starts with $, e.g. $.generated_at")) }
        chars = chars.dropFirst()
        var steps: [Step] = []
        while let first = chars.first {
            guard steps.count < 64 else { return .failure(PathError("more than 64 steps")) }
            if first == "." {
                chars = chars.dropFirst()
                let name = chars.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return .failure(PathError("a '.' must be followed by a member name or *")) }
                chars = chars.dropFirst(name.count)
                steps.append(name == "*" ? .any : .member(String(name)))
            } else if first == "[" {
                guard let close = chars.firstIndex(of: "]") else { return .failure(PathError("a '[' is not closed by ']'")) }
                let inside = chars[chars.index(after: chars.startIndex)..<close]
                chars = chars[chars.index(after: close)...]
                if inside == "*" {
                    steps.append(.any)
                } else if let index = Int(inside), index >= 0 {
                    steps.append(.index(index))
                } else if inside.count >= 2, let quote = inside.first, quote == "'" || quote == "\"", inside.last == quote {
                    steps.append(.member(String(inside.dropFirst().dropLast())))
                } else {
                    return .failure(PathError("'[\(inside)]' is not [N], [*] or ['name']"))
                }
            } else {
                return .failure(PathError("'\(first)' cannot start a step; write .name, [N], [*] or ['name']"))
            }
        }
        return .success(JSONPath(steps: steps, description: text))
    }

    /// Whether this path names `place` (every step matched, none left over).
    public func matches(_ place: [Place]) -> Bool {
        guard place.count == steps.count else { return false }
        for (step, part) in zip(steps, place) {
            switch (step, part) {
            case (.any, _): continue
            case (.member(let name), .member(let other)) where name == other: continue
            case (.index(let index), .index(let other)) where index == other: continue
            default: return false
            }
        }
        return true
    }

    /// Whether `place` lies at or below what this path names: ignoring `$.meta` ignores `$.meta.generated_at` too.
    public func covers(_ place: [Place]) -> Bool {
        place.count >= steps.count && matches(Array(place.prefix(steps.count)))
    }

    /// `place` written as a path (`$.results[3].price`), for reports.
    public static func written(_ place: [Place]) -> String {
        var text = "$"
        for part in place {
            switch part {
            case .member(let name):
                let plain = !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                text += plain ? ".\(name)" : "['\(name)']"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    public struct PathError: Error, Sendable, Equatable {
        public let message: String
        init(_ message: String) { self.message = message }
    }
}
