public import TroveCore

/// The fetch locks of one event loop, on its store's connection: `SET NX PX` takes a key's lock, and a script
/// releases it (only with our token) and announces the fetch's end on the notice channel, which
/// `RedisSubscriber` hears for every instance.
public final class RedisFetchLocks: FetchLocks {
    private let connection: any RedisLink
    private let keys: RedisKeys

    init(connection: any RedisLink, keys: RedisKeys) {
        self.connection = connection
        self.keys = keys
    }

    /// Releases a lock only if it still holds our token (it may have expired and been taken by another
    /// instance since), and tells every instance what became of the fetch. The channel is an argument, not a
    /// key: a script's keys must share a slot in a cluster, and a published message reaches every node anyway.
    static let unlockScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        return redis.call('PUBLISH', ARGV[3], ARGV[2])
        """

    /// The channel instances publish fetch notices on, for a namespace.
    public static func noticeChannel(namespace: String) -> String { RedisKeys(namespace: namespace).noticeChannel }

    public func lockFetch(_ key: String, ttl: Int64, completion: @escaping (Result<FetchLock, StoreError>) -> Void) {
        let token = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        connection.setIfAbsent(keys.fetchLock(key), token, ttl: ttl) { result in
            completion(result.map { $0 ? .acquired(token: token) : .heldElsewhere })
        }
    }

    public func unlockFetch(_ key: String, lock: FetchLock, notice: FetchNotice) {
        guard case .acquired(let token) = lock else { return }
        connection.send([[
            "EVAL", .string(Self.unlockScript), "1", .string(keys.fetchLock(key)), .string(token),
            .string("\(notice.rawValue)\n\(key)"), .string(keys.noticeChannel),
        ]]) { _ in }
    }
}
