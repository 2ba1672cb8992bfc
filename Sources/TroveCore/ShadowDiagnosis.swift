internal import TroveRules

/// Why a route in shadow would have served stale answers, with the evidence and what to change in the rules:
/// - `volatile`: every comparison differed, always in the same parts: those parts change on every request (a
///   timestamp, a request id); ignore them (`cache.shadow.ignore`) rather than blame the rules;
/// - `missingPurge`: a write reached the origin between an entry's store and its stale answer, and did not purge it:
///   add the purge (the write most often in those windows, nearest the route's resource, is named);
/// - `changesBehindTrove`: no write was seen in those windows: the data changes without going through Trove; a
///   shorter TTL (below the quickest change seen) or a webhook from the origin fixes it.
public struct ShadowDiagnosis: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case volatile
        case missingPurge = "missing-purge"
        case changesBehindTrove = "changes-behind-trove"
    }

    public var kind: Kind
    /// What a person reads: the cause, in one sentence.
    public var explanation: String
    /// The change to the rules that should remove it.
    public var suggestion: String
    /// What the explanation rests on: the examples and writes that show it.
    public var evidence: [String]
    /// For `missingPurge`: the write route to change, and the tag (or route) it should purge.
    public var writeRoute: String?
    public var tag: String?
    /// For `changesBehindTrove`: the quickest an entry was seen to change after it was stored, in milliseconds.
    public var quickestChange: Int64?

    enum CodingKeys: String, CodingKey {
        case kind, explanation, suggestion, evidence, tag
        case writeRoute = "write_route", quickestChange = "quickest_change"
    }

    /// Comparisons needed before "every one differed" reads as a volatile part rather than bad luck.
    public static let volatileAfter = 3

    static func diagnose(
        route: Route, counts: ShadowReport.RouteCounts, writes: [ShadowReport.Write], completeSince: Int64, rules: RuleSet
    ) -> ShadowDiagnosis? {
        guard counts.stale > 0 else { return nil }
        let always = counts.parts.filter { $0.value == counts.stale }.map(\.key).sorted()
        if counts.hits == 0, counts.stale >= volatileAfter, !always.isEmpty {
            return ShadowDiagnosis(kind: .volatile,
                explanation: "every one of \(counts.stale) comparisons differed, always in \(always.joined(separator: ", ")): "
                    + "probably a part that changes on every request, not stale data",
                suggestion: "add \(always.map { $0.hasPrefix("header ") ? String($0.dropFirst(7)) : $0 }.joined(separator: ", ")) "
                    + "to route `\(route.name)`'s cache.shadow.ignore",
                evidence: counts.examples.suffix(2).map { "\($0.target): \($0.differences.joined(separator: ", ")) differed" })
        }
        // The writes in each example's window: after its entry was stored, before its stale answer.
        let windows = counts.examples.map { example in (example, writes.filter { $0.at > example.storedAt && $0.at <= example.seenAt }) }
        let explained = windows.filter { !$0.1.isEmpty }
        guard !explained.isEmpty else {
            let quickest = counts.examples.map { $0.seenAt - $0.storedAt }.min() ?? 0
            let incomplete = counts.examples.contains { $0.storedAt < completeSince }
            return ShadowDiagnosis(kind: .changesBehindTrove,
                explanation: "no write went through Trove between an entry's store and its stale answer "
                    + "(\(counts.examples.count) example\(counts.examples.count == 1 ? "" : "s")): the data changes behind Trove's back"
                    + (incomplete ? " (writes older than the last \(ShadowReport.maxWrites) were not kept: some may be missing)" : ""),
                suggestion: "set route `\(route.name)`'s cache.ttl below \(Self.duration(quickest)) (the quickest change seen), "
                    + "or have the origin purge it when the data changes (POST /purge or a webhook)",
                evidence: counts.examples.suffix(3).map { "\($0.target) differed \(Self.duration($0.seenAt - $0.storedAt)) after it was stored" },
                quickestChange: quickest)
        }
        // The write route in the most windows; ties go to the one nearest the route's resource, then the busiest.
        var seen: [String: (examples: Int, writes: [ShadowReport.Write])] = [:]
        for (_, found) in explained {
            for name in Set(found.map(\.route)) { seen[name, default: (0, [])].examples += 1 }
            for write in found { seen[write.route, default: (0, [])].writes.append(write) }
        }
        let readSegments = Self.segments(route.path.description)
        let ranked = seen.sorted { a, b in
            if a.value.examples != b.value.examples { return a.value.examples > b.value.examples }
            let nearA = Self.shared(readSegments, Self.segments(a.value.writes[0].target))
            let nearB = Self.shared(readSegments, Self.segments(b.value.writes[0].target))
            if nearA != nearB { return nearA > nearB }
            return a.value.writes.count > b.value.writes.count
        }
        let (writeName, found) = ranked[0]
        let sample = found.writes[0]
        let (suggestion, tag) = purgeSuggestion(read: route, writeRoute: rules.route(named: writeName), write: sample, rules: rules)
        var evidence = ["\(found.examples) of \(counts.examples.count) stale examples had a `\(writeName)` write after the entry was stored"]
        for (example, writes) in explained.suffix(2) {
            guard let write = writes.first(where: { $0.route == writeName }) else { continue }
            evidence.append("\(example.target) (tags \(example.tags.joined(separator: ", "))) stored, then \(write.method) \(write.target) "
                + "\(Self.duration(write.at - example.storedAt)) later purged \(Self.describe(write.purged)), "
                + "then \(Self.duration(example.seenAt - write.at)) later the entry would have been served stale")
        }
        return ShadowDiagnosis(kind: .missingPurge,
            explanation: "writes through `\(writeName)` changed what route `\(route.name)` answers without purging its entries",
            suggestion: suggestion, evidence: evidence, writeRoute: writeName, tag: tag)
    }

    /// What the write route should purge: a tag of the read route's that the write can render (its placeholders are
    /// path parameters the write's route has too), one no other route carries first; else the read route itself.
    static func purgeSuggestion(read: Route, writeRoute: Route?, write: ShadowReport.Write, rules: RuleSet) -> (String, String?) {
        guard let writeRoute, writeRoute.purgeRule != nil || writeRoute.action.isPass else {
            return ("give `\(write.method) \(write.target)` a route that purges route `\(read.name)`", nil)
        }
        let parameters = Set(writeRoute.path.parameterNames)
        let renderable = (read.cachePolicy?.tags ?? []).filter { tag in
            tag.placeholders.allSatisfy { if case .pathParameter(let name) = $0.source { parameters.contains(name) } else { false } }
        }
        // A tag no other route's entries carry purges only what went stale; a shared one (`events`) would purge more.
        let shared = Set(rules.routes.filter { $0.name != read.name }.flatMap { $0.cachePolicy?.tags.map(\.description) ?? [] })
        let usable = renderable.first { !shared.contains($0.description) } ?? renderable.first
        let change = writeRoute.purgeRule == nil ? "make route `\(writeRoute.name)` a purge route and " : ""
        if let usable {
            return ("\(change)add tag `\(usable)` to route `\(writeRoute.name)`'s purge.tags", usable.description)
        }
        return ("\(change)add `\(read.name)` to route `\(writeRoute.name)`'s purge.routes", nil)
    }

    static func describe(_ purged: PurgeSet) -> String {
        var parts: [String] = []
        if purged.everything { parts.append("everything") }
        if !purged.tags.isEmpty { parts.append("tags " + purged.tags.joined(separator: ", ")) }
        if !purged.routes.isEmpty { parts.append("routes " + purged.routes.joined(separator: ", ")) }
        if !purged.keys.isEmpty { parts.append("keys " + purged.keys.joined(separator: ", ")) }
        return parts.isEmpty ? "nothing" : parts.joined(separator: "; ")
    }

    /// `850ms`, `12.5s`, `3m10s`.
    public static func duration(_ milliseconds: Int64) -> String {
        let ms = max(0, milliseconds)
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(Double(ms / 100) / 10)s" }
        return "\(ms / 60_000)m\(ms % 60_000 / 1000)s"
    }

    private static func segments(_ path: String) -> [Substring] {
        (path.split(separator: "?").first ?? "").split(separator: "/")
    }

    /// How many leading segments two paths share, a parameter matching anything.
    private static func shared(_ a: [Substring], _ b: [Substring]) -> Int {
        zip(a, b).prefix { $0 == $1 || $0.hasPrefix("{") || $1.hasPrefix("{") }.count
    }
}
