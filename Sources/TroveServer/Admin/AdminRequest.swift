internal import TroveRules
internal import Foundation
internal import NIOCore
internal import NIOHTTP1
internal import TroveCore

/// One request to the admin API, as an endpoint sees it: already authenticated, its body whole.
struct AdminRequest {
    let head: HTTPRequestHead
    let path: String
    let query: [URLQueryItem]
    let body: ByteBuffer
    let environment: ProxyEnvironment
    /// This event loop's store; nil only before the handler is added.
    let store: (any CacheStore<ByteBuffer>)?
    let eventLoop: any EventLoop

    /// The first value of a query parameter, when it is there and not empty.
    func parameter(_ name: String) -> String? {
        query.first(where: { $0.name == name })?.value.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The store's health, whatever happens (unknown when it cannot be asked).
    func storeHealth(_ body: @escaping (StoreHealth) -> Void) {
        environment.stores.health(on: eventLoop).assumeIsolated().whenComplete { result in
            body((try? result.get()) ?? StoreHealth(ready: false, status: "the store's health is unknown"))
        }
    }

    /// The rules in force, as `/readyz` and `/stats` describe them.
    var rulesDescription: [String: Any] {
        let loaded = environment.rules.current
        return ["file": loaded.rules.file, "version": loaded.rules.fingerprint, "loaded_at": Self.iso(loaded.loadedAt)]
    }

    /// The store, as `/readyz` and `/stats` describe it.
    func storeDescription(_ health: StoreHealth) -> [String: Any] {
        ["kind": environment.stores.name, "ready": health.ready, "status": health.status]
    }

    /// An instant (milliseconds since the epoch) as ISO 8601.
    static func iso(_ milliseconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
