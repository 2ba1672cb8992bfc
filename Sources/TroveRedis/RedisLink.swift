internal import NIOCore
internal import TroveCore

/// What one event loop's store, fetch locks and delivery claims send commands over: one Redis's pipelined
/// connection (`RedisConnection`: a server the URL names, or the master the sentinels name), or a cluster's
/// connections to its masters (`RedisClusterConnection`).
protocol RedisLink: AnyObject {
    var isReady: Bool { get }
    /// Why it is (not) ready, for `/readyz`.
    var status: String { get }
    /// Called on the loop each time it becomes ready.
    var onReady: (() -> Void)? { get set }
    /// Every key one command names must share a hash slot (a cluster): a lookup then reads the entry's keys and
    /// the shared counters with two commands, one per node.
    var keysMustShareASlot: Bool { get }
    func send(_ commands: [[RESPArgument]], completion: @escaping RedisChannelHandler.Completion)
    func start()
    func stop()
}

extension RedisLink {
    /// `SET key value NX PX ttl`: true when this call set it, false when it was already set (a fetch lock held
    /// elsewhere, a delivery already claimed).
    func setIfAbsent(_ key: String, _ value: String, ttl: Int64, completion: @escaping (Result<Bool, StoreError>) -> Void) {
        send([["SET", .string(key), .string(value), "NX", "PX", .string(String(max(1, ttl)))]]) { result in
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

extension RedisConnection: RedisLink {
    var keysMustShareASlot: Bool { false }
}

extension RedisClusterConnection: RedisLink {
    var keysMustShareASlot: Bool { true }
}
