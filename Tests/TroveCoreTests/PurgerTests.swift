import Synchronization
import Testing
import TroveCore
import TroveRules
import TroveTestSupport

/// Every purge goes through `Purger`: refused past `limits.max_purge` without touching the store, applied in
/// counter order with the rules' counter lifetime, queued when the store is away, and reported once each time.
@Suite struct PurgerTests {
    /// A store that records the purges it is asked for and answers them as told.
    final class RecordingStore: CacheStore {
        typealias Body = [UInt8]
        var requests: [PurgeRequest] = []
        var failure: StoreError?

        func lookup(_ address: EntryAddress, completion: @escaping (LookupOutcome<[UInt8]>) -> Void) { completion(.notFound(generations: [])) }
        func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: @escaping (Result<[UInt8]?, StoreError>) -> Void) {
            completion(.success(nil))
        }
        func store(_ write: StoreWrite<[UInt8]>, completion: @escaping (Result<Void, StoreError>) -> Void) { completion(.success(())) }
        func purge(_ request: PurgeRequest, completion: @escaping (Result<PurgeReport, StoreError>) -> Void) {
            requests.append(request)
            if let failure { return completion(.failure(failure)) }
            completion(.success(PurgeReport(request, found: request.keys.map { _ in false })))
        }
        func inspect(key: String, completion: @escaping (Result<EntryInspection?, StoreError>) -> Void) { completion(.success(nil)) }
        var health: StoreHealth { StoreHealth(ready: true, status: "ok") }
        func shutdown() {}
    }

    final class Observed: Sendable {
        let outcomes = Mutex<[PurgeOutcome.Result]>([])
    }

    private static let rules = try! RulesLoader.parse("""
        version: 1
        limits: {max_purge: 3}
        origins: {api: {url: "http://127.0.0.1:8000", timeout: 10s}}
        routes:
          - name: event
            match: GET /events/{id}
            cache: {key: "event:{id}", ttl: 60s}
        """, file: "test.yaml")

    private func purge(_ purges: PurgeSet, in store: RecordingStore, observed: Observed) -> PurgeOutcome.Result? {
        let purger = Purger { outcome in observed.outcomes.withLock { $0.append(outcome.result) } }
        var answered: PurgeOutcome.Result?
        purger.purge(purges, from: .admin, settings: PurgeSettings(rules: Self.rules), in: store) { answered = $0 }
        return answered
    }

    @Test func appliedInCounterOrderWithTheRulesLifetime() {
        let store = RecordingStore()
        let observed = Observed()
        let result = purge(PurgeSet(tags: ["t"], keys: ["k"], everything: true), in: store, observed: observed)
        #expect(store.requests == [PurgeRequest(counters: [.everything, .tag("t"), .key("k")], counterLifetime: Self.rules.counterLifetime)])
        #expect(result == .applied(PurgeReport(all: true, tags: ["t"], keys: [.init(key: "k", found: false)])))
        #expect(observed.outcomes.withLock { $0 } == [result!])
    }

    @Test func pastMaxPurgeNothingReachesTheStore() {
        let store = RecordingStore()
        let observed = Observed()
        let result = purge(PurgeSet(tags: ["a", "b", "c", "d"]), in: store, observed: observed)
        #expect(store.requests.isEmpty)
        guard case .refused(let reason) = result else { Issue.record("refused"); return }
        #expect(reason.contains("limits.max_purge (3)"))
        #expect(observed.outcomes.withLock { $0.count } == 1)
    }

    @Test func aStoreAwayQueuesIt() {
        let store = RecordingStore()
        store.failure = .unavailable("down")
        let observed = Observed()
        #expect(purge(PurgeSet(tags: ["a"]), in: store, observed: observed) == .queued(.unavailable("down")))
        #expect(observed.outcomes.withLock { $0 } == [.queued(.unavailable("down"))])
    }
}
