import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules
import TroveTestSupport

/// Transcripts of the read-through decision: each event fed to the machine, and the action it answers with.
@Suite struct ReadThroughStateMachineTests {
    static let rules = try! RulesLoader.parse("""
        version: 1
        origins: {api: {url: "http://127.0.0.1:8000", timeout: 10s}}
        routes:
          - name: event
            match: GET /events/{id}
            cache: {key: "event:{id}", ttl: 60s, statuses: {200: 60s, 404: 5s}, tags: [events, "event:{id}"], max_body: 1KB}
          - name: event-change
            match: PUT,DELETE /events/{id}
            purge: {tags: ["event:{id}"]}
          - name: other
            match: ANY /**
            pass: true
        """, file: "sm.yaml", environment: ["TROVE_ADMIN_TOKEN": "t"])

    let clock = ManualClock()
    let address = EntryAddress(key: "event:42", route: "event", tags: ["events", "event:42"])

    private func machine(_ method: String, _ target: String, _ headers: [Header] = []) -> ReadThroughStateMachine {
        let plan = Self.rules.plan(for: RequestHead(method: method, target: target, headers: headers))
        return ReadThroughStateMachine(plan: plan, requestHeaders: headers, clock: clock)
    }

    /// A miss's fetch: GET, for storage, shared with concurrent misses of the key.
    private let storageFetch = ReadThroughStateMachine.Action.fetch(.init(method: "GET", sendsBody: false, forStorage: true, coalesce: true))
    private let json = [Header("Content-Type", "application/json")]

    /// Stores what a miss fetched, and returns the entry head the store got.
    private func miss(generations: [Int64] = [0, 0, 0, 0, 0]) -> EntryMeta? {
        var sm = machine("GET", "/events/42")
        #expect(sm.start() == .lookup(address))
        #expect(sm.lookupCompleted(.notFound(generations: generations)) == storageFetch)
        guard case .store(let pending, let then) = sm.originResponded(status: 200, headers: json, bodyLength: 7) else {
            Issue.record("a 200 must be stored")
            return nil
        }
        #expect(pending.address == address)
        #expect(pending.meta.generations == generations)
        #expect(pending.meta.freshUntil == clock.nowMilliseconds() + 60_000)
        #expect(then.cacheStatus == CacheStatus(outcome: .miss, forward: .uriMiss, forwardStatus: 200, stored: true))
        #expect(sm.storeCompleted(.success(())) == .respond(then))
        return pending.meta
    }

    /// A miss whose body streams: answered at the head (said stored only when its declared length fits), stored
    /// once whole, and the outcome recorded then; one that outgrows `max_body` (1 KB here), or broke off, is not.
    @Test func aStreamedMissIsAnsweredAtItsHeadAndStoredWhenWhole() throws {
        func started(declared: Int?) -> (ReadThroughStateMachine, ReadThroughStateMachine.PendingStore, ReadThroughStateMachine.ResponsePlan)? {
            var sm = machine("GET", "/events/42")
            _ = sm.start()
            #expect(sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0])) == storageFetch)
            guard case .respondWhileStoring(let pending, let then) = sm.originStarted(status: 200, headers: json, declaredLength: declared) else {
                Issue.record("a storable head is answered while it is stored")
                return nil
            }
            return (sm, pending, then)
        }
        var (announced, pending, then) = try #require(started(declared: 7))
        #expect(then.source == .origin)
        #expect(then.cacheStatus == CacheStatus(outcome: .miss, forward: .uriMiss, forwardStatus: 200, stored: true))
        guard case .store(let whole, let stored) = announced.bodyReceived(length: 7, kept: true) else {
            Issue.record("a whole body within max_body is stored"); return
        }
        #expect(whole.meta.bodyLength == 7)
        #expect(whole.address == pending.address)
        #expect(announced.storeCompleted(.success(())) == .finished(stored))

        var unannounced: ReadThroughStateMachine
        (unannounced, _, then) = try #require(started(declared: nil))
        #expect(then.cacheStatus?.stored == false, "not said before it is known")
        var tooLarge = then
        tooLarge.cacheStatus?.detail = .notStored(.tooLarge)
        #expect(unannounced.bodyReceived(length: 2048, kept: true) == .finished(tooLarge))

        var overBudget: ReadThroughStateMachine
        (overBudget, _, then) = try #require(started(declared: nil))
        #expect(overBudget.bodyReceived(length: 10, kept: false) == .finished(tooLarge))

        var broken: ReadThroughStateMachine
        (broken, _, then) = try #require(started(declared: 7))
        var notStored = then
        notStored.cacheStatus?.stored = false
        #expect(broken.bodyFailed(OriginError(kind: .failed, origin: "api", reason: "reset")) == .finished(notStored))

        var declaredTooLarge = machine("GET", "/events/42")
        _ = declaredTooLarge.start()
        _ = declaredTooLarge.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        guard case .respond(let passed) = declaredTooLarge.originStarted(status: 200, headers: json, declaredLength: 4096) else {
            Issue.record("a head declaring more than max_body is passed on at once"); return
        }
        #expect(passed.cacheStatus?.detail == .notStored(.tooLarge))
    }

