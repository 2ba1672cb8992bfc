/// Earlier routes' path patterns in a tree of their segments, to find the few that could cover a later route's
/// pattern without comparing every pair (`trove check`'s shadowing check was quadratic: 73 s for 10,000 routes).
///
/// A pattern can only be covered by one whose literal segments equal its own at the same places, whose
/// parameters stand where it has a literal or a parameter, or which ends in a rest segment before it; the tree
/// follows exactly those branches, and `PathPattern.covers` decides among the candidates.
struct PathIndex {
    private struct Node {
        var literals: [String: Int] = [:]
        /// Where an earlier pattern has a parameter or `*` (one segment, whatever prefix or suffix it requires).
        var anySegment: Int?
        /// Patterns that end with a rest segment here: they cover everything below.
        var rest: [Int] = []
        /// Patterns that end here.
        var ends: [Int] = []
    }

    private var nodes = [Node()]

    /// Files the pattern of the route at `index`.
    mutating func insert(_ pattern: PathPattern, index: Int) {
        var node = 0
        for segment in pattern.segments {
            switch segment {
            case .rest:
                nodes[node].rest.append(index)
                return
            case .literal(let text):
                node = child(of: node, literal: text)
            case .parameter, .anySegment:
                node = child(of: node, literal: nil)
            }
        }
        nodes[node].ends.append(index)
    }

    /// The routes filed so far whose patterns might cover `pattern`.
    func candidates(covering pattern: PathPattern) -> [Int] {
        var found: [Int] = []
        var current = [0]
        for segment in pattern.segments {
            for node in current { found += nodes[node].rest }
            var next: [Int] = []
            switch segment {
            case .rest:
                // Only a rest segment covers a rest segment: those were just collected.
                return found
            case .literal(let text):
                for node in current {
                    if let literal = nodes[node].literals[text] { next.append(literal) }
                    if let any = nodes[node].anySegment { next.append(any) }
                }
            case .parameter, .anySegment:
                for node in current {
                    if let any = nodes[node].anySegment { next.append(any) }
                }
            }
            current = next
            if current.isEmpty { return found }
        }
        for node in current { found += nodes[node].rest + nodes[node].ends }
        return found
    }

    private mutating func child(of node: Int, literal: String?) -> Int {
        if let literal {
            if let existing = nodes[node].literals[literal] { return existing }
            nodes.append(Node())
            nodes[node].literals[literal] = nodes.count - 1
        } else {
            if let existing = nodes[node].anySegment { return existing }
            nodes.append(Node())
            nodes[node].anySegment = nodes.count - 1
        }
        return nodes.count - 1
    }
}
