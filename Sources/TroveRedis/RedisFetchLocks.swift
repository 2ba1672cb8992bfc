public import TroveCore
internal import NIOCore

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
    /// Releases that could not be sent (the connection was down: a failover, a restart), oldest first, sent again
    /// when it is back. Without them a lock the old master held would outlive its fetch on the replica promoted in
    /// its place until its TTL (the origin's timeout), and every other request for the key would wait that long.
    /// The script checks the token, so a late release can never free someone else's lock.
    private var unsent = CircularBuffer<(key: String, token: String, notice: FetchNotice, at: NIODeadline)>()
    /// At most this many are kept (the oldest go first), for at most `unsentLifetime`.
    static let unsentLimit = 1000
    static let unsentLifetime: TimeAmount = .minutes(5)

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
        release(key, token: token, notice: notice) { [weak self] sent in
            guard !sent, let self else { return }
            if self.unsent.count >= Self.unsentLimit { self.unsent.removeFirst() }
            self.unsent.append((key, token, notice, .now()))
        }
    }

    /// Sends the releases the connection could not take, now that it is back (those younger than
    /// `unsentLifetime`; one that fails again waits for the next time).
    func releaseUnsent() {
        let since = NIODeadline.now() - Self.unsentLifetime
        let due = unsent.filter { $0.at >= since }
        unsent.removeAll()
        for release in due { unlockFetch(release.key, lock: .acquired(token: release.token), notice: release.notice) }
    }

    /// Releases held elsewhere than the connection (tests).
    var unsentCount: Int { unsent.count }

    /// Sends one release; `sent` says whether the server took it.
    private func release(_ key: String, token: String, notice: FetchNotice, sent: @escaping (Bool) -> Void) {
        if let cluster = connection as? RedisClusterConnection, cluster.shardedPubSub {
            let payload = "\(notice.rawValue)\n\(key)"
            let channel = keys.noticeChannel
            cluster.send([
                ["EVAL", .string(Self.releaseScript), "1", .string(keys.fetchLock(key)), .string(token)],
                ["SPUBLISH", .string(channel), .string(payload)],
            ]) { result in
                guard case .success(let replies) = result else { return sent(false) }
                sent(true)
                // Servers before Redis 7: announced the old way, and from now on only so.
                guard case .error(let message) = replies[1], message.contains("unknown command") else { return }
                cluster.shardedPubSubRefused()
                cluster.send([["PUBLISH", .string(channel), .string(payload)]]) { _ in }
            }
            return
        }
        connection.send([[
            "EVAL", .string(Self.unlockScript), "1", .string(keys.fetchLock(key)), .string(token),
            .string("\(notice.rawValue)\n\(key)"), .string(keys.noticeChannel),
        ]]) { result in
            if case .success = result { sent(true) } else { sent(false) }
        }
    }
}
