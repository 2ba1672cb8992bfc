import Testing
@testable import TroveRules

/// The indexes behind `trove check`'s route-against-route checks find every candidate the pairwise comparison
/// found (#12, finding 12: those checks were quadratic, over 5 minutes for 15,000 routes in a debug build; 2 s
/// now). Compared with the pairwise answer over random patterns.
@Suite struct IndexTests {
    static let segments = ["api", "v1", "events", "{a}", "{b}.json", "v{c}", "*", "x"]

    static func randomPattern(_ random: inout SystemRandomNumberGenerator) -> PathPattern {
        var parts: [String] = []
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            let segment = segments.randomElement(using: &random)!
            if segment.contains("{"), parts.contains(segment) { continue }  // a parameter appears once
            parts.append(segment)
        }
        if Bool.random(using: &random) && Int.random(in: 0..<4, using: &random) == 0 { parts.append(Bool.random(using: &random) ? "**" : "{rest...}") }
        return try! PathPattern(parsing: "/" + parts.joined(separator: "/"))
    }

    @Test func pathIndexFindsEveryCoveringPattern() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let patterns = (0..<60).map { _ in Self.randomPattern(&random) }
            var index = PathIndex()
            for (position, pattern) in patterns.enumerated() {
                let expected = patterns[..<position].indices.filter { patterns[$0].covers(pattern) }
                let found = Set(index.candidates(covering: pattern)).filter { patterns[$0].covers(pattern) }
                #expect(Set(expected) == found, "\(pattern) among \(patterns[..<position])")
                index.insert(pattern, index: position)
            }
        }
    }

    @Test func prefixIndexFindsEveryTemplateThatCanRenderTheSameText() {
        let texts = ["events:{id}", "events:list:{query}", "event{id}", "{id}", "e:{id}:x", "events:", "ev:{x}:ents", "a:{id}", "events:1"]
        let templates = texts.map { try! Template(parsing: $0, pathParameters: ["id", "x"]) }
        var index = PrefixIndex<Int>()
        for (position, template) in templates.enumerated() { index.insert(template.literalPrefix, position) }
        for template in templates {
            let expected = Set(templates.indices.filter { template.canRenderSameText(as: templates[$0]) })
            let found = Set(index.candidates(template.literalPrefix).filter { template.canRenderSameText(as: templates[$0]) })
            #expect(expected == found, "\(template)")
        }
    }
}
