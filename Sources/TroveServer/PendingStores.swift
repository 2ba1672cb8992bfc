internal import NIOCore
internal import TroveCore

extension ProxyEnvironment {
    /// Carries out a store the state machine asked for, for a request or a background refresh alike: for an
    /// answer that varies, first the marker under the cache key (its result does not matter: without it the next
    /// request is a miss, never a wrong answer), then the entry with `body`. Timed in the metrics.
    func write(
        _ pending: ReadThroughStateMachine.PendingStore, body: ByteBuffer, to store: any CacheStore<ByteBuffer>,
        completion: @escaping (Result<Void, StoreError>) -> Void
    ) {
        if let marker = pending.marker {
            store.store(StoreWrite(address: pending.address.unvaried, meta: marker, body: ByteBuffer(),
                expireAfter: pending.expireAfter)) { _ in }
        }
        let started = NIODeadline.now()
        let metrics = self.metrics
        store.store(StoreWrite(address: pending.address, meta: pending.meta, body: body, expireAfter: pending.expireAfter)) { result in
            // An entry a tag purge overtook, or one the memory store did not admit, was refused on purpose: not a
            // store error.
            let failed = if case .failure(let error) = result { !error.isRefusal } else { false }
            metrics.recordStore(nanoseconds: (NIODeadline.now() - started).nanoseconds, failed: failed)
            completion(result)
        }
    }
}
