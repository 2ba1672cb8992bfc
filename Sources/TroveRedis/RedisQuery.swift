internal import TroveHTTP
internal import NIOCore
internal import TroveCore

/// One question to one Redis server on a connection of its own, closed once answered: how the sentinels are
/// asked for the master and a cluster for its slots, apart from the connections that carry requests.
enum RedisQuery {
    /// Connects to `server`, sends `commands`, and hands back their replies or why there are none (within the
    /// settings' connect and command timeouts).
    static func ask(
        _ server: ServerAddress, _ commands: [[RESPArgument]], settings: RedisConnectionSettings, on eventLoop: any EventLoop,
        completion: @escaping (Result<[RESPValue], StoreError>) -> Void
    ) {
        let handler = RedisChannelHandler(
            commandTimeout: .nanoseconds(Int64(settings.commandTimeout.milliseconds) * 1_000_000 + 1), maxPending: 4)
        settings.connect(to: server, on: eventLoop, handler: handler)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    completion(.failure(.unavailable("cannot connect: \(error)")))
                case .success(let channel):
                    handler.send(commands) { replies in
                        channel.close(promise: nil)
                        completion(replies)
                    }
                }
            }
    }
}
