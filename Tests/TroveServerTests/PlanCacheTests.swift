import TroveHTTP
import NIOCore
import NIOHTTP1
import Testing
import TroveCore
import TroveRules
@testable import TroveServer

/// Remembered plans are exactly the plans `plan(for:)` makes, and only for requests whose plan depends on
/// nothing but the method and URL.
@Suite struct PlanCacheTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        admin: {allow_unauthenticated: true}
        origins: {api: {url: "http://origin.internal:8000"}}
        routes:
          - {name: event, match: "GET /events/{id}", cache: {key: "event:{id}:{query}", ttl: 60s, tags: ["event:{id}"]}}
          - {name: mine, match: "GET /mine", cache: {key: "mine:{header.x-user}", ttl: 60s}}
          - {name: rest, match: ANY /**, pass: true}
        """, file: "plans.yaml")

    private func head(_ uri: String) -> HTTPRequestHead {
        head(.GET, uri)
    }

    private func head(_ method: HTTPMethod, _ uri: String) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri)
    }

    private func key(_ plan: RequestPlan) -> String? {
        if case .cache(let target) = plan.decision { target.key } else { nil }
    }

    @Test func aRepeatedRequestGetsTheSamePlan() {
        let cache = PlanCache()
        let loaded = RulesState.Loaded(rules: Self.rules, loadedAt: 0)
        let first = cache.plan(for: head("/events/7?b=2&a=1"), headers: [], loaded: loaded, now: { 0 })
        let second = cache.plan(for: head("/events/7?b=2&a=1"), headers: [Header("Accept", "*/*")], loaded: loaded, now: { 0 })
        #expect(cache.hits == 1)
        #expect(key(second) == key(first))
        #expect(key(second) == Self.rules.plan(for: RequestHead(method: "GET", target: "/events/7?b=2&a=1")).decision.cacheKey)
        // HEAD has a plan of its own.
        _ = cache.plan(for: head(.HEAD, "/events/7?b=2&a=1"), headers: [], loaded: loaded, now: { 0 })
        #expect(cache.hits == 1)
        #expect(cache.count == 2)
    }

    /// A plan made without credentials is never handed to a request carrying an API key (#12, finding 12).
    @Test func credentialHeadersAreNotServedRememberedPlans() {
        let cache = PlanCache()
        let loaded = RulesState.Loaded(rules: Self.rules, loadedAt: 0)
        _ = cache.plan(for: head("/events/7"), headers: [], loaded: loaded, now: { 0 })
        let keyed = cache.plan(for: head("/events/7"), headers: [Header("X-Api-Key", "secret")], loaded: loaded, now: { 0 })
        #expect(cache.hits == 0)
        guard case .bypass(.credentials(let credentials)) = keyed.decision else { Issue.record("\(keyed.decision)"); return }
        #expect(credentials == [Credential(header: "x-api-key")])
    }

    @Test func plansThatDependOnHeadersAreNotRemembered() {
        let cache = PlanCache()
        let loaded = RulesState.Loaded(rules: Self.rules, loadedAt: 0)
        // Credentials change the decision (bypass) for the same URL.
        for _ in 0..<2 { _ = cache.plan(for: head("/events/1"), headers: [Header("Authorization", "Bearer a")], loaded: loaded, now: { 0 }) }
        for _ in 0..<2 { _ = cache.plan(for: head("/events/1"), headers: [Header("cookie", "s=1")], loaded: loaded, now: { 0 }) }
        // A key that reads a header.
        let alice = cache.plan(for: head("/mine"), headers: [Header("X-User", "alice")], loaded: loaded, now: { 0 })
        let bob = cache.plan(for: head("/mine"), headers: [Header("X-User", "bob")], loaded: loaded, now: { 0 })
        #expect(key(alice) != key(bob))
        // Passes and writes are not remembered either.
        for _ in 0..<2 { _ = cache.plan(for: head("/other"), headers: [], loaded: loaded, now: { 0 }) }
        for _ in 0..<2 { _ = cache.plan(for: head(.PUT, "/events/1"), headers: [], loaded: loaded, now: { 0 }) }
        #expect(cache.hits == 0)
        #expect(cache.count == 0)
    }

    @Test func newRulesEmptyIt() {
        let cache = PlanCache()
        _ = cache.plan(for: head("/events/1"), headers: [], loaded: RulesState.Loaded(rules: Self.rules, loadedAt: 0), now: { 0 })
        #expect(cache.count == 1)
        _ = cache.plan(for: head("/events/1"), headers: [], loaded: RulesState.Loaded(rules: Self.rules, loadedAt: 1), now: { 0 })
        #expect(cache.hits == 0, "a reload puts new rules in force: nothing planned under the old ones is reused")
        #expect(cache.count == 1)
    }

    @Test func itIsBounded() {
        let cache = PlanCache()
        let loaded = RulesState.Loaded(rules: Self.rules, loadedAt: 0)
        for id in 0..<PlanCache.capacity { _ = cache.plan(for: head("/events/\(id)"), headers: [], loaded: loaded, now: { 0 }) }
        #expect(cache.count == PlanCache.capacity)
        _ = cache.plan(for: head("/events/new"), headers: [], loaded: loaded, now: { 0 })
        #expect(cache.count == 1)
    }
}

extension RequestPlan.Decision {
    fileprivate var cacheKey: String? {
        if case .cache(let target) = self { target.key } else { nil }
    }
}
