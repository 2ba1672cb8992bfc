import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules
import TroveFixtures
import TroveTestSupport

/// Soft purges: what a counter's value says (`Generation`), and transcripts of what a lookup does with an entry a
/// soft purge covered.
@Suite struct SoftPurgeTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000", timeout: 10s}}
        routes:
          - name: event
            match: GET /events/{id}
            cache: {key: "event:{id}", ttl: 60s, stale: 30s, tags: ["events"]}
          - name: strict
            match: GET /strict/{id}
            cache: {key: "strict:{id}", ttl: 60s, tags: ["events"]}
        """, file: "soft.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])

    let clock = ManualClock()

    private func machine(_ target: String) -> ReadThroughStateMachine {
        ReadThroughStateMachine(plan: Self.rules.plan(for: RequestHead(method: "GET", target: target)), requestHeaders: [], clock: clock)
    }

    /// What a miss on `target` stores when its fetch recorded `generations`.
    private func stored(_ target: String, generations: [Int64]) throws -> EntryMeta {
        var sm = machine(target)
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: generations))
        guard case .store(let pending, _) = sm.originResponded(status: 200, headers: [], bodyLength: 2) else {
            throw TestSupportError("not stored")
        }
        return pending.meta
    }

    private func softPurged(_ generations: [Int64], at index: Int, extra: Int64 = 0) -> [Int64] {
        var moved = generations
        moved[index] = Generation.afterSoftPurge(moved[index], mark: Generation.mark(now: clock.nowMilliseconds(), extra: extra))
        return moved
    }

    @Test func aCounterSaysWhetherItsPurgesWereHardOrSoft() {
        let zero: Int64 = 0
        let hard = Generation.afterHardPurge(zero)
        #expect(Generation.change(recorded: [zero], current: [hard]) == .purged)
        let now: Int64 = 1_800_000_000_000
        let mark = Generation.mark(now: now, extra: 0)
        let soft = Generation.afterSoftPurge(hard, mark: mark)
        #expect(Generation.change(recorded: [hard], current: [soft]) == .softPurged(since: now))
        #expect(Generation.change(recorded: [zero], current: [soft]) == .purged, "a hard purge among them wins")
        // Two soft purges in one second still differ, and a later mark never moves back.
        let again = Generation.afterSoftPurge(soft, mark: mark)
        #expect(again == soft + 1)
        #expect(Generation.afterSoftPurge(again, mark: mark - 100) == again + 1)
        // A counter that expired reads 0 again: whatever the entry recorded, it is purged.
        #expect(Generation.change(recorded: [soft], current: [0]) == .purged)
        // The earliest mark among the counters moved is when the entry became stale.
        let later = Generation.afterSoftPurge(zero, mark: Generation.mark(now: now + 10_000, extra: 0))
        #expect(Generation.change(recorded: [hard, zero, 7], current: [soft, later, 7]) == .softPurged(since: now))
        #expect(Generation.change(recorded: [1, 2], current: [1]) == .purged)
    }

    @Test func marksAreClampedAndRoundedUp() {
        #expect(Generation.mark(now: 0, extra: 0) == 1, "before the epoch: the first second")
        #expect(Generation.mark(now: Generation.epoch + 1, extra: 0) == 1)
        #expect(Generation.mark(now: Generation.epoch + 1000, extra: 0) == 1)
        #expect(Generation.mark(now: Generation.epoch + 1001, extra: 0) == 2)
        #expect(Generation.mark(now: Generation.epoch, extra: 30_000) == 30)
        #expect(Generation.mark(now: .max, extra: .max) == (1 << 32) - 1)
        #expect(Generation.mark(now: Generation.epoch, extra: -5) == 1, "a negative window is none")
        // Near the top of the range nothing traps.
        #expect(Generation.afterHardPurge(.max) == .max)
        #expect(Generation.afterSoftPurge(.max, mark: 5) == .max)
    }

    /// A soft-purged entry is served stale while one refresh runs, within its stale window counted from the purge;
    /// the refresh records the counters as they are now, so what it stores is fresh.
    @Test func aSoftPurgedEntryIsServedStaleAndRefreshed() throws {
        let recorded: [Int64] = [0, 0, 0, 0]
        let meta = try stored("/events/1", generations: recorded)
        let now = clock.nowMilliseconds()
        let current = softPurged(recorded, at: 3)
        clock.advance(by: .seconds(10))
        var sm = machine("/events/1")
        _ = sm.start()
        guard case .respondAndRefresh(let plan, let refresh) = sm.lookupCompleted(.found(meta, generations: current)) else {
            Issue.record("a soft-purged entry within its window is served stale and refreshed"); return
        }
        #expect(plan.source == .entry)
        #expect(plan.cacheStatus == CacheStatus(outcome: .stale, forward: .stale, ttl: 0, detail: .softPurged))
        #expect(refresh.generations == current)
        // The refresh stores a fresh entry, which the next lookup serves as a hit.
        let refreshed = try stored("/events/1", generations: refresh.generations)
        var next = machine("/events/1")
        _ = next.start()
        guard case .respond(let hit) = next.lookupCompleted(.found(refreshed, generations: current)) else {
            Issue.record("the refreshed entry is a hit"); return
        }
        #expect(hit.cacheStatus?.outcome == .hit)

        // Past the route's stale window (30 s from the purge) the soft-purged entry is a miss, never served.
        clock.advance(by: .seconds(21))
        #expect(clock.nowMilliseconds() == now + 31_000)
        var late = machine("/events/1")
        _ = late.start()
        #expect(late.lookupCompleted(.found(meta, generations: current)) == .fetch(.init(
            method: "GET", sendsBody: false, forStorage: true, coalesce: true)))
    }

    /// A route without a stale window serves a soft-purged entry only within the window the purge gave, and never
    /// past the entry's own life.
    @Test func thePurgesWindowAddsToTheRoutes() throws {
        let recorded: [Int64] = [0, 0, 0, 0]
        let meta = try stored("/strict/1", generations: recorded)
        let purgedAt = clock.nowMilliseconds()
        let withoutWindow = softPurged(recorded, at: 3)
        let withWindow = softPurged(recorded, at: 3, extra: 20_000)
        clock.advance(by: .seconds(5))
        var none = machine("/strict/1")
        _ = none.start()
        if case .fetch = none.lookupCompleted(.found(meta, generations: withoutWindow)) {} else {
            Issue.record("no stale window anywhere: a soft purge is a miss")
        }
        var given = machine("/strict/1")
        _ = given.start()
        if case .respondAndRefresh = given.lookupCompleted(.found(meta, generations: withWindow)) {} else {
            Issue.record("within the purge's window: served stale")
        }
        #expect(meta.softStaleUntil(since: purgedAt + 20_000) == purgedAt + 20_000)
        #expect(meta.softStaleUntil(since: purgedAt + 3_600_000) == meta.staleUntil, "never past the entry's own life")
    }

    /// Race safety: a fetch that began before a soft purge recorded the old counters, so what it stores is stale
    /// at once (served while another refresh runs), never fresh; a hard purge after a soft one makes it gone.
    @Test func aFetchThatBeganBeforeTheSoftPurgeIsNeverFresh() throws {
        let before: [Int64] = [0, 0, 0, 0]
        let raced = try stored("/events/2", generations: before)
        let after = softPurged(before, at: 1)
        var sm = machine("/events/2")
        _ = sm.start()
        guard case .respondAndRefresh(let plan, _) = sm.lookupCompleted(.found(raced, generations: after)) else {
            Issue.record("stored from a fetch older than the purge: stale"); return
        }
        #expect(plan.cacheStatus?.outcome == .stale)
        var hard = after
        hard[1] = Generation.afterHardPurge(hard[1])
        var gone = machine("/events/2")
        _ = gone.start()
        if case .fetch = gone.lookupCompleted(.found(raced, generations: hard)) {} else { Issue.record("hard after soft: gone") }
    }

    /// The memory store keeps what a soft purge covers (a hard purge drops a purged key's entry), and its counters
    /// move the way `Generation` says.
    @Test func theMemoryStoreKeepsSoftPurgedEntries() {
        let store = InMemoryStore<[UInt8]>(capacity: 1 << 20, clock: clock)
        let address = EntryAddress(key: "event:1", route: "event", tags: ["events"])
        let meta = EntryMeta(status: 200, headers: [], storedAt: clock.nowMilliseconds(), freshUntil: clock.nowMilliseconds() + 60_000,
            staleUntil: clock.nowMilliseconds() + 90_000, errorUntil: clock.nowMilliseconds() + 60_000, route: "event", tags: ["events"],
            generations: [0, 0, 0, 0], bodyLength: 2)
        store.store(StoreWrite(address: address, meta: meta, body: [1, 2], expireAfter: 90_000)) { _ in }
        let mark = Generation.mark(now: clock.nowMilliseconds(), extra: 0)
        var report: PurgeReport?
        store.purge(PurgeRequest(counters: [.tag("events"), .key("event:1")], counterLifetime: 600_000, softMark: mark)) { report = try? $0.get() }
        #expect(report?.keys == [PurgeReport.KeyResult(key: "event:1", found: true)])
        var outcome: LookupOutcome<[UInt8]>?
        store.lookup(address) { outcome = $0 }
        guard case .found(_, _, let generations, _) = outcome else { Issue.record("still stored"); return }
        #expect(Generation.change(recorded: meta.generations, current: generations) == .softPurged(since: clock.nowMilliseconds()))
        // A write's keys stay hard: the entry goes.
        store.purge(PurgeRequest(counters: [.key("event:1")], counterLifetime: 600_000, softMark: mark, softKeys: false)) { _ in }
        store.lookup(address) { outcome = $0 }
        if case .notFound = outcome {} else { Issue.record("a hard-purged key's entry is dropped") }
    }
}
