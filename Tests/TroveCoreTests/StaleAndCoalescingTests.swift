import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules
import TroveFixtures
import TroveTestSupport

/// Transcripts of stale-while-revalidate, stale-if-error, origin limits and coalescing.
@Suite struct StaleAndCoalescingTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000", timeout: 10s}}
        routes:
          - name: event
            match: GET /events/{id}
            cache: {key: "event:{id}", ttl: 60s, stale: 30s, stale_if_error: 1h, tags: ["event:{id}"]}
          - name: strict
            match: GET /strict/{id}
            cache: {key: "strict:{id}", ttl: 60s}
        """, file: "stale.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])

    let clock = ManualClock()
    let generations: [Int64] = [0, 0, 0, 0]

    private func machine(_ target: String) -> ReadThroughStateMachine {
        ReadThroughStateMachine(plan: Self.rules.plan(for: RequestHead(method: "GET", target: target)), requestHeaders: [],
            clock: clock)
    }

    /// An entry stored now by a miss on `target`.
    private func stored(_ target: String) throws -> EntryMeta {
        var sm = machine(target)
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: generations))
        guard case .store(let pending, _) = sm.originResponded(status: 200, headers: [], bodyLength: 2) else {
            throw TestSupportError("not stored")
        }
        return pending.meta
    }

    /// An expired entry with validators is revalidated with a conditional GET; a 304 refreshes its head (headers
    /// from the 304 replace the stored ones), stores it again with its own body, and answers from it. A 200
    /// instead is stored as any miss is.
    @Test func revalidationWith304() throws {
        var first = machine("/strict/1")
        _ = first.start()
        _ = first.lookupCompleted(.notFound(generations: generations))
        let validators = [Header("ETag", "\"v1\""), Header("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"), Header("X-Version", "1")]
        guard case .store(let pending, _) = first.originResponded(status: 200, headers: validators, bodyLength: 5) else {
            Issue.record("not stored"); return
        }
        clock.advance(by: .seconds(61))
        var sm = machine("/strict/1")
        _ = sm.start()
        #expect(sm.lookupCompleted(.found(pending.meta, generations: generations)) == .fetch(.init(
            method: "GET", sendsBody: false, forStorage: true, coalesce: true,
            validators: [Header("If-None-Match", "\"v1\""), Header("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")])))
        guard case .store(let refreshed, let answer) = sm.originResponded(status: 304, headers: [Header("X-Version", "2")], bodyLength: 0) else {
            Issue.record("a 304 refreshes the entry"); return
        }
        #expect(refreshed.reusesStoredBody)
        #expect(refreshed.meta.bodyLength == 5 && refreshed.meta.status == 200)
        #expect(refreshed.meta.headers.map(\.value) == ["\"v1\"", "Sun, 06 Nov 1994 08:49:37 GMT", "2"])
        #expect(refreshed.meta.storedAt == clock.nowMilliseconds() && refreshed.meta.freshUntil == clock.nowMilliseconds() + 60_000)
        #expect(answer.source == .entry)
        #expect(answer.cacheStatus == CacheStatus(outcome: .hit, forward: .stale, forwardStatus: 304, ttl: 60, stored: true))

        // Without validators the fetch is unconditional, and a 304 (which it cannot be) is not stored.
        var plain = machine("/strict/2")
        _ = plain.start()
        var old = pending.meta
        old.headers = []
        #expect(plain.lookupCompleted(.found(old, generations: generations)) == .fetch(.init(method: "GET", sendsBody: false,
            forStorage: true, coalesce: true)))
    }

    /// A 304 that now says no-store, private or Set-Cookie refreshes nothing: the client is answered from the
    /// entry it revalidated, and the merged head is not stored (#12, finding 12).
    @Test func revalidationChecksTheNewHeadersAgain() throws {
        for refusing in [[Header("Cache-Control", "no-store")], [Header("Cache-Control", "private")], [Header("Set-Cookie", "s=1")]] {
            var first = machine("/strict/3")
            _ = first.start()
            _ = first.lookupCompleted(.notFound(generations: generations))
            guard case .store(let pending, _) = first.originResponded(status: 200, headers: [Header("ETag", "\"v1\"")], bodyLength: 5) else {
                Issue.record("not stored"); return
            }
            clock.advance(by: .seconds(61))
            var sm = machine("/strict/3")
            _ = sm.start()
            _ = sm.lookupCompleted(.found(pending.meta, generations: generations))
            guard case .respond(let answer) = sm.originResponded(status: 304, headers: refusing, bodyLength: 0) else {
                Issue.record("\(refusing): a refused 304 is not stored"); return
            }
            #expect(answer.source == .entry)
            #expect(answer.cacheStatus?.stored == false)
            #expect(answer.cacheStatus?.detail != nil)
        }
    }

    /// Windows are recorded in the entry, and the store keeps it past the longest of them.
    @Test func windowsAreStored() throws {
        let meta = try stored("/events/1")
        #expect(meta.staleUntil - meta.freshUntil == 30_000)
        #expect(meta.errorUntil - meta.freshUntil == 3_600_000)
        var sm = machine("/events/1")
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: generations))
        guard case .store(let pending, _) = sm.originResponded(status: 200, headers: [], bodyLength: 2) else { Issue.record("expected store"); return }
        #expect(pending.expireAfter == 60_000 + 3_600_000 + 5000)
    }

    /// Within the stale window: answered at once as STALE, and one refresh is asked for.
    @Test func staleWhileRevalidate() throws {
        let meta = try stored("/events/1")
        clock.advance(by: .seconds(70))
        var sm = machine("/events/1")
        _ = sm.start()
        #expect(sm.lookupCompleted(.found(meta, generations: generations)) == .respondAndRefresh(
            .init(source: .entry, cacheStatus: CacheStatus(outcome: .stale, forward: .stale, ttl: -10), age: 70, omitBody: false),
            .init(address: EntryAddress(key: "event:1", route: "event", tags: ["event:1"]), generations: generations, entry: meta)))

        // The refresh runs its own machine: fetch, then store with the counters read before it began.
        let refresh = ReadThroughStateMachine.Refresh(address: EntryAddress(key: "event:1", route: "event", tags: ["event:1"]),
            generations: [0, 0, 0, 7])
        guard let (started, first) = ReadThroughStateMachine.refreshing(
            plan: Self.rules.plan(for: RequestHead(method: "GET", target: "/events/1")), refresh: refresh, requestHeaders: [],
            clock: clock)
        else { Issue.record("a cacheable plan can be refreshed"); return }
        var refresher = started
        #expect(first == .fetch(.init(method: "GET", sendsBody: false, forStorage: true)))
        guard case .store(let pending, _) = refresher.originResponded(status: 200, headers: [], bodyLength: 3) else {
            Issue.record("the refresh stores"); return
        }
        #expect(pending.meta.generations == [0, 0, 0, 7])
        #expect(pending.meta.storedAt == clock.nowMilliseconds())
    }

    /// Past the stale window but within the error window: the origin's failure, 5xx, 429 or limit is answered
    /// with the stale entry.
    @Test func staleIfError() throws {
        let meta = try stored("/events/1")
        clock.advance(by: .seconds(120))
        func fetching() -> ReadThroughStateMachine {
            var sm = machine("/events/1")
            _ = sm.start()
            _ = sm.lookupCompleted(.found(meta, generations: generations))
            return sm
        }
        var down = fetching()
        #expect(down.originFailed(OriginError(kind: .unreachable, origin: "api", reason: "refused")) == .respond(.init(
            source: .entry, cacheStatus: CacheStatus(outcome: .stale, forward: .stale, ttl: -60, detail: .originUnreachable),
            age: 120, omitBody: false)))
        var slow = fetching()
        guard case .respond(let timeout) = slow.originFailed(OriginError(kind: .timeout, origin: "api", reason: "10s")) else { return }
        #expect(timeout.cacheStatus?.detail == .originTimeout)
        var failing = fetching()
        #expect(failing.originResponded(status: 503, headers: [], bodyLength: 5) == .respond(.init(
            source: .entry, cacheStatus: CacheStatus(outcome: .stale, forward: .stale, forwardStatus: 503, ttl: -60, detail: .originError),
            age: 120, omitBody: false)))
        var limited = fetching()
        guard case .respond(let busy) = limited.originResponded(status: 429, headers: [], bodyLength: 5) else { return }
        #expect(busy.source == .entry)
        var gated = fetching()
        guard case .respond(let refused) = gated.originBusy(retryAfter: 3, reason: "at its limit") else { return }
        #expect(refused.cacheStatus?.detail == .originBusy)
        // A 404 is an answer, not an error: it is passed on.
        var missing = fetching()
        guard case .respond(let notFound) = missing.originResponded(status: 404, headers: [], bodyLength: 5) else { return }
        #expect(notFound.source == .origin)
    }

    /// Past the error window, the failure is the answer: 502, 504, or 503 with Retry-After.
    @Test func afterTheErrorWindow() throws {
        let meta = try stored("/events/1")
        clock.advance(by: .seconds(60 + 3600 + 1))
        var sm = machine("/events/1")
        _ = sm.start()
        _ = sm.lookupCompleted(.found(meta, generations: generations))
        guard case .respond(let plan) = sm.originFailed(OriginError(kind: .unreachable, origin: "api", reason: "refused")) else { return }
        #expect(plan.source == .trove(status: 502, message: "origin 'api' is unreachable: refused"))
        var strict = machine("/strict/1")
        _ = strict.start()
        _ = strict.lookupCompleted(.notFound(generations: [0, 0, 0]))
        #expect(strict.originBusy(retryAfter: 4, reason: "origin 'api' is at its limit") == .respond(.init(
            source: .trove(status: 503, message: "origin 'api' is at its limit"), cacheStatus: nil, age: nil, omitBody: false,
            retryAfter: 4)))
    }

    /// A purged entry is never served, not even when the origin fails.
    @Test func purgedEntriesAreNotServedStale() throws {
        let meta = try stored("/events/1")
        clock.advance(by: .seconds(120))
        var sm = machine("/events/1")
        _ = sm.start()
        _ = sm.lookupCompleted(.found(meta, generations: [0, 0, 0, 1]))
        guard case .respond(let plan) = sm.originFailed(OriginError(kind: .unreachable, origin: "api", reason: "refused")) else { return }
        #expect(plan.source == .trove(status: 502, message: "origin 'api' is unreachable: refused"))
    }

    /// A request that waited for another's fetch answers with its entry (collapsed), fetches alone when it was
    /// released, or reports the origin's failure.
    @Test func coalesced() throws {
        let meta = try stored("/events/2")
        var waiter = machine("/events/2")
        _ = waiter.start()
        _ = waiter.lookupCompleted(.notFound(generations: generations))
        #expect(waiter.coalesced(.entry(meta)) == .respond(.init(
            source: .entry, cacheStatus: CacheStatus(outcome: .hit, hit: true, ttl: 60, collapsed: true), age: 0, omitBody: false)))
        var released = machine("/events/2")
        _ = released.start()
        _ = released.lookupCompleted(.notFound(generations: generations))
        #expect(released.coalesced(.released) == .fetch(.init(method: "GET", sendsBody: false, forStorage: true, coalesce: false)))
        guard case .store = released.originResponded(status: 200, headers: [], bodyLength: 2) else {
            Issue.record("a released waiter still stores what it fetches"); return
        }
        var failed = machine("/events/2")
        _ = failed.start()
        _ = failed.lookupCompleted(.notFound(generations: generations))
        guard case .respond(let plan) = failed.coalesced(.failed(OriginError(kind: .timeout, origin: "api", reason: "10s"))) else { return }
        #expect(plan.source == .trove(status: 504, message: "origin 'api' did not answer in time: 10s"))
    }

    /// Stale and error windows are part of how long purge counters must live.
    @Test func counterLifetimeCoversTheErrorWindow() {
        #expect(Self.rules.counterLifetime == 2 * (60_000 + 3_600_000 + 10_000 + 6000))
    }
}
