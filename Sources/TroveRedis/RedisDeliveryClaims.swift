public import TroveCore

/// Webhook deliveries already handled, for every instance on the Redis: `SET NS:w:ID 1 NX PX` is true only for
/// the first.
public final class RedisDeliveryClaims: DeliveryClaims {
    private let connection: any RedisLink
    private let keys: RedisKeys

    init(connection: any RedisLink, keys: RedisKeys) {
        self.connection = connection
        self.keys = keys
    }

    public func claimOnce(_ id: String, ttl: Int64, completion: @escaping (Result<Bool, StoreError>) -> Void) {
        connection.setIfAbsent(keys.delivery(id), "1", ttl: ttl, completion: completion)
    }
}
