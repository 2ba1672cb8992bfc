/// Makes one Trove instance, among all sharing a store, fetch a key while the others wait for it: Redis' `SET NX`
/// lock and pub/sub notices, or (one instance alone) nothing at all, since that instance coalesces in process.
///
/// Same contract as `CacheStore`: `completion` is called exactly once, on the thread that made the call.
public protocol FetchLocks {
    /// Takes the lock that makes this instance fetch `key`; it expires by itself after `ttl` milliseconds.
    func lockFetch(_ key: String, ttl: Int64, completion: @escaping (Result<FetchLock, StoreError>) -> Void)

    /// Releases the lock (if still ours) and tells the other instances what became of the fetch.
    func unlockFetch(_ key: String, lock: FetchLock, notice: FetchNotice)
}

/// The fetch locks of a store only one instance uses (the memory store): always granted, since the instance
/// coalesces its own requests in process.
public struct LocalFetchLocks: FetchLocks, Sendable {
    public init() {}

    public func lockFetch(_ key: String, ttl: Int64, completion: (Result<FetchLock, StoreError>) -> Void) {
        completion(.success(.acquired(token: "local")))
    }

    public func unlockFetch(_ key: String, lock: FetchLock, notice: FetchNotice) {}
}

/// The fetch lock of one key, as `lockFetch` answered.
public enum FetchLock: Sendable, Equatable {
    /// This instance holds it, under this token (only the holder's token releases it).
    case acquired(token: String)
    /// Another instance is fetching the key.
    case heldElsewhere
}

/// What became of a fetch, as the instance that made it tells the others.
public enum FetchNotice: String, Sendable, Equatable {
    /// An entry was stored: look it up.
    case stored
    /// The answer could not be shared, or there was none: fetch on your own.
    case released
}

/// Tells an instance when another instance's fetch of a key ends (Redis pub/sub). Waiters also look the key
/// up now and then, so a lost notice only delays them.
public protocol FetchNotifications: Sendable {
    /// Calls `callback` (on any thread) each time a fetch of `key` ends, until `unwatch`.
    func watch(_ key: String, _ callback: @escaping @Sendable (FetchNotice) -> Void) -> Int
    func unwatch(_ key: String, id: Int)
}