    /// miss → fetch → store → MISS; a lookup within the TTL is a HIT with its age; after the TTL it is fetched again.
    @Test func missThenHitThenExpiry() throws {
        let meta = try #require(miss())
        #expect(meta.headers == json)
        #expect(meta.tags == ["events", "event:42"])

        clock.advance(by: .seconds(10))
        var hit = machine("GET", "/events/42")
        #expect(hit.start() == .lookup(address))
        #expect(hit.lookupCompleted(.found(meta, generations: [0, 0, 0, 0, 0])) == .respond(.init(
            source: .entry, cacheStatus: CacheStatus(outcome: .hit, hit: true, ttl: 50), age: 10, omitBody: false)))

        clock.advance(by: .seconds(51))
        var expired = machine("GET", "/events/42")
        _ = expired.start()
        #expect(expired.lookupCompleted(.found(meta, generations: [0, 0, 0, 0, 0])) == storageFetch)
        guard case .store(_, let then) = expired.originResponded(status: 200, headers: json, bodyLength: 7) else {
            Issue.record("refetched answers are stored again"); return
        }
        #expect(then.cacheStatus?.forward == .stale)
    }

    /// HEAD is answered from the GET entry, without a body; a HEAD miss fetches with GET so it can be stored.
    @Test func headUsesTheGetEntry() throws {
        let meta = try #require(miss())
        var head = machine("HEAD", "/events/42")
        #expect(head.start() == .lookup(address))
        guard case .respond(let plan) = head.lookupCompleted(.found(meta, generations: [0, 0, 0, 0, 0])) else {
            Issue.record("expected a hit"); return
        }
        #expect(plan.source == .entry)
        #expect(plan.omitBody)
        var headMiss = machine("HEAD", "/events/42")
        _ = headMiss.start()
        #expect(headMiss.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0])) == storageFetch)
    }

    /// The race: a purge lands while the fetch runs. The entry records the counters read *before* the fetch, so
    /// the next lookup sees them differ and refuses it.
    @Test func purgeDuringFetchInvalidatesWhatTheFetchStores() throws {
        let meta = try #require(miss(generations: [0, 0, 0, 0, 0]))
        // The purge of tag event:42 happened while the origin was answering: its counter is now 1.
        var next = machine("GET", "/events/42")
        _ = next.start()
        #expect(next.lookupCompleted(.found(meta, generations: [0, 0, 0, 0, 1])) == storageFetch)
        guard case .store(let pending, let then) = next.originResponded(status: 200, headers: json, bodyLength: 7) else {
            Issue.record("expected a store"); return
        }
        #expect(then.cacheStatus?.forward == .miss)
        #expect(pending.meta.generations == [0, 0, 0, 0, 1])
    }

    /// An entry stored for another Vary value is a miss for this request.
    @Test func varyMismatch() {
        var first = machine("GET", "/events/42", [Header("Accept", "application/json")])
        _ = first.start()
        _ = first.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        guard case .store(let pending, _) = first.originResponded(status: 200, headers: json + [Header("Vary", "Accept")], bodyLength: 7) else {
            Issue.record("expected a store"); return
        }
        var html = machine("GET", "/events/42", [Header("Accept", "text/html")])
        _ = html.start()
        #expect(html.lookupCompleted(.found(pending.meta, generations: [0, 0, 0, 0, 0])) == storageFetch)
        var same = machine("GET", "/events/42", [Header("Accept", "application/json")])
        _ = same.start()
        guard case .respond(let plan) = same.lookupCompleted(.found(pending.meta, generations: [0, 0, 0, 0, 0])) else {
            Issue.record("the same Accept is a hit"); return
        }
        #expect(plan.cacheStatus?.hit == true)
    }

    /// A store that cannot answer sends the request to the origin and says so; nothing is stored.
    @Test func storeUnavailable() {
        var sm = machine("GET", "/events/42")
        _ = sm.start()
        #expect(sm.lookupCompleted(.unavailable) == storageFetch)
        #expect(sm.originResponded(status: 200, headers: json, bodyLength: 7) == .respond(.init(
            source: .origin, cacheStatus: CacheStatus(outcome: .miss, forward: .uriMiss, forwardStatus: 200, detail: .storeUnavailable),
            age: nil, omitBody: false)))
        // A store write that fails also says so.
        var failing = machine("GET", "/events/42")
        _ = failing.start()
        _ = failing.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        _ = failing.originResponded(status: 200, headers: json, bodyLength: 7)
        guard case .respond(let plan) = failing.storeCompleted(.failure(.timeout("slow"))) else { Issue.record("expected respond"); return }
        #expect(plan.cacheStatus == CacheStatus(outcome: .miss, forward: .uriMiss, forwardStatus: 200, detail: .storeUnavailable))
    }

    /// Answers that must not be stored are passed on with the reason.
    @Test(arguments: [
        (500, [] as [Header], 7, "STATUS"),
        (200, [Header("Set-Cookie", "s=1")], 7, "SET-COOKIE"),
        (200, [Header("Cache-Control", "private")], 7, "PRIVATE"),
        (200, [Header("Cache-Control", "no-store")], 7, "NO-STORE"),
        (200, [], 2048, "BODY-TOO-LARGE"),
    ])
    func refusals(status: Int, headers: Array<Header>, length: Int, detail: String) {
        var sm = machine("GET", "/events/42")
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        #expect(sm.originResponded(status: status, headers: headers, bodyLength: length) == .respond(.init(
            source: .origin, cacheStatus: CacheStatus(outcome: .miss, forward: .uriMiss, forwardStatus: status, detail: .notStored(HeaderPolicy.NotStored(rawValue: detail)!)),
            age: nil, omitBody: false)))
    }

    /// A 404 is stored for its own, shorter TTL.
    @Test func perStatusTTL() {
        var sm = machine("GET", "/events/404")
        _ = sm.start()
        _ = sm.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        guard case .store(let pending, _) = sm.originResponded(status: 404, headers: json, bodyLength: 7) else {
            Issue.record("a 404 is stored"); return
        }
        #expect(pending.meta.freshUntil - pending.meta.storedAt == 5000)
    }

    /// A request with credentials the key does not hold is forwarded with its body and reported as BYPASS.
    @Test func bypass() {
        var sm = machine("GET", "/events/42", [Header("Authorization", "Bearer a")])
        #expect(sm.start() == .fetch(.init(method: "GET", sendsBody: true, forStorage: false)))
        #expect(sm.originResponded(status: 200, headers: json, bodyLength: 7) == .respond(.init(
            source: .origin, cacheStatus: CacheStatus(outcome: .bypass, forward: .bypass, forwardStatus: 200, detail: .credentials(["AUTHORIZATION"])),
            age: nil, omitBody: false)))
    }

    /// A write's answer that names a stored resource in `Location` or `Content-Location` on the same host
    /// purges it too (RFC 9111 §4.4), also through a pass route; other hosts, and failed writes, purge nothing.
    @Test func locationOfAWriteIsPurged() {
        func purges(_ method: String, _ target: String, status: Int = 201, _ headers: [Header]) -> PurgeSet? {
            let request = [Header("Host", "api.example.com")]
            let plan = Self.rules.plan(for: RequestHead(method: method, target: target, headers: request))
            var sm = ReadThroughStateMachine(plan: plan, requestHeaders: request, clock: clock,
                invalidationKey: { Self.rules.invalidationKey(for: $0, headers: request) })
            _ = sm.start()
            if case .purge(let purge, _) = sm.originResponded(status: status, headers: headers, bodyLength: 0) { return purge }
            return nil
        }
        // POST /events goes through the pass route `other`, which names nothing to purge.
        #expect(purges("POST", "/events", [Header("Location", "/events/7")]) == PurgeSet(keys: ["event:7"]))
        #expect(purges("POST", "/events", [Header("Content-Location", "http://API.example.com/events/8?x=1")]) == PurgeSet(keys: ["event:8"]))
        #expect(purges("POST", "/events", [Header("Location", "https://elsewhere.example.com/events/7")]) == nil)
        #expect(purges("POST", "/events", [Header("Location", "//elsewhere.example.com/events/7")]) == nil)
        #expect(purges("POST", "/events", [Header("Location", "/not-cached")]) == nil)
        #expect(purges("POST", "/events", status: 500, [Header("Location", "/events/7")]) == nil)
        // A write route adds them to what it names (and to its own target's key).
        #expect(purges("PUT", "/events/42", status: 200, [Header("Content-Location", "/events/43")])
            == PurgeSet(tags: ["event:42"], keys: ["event:42", "event:43"]))
    }

    /// A successful write purges before answering; a failed one purges nothing; a purge the store could not
    /// make is reported as queued.
    @Test func writes() {
        var ok = machine("PUT", "/events/42")
        #expect(ok.start() == .fetch(.init(method: "PUT", sendsBody: true, forStorage: false)))
        let response = ReadThroughStateMachine.ResponsePlan(
            source: .origin, cacheStatus: CacheStatus(outcome: .pass, forward: .method, forwardStatus: 204), age: nil, omitBody: false)
        #expect(ok.originResponded(status: 204, headers: [], bodyLength: 0) == .purge(
            PurgeSet(tags: ["event:42"], keys: ["event:42"]), then: response))
        #expect(ok.purgeCompleted(.applied(PurgeReport(tags: ["event:42"]))) == .respond(response))

        var failed = machine("DELETE", "/events/42")
        _ = failed.start()
        guard case .respond(let plan) = failed.originResponded(status: 500, headers: [], bodyLength: 0) else {
            Issue.record("a failed write purges nothing"); return
        }
        #expect(plan.cacheStatus?.forwardStatus == 500)

        var queued = machine("PUT", "/events/42")
        _ = queued.start()
        _ = queued.originResponded(status: 200, headers: [], bodyLength: 0)
        guard case .respond(let queuedPlan) = queued.purgeCompleted(.queued(.unavailable("down"))) else { Issue.record("expected respond"); return }
        #expect(queuedPlan.cacheStatus?.detail == .purgeQueued)
    }

    /// Pass routes forward everything; an origin failure becomes 502 or 504 with a reason.
    @Test func passAndOriginFailures() {
        var pass = machine("POST", "/anything", [])
        #expect(pass.start() == .fetch(.init(method: "POST", sendsBody: true, forStorage: false)))
        #expect(pass.originFailed(OriginError(kind: .unreachable, origin: "api", reason: "Connection refused")) == .respond(.init(
            source: .trove(status: 502, message: "origin 'api' is unreachable: Connection refused"), cacheStatus: nil, age: nil, omitBody: false)))
        var slow = machine("GET", "/events/42")
        _ = slow.start()
        _ = slow.lookupCompleted(.notFound(generations: [0, 0, 0, 0, 0]))
        guard case .respond(let plan) = slow.originFailed(OriginError(kind: .timeout, origin: "api", reason: "10s elapsed")) else {
            Issue.record("expected respond"); return
        }
        #expect(plan.source == .trove(status: 504, message: "origin 'api' did not answer in time: 10s elapsed"))
    }

    /// A malformed request is answered by Trove itself.
    @Test func rejection() {
        var sm = machine("GET", "events")
        #expect(sm.start() == .respond(.init(
            source: .trove(status: 400, message: "the request target must start with '/' (got 'events')"), cacheStatus: nil,
            age: nil, omitBody: false)))
    }

    /// Purge counters outlive the longest entry plus the longest fetch, twice over.
    @Test func counterLifetime() {
        #expect(Self.rules.counterLifetime == 2 * (60_000 + 10_000 + 6000))
    }

    /// `freshHit`, which the hit fast path asks instead of running a machine, answers exactly what the machine
    /// answers for a fresh hit, and nothing for what the machine decides otherwise.
    @Test func freshHitAgreesWithTheMachine() throws {
        let stored = try #require(miss())
        let current: [Int64] = [0, 0, 0, 0, 0]
        var variant = stored
        variant.variant = [Header("Accept-Language", "de")]
        let base = clock.nowMilliseconds()
        let marker = EntryMeta.varyMarker(names: ["Accept-Language"], route: "event", tags: ["events", "event:42"], generations: current,
            storedAt: base, until: base + 120_000)
        // (entry, counters now, milliseconds since it was stored, served as a fresh hit), in time order.
        let cases: [(EntryMeta, [Int64], Int64, Bool)] = [
            (stored, current, 0, true),
            (stored, [0, 0, 0, 1, 0], 1000, false),  // purged
            (variant, current, 1000, false),
            (marker, current, 1000, false),
            (stored, current, 59_999, true),
            (stored, current, 60_000, false),  // stale
        ]
        for (meta, generations, offset, served) in cases {
            clock.advance(by: .milliseconds(base + offset - clock.nowMilliseconds()))
            let now = clock.nowMilliseconds()
            let fast = ReadThroughStateMachine.freshHit(meta, address: address, generations: generations, now: now)
            #expect((fast != nil) == served, "at +\(offset) ms, generations \(generations)")
            guard let fast else { continue }
            var sm = machine("GET", "/events/42")
            _ = sm.start()
            guard case .respond(let plan) = sm.lookupCompleted(.found(meta, generations: generations)) else {
                Issue.record("the machine answers a fresh entry")
                continue
            }
            #expect(plan.source == .entry)
            #expect(plan.cacheStatus == fast.status)
            #expect(plan.age == fast.age)
            #expect(!plan.notModified && !plan.omitBody)
        }
    }
}
