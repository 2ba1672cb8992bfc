public import TroveCore

/// Webhook deliveries already handled, for every instance on the Redis: `SET NS:w:ID 1 NX PX` is true only for
/// the first.
public final class RedisDeliveryClaims: DeliveryClaims {
    private let connection: RedisConnection
    private let keys: RedisKeys

    init(connection: RedisConnection, keys: RedisKeys) {
        self.connection = connection
        self.keys = keys
    }

    public func claimOnce(_ id: String, ttl: Int64, completion: @escaping (Result<Bool, StoreError>) -> Void) {
        connection.send([["SET", .string(keys.delivery(id)), "1", "NX", "PX", .string(String(max(1, ttl)))]]) { result in
            switch result {
            case .success(let replies):
                switch replies[0] {
                case .simpleString("OK"): completion(.success(true))
                case .null: completion(.success(false))
                default: completion(.failure(.protocolError("SET NX answered \(replies[0])")))
                }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }
}
