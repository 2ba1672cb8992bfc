public import TroveCore

/// The fetch locks of one event loop, on its store's connection: `SET NX PX` takes a key's lock, and a script
/// releases it (only with our token) and announces the fetch's end on the notice channel, which
/// `RedisSubscriber` hears for every instance.
///
/// In a Redis Cluster the notice is a sharded message (`SPUBLISH`, Redis 7), sent beside the script to the master
/// of the channel's slot: a plain `PUBLISH` would be copied to every node over the cluster bus. A cluster whose
/// servers lack `SPUBLISH` gets `PUBLISH` instead, from the first refusal on.
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

    /// The script without the announcement (a cluster announces with `SPUBLISH`, to the channel's own master).
    static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        return 1
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
        if let cluster = connection as? RedisClusterConnection, cluster.shardedPubSub {
            let payload = "\(notice.rawValue)\n\(key)"
            let channel = keys.noticeChannel
            cluster.send([
                ["EVAL", .string(Self.releaseScript), "1", .string(keys.fetchLock(key)), .string(token)],
                ["SPUBLISH", .string(channel), .string(payload)],
            ]) { result in
                // Servers before Redis 7: announced the old way, and from now on only so.
                guard case .success(let replies) = result, case .error(let message) = replies[1], message.contains("unknown command") else { return }
                cluster.shardedPubSubRefused()
                cluster.send([["PUBLISH", .string(channel), .string(payload)]]) { _ in }
            }
            return
        }
        connection.send([[
            "EVAL", .string(Self.unlockScript), "1", .string(keys.fetchLock(key)), .string(token),
            .string("\(notice.rawValue)\n\(key)"), .string(keys.noticeChannel),
        ]]) { _ in }
    }
}
