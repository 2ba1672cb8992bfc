import TroveHTTP
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import TroveCore
import TroveFixtures
import TroveTestSupport
@testable import TroveRedis

/// The Redis store over TLS, against a real `redis-server --tls-port` with certificates the test makes.
@Suite(.serialized) final class RedisTLSTests: Sendable {
    let server: TLSRedisServer
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init() throws {
        server = try TLSRedisServer(clientCertificates: false)
    }

    deinit {
        try? group.syncShutdownGracefully()
    }

    private func pem(_ file: String) throws -> String { try String(contentsOfFile: server.path(file), encoding: .utf8) }

    private func store(ca: String?, serverName: String? = "localhost", verify: Bool = true, port: Int? = nil) async throws -> NIOLoopBound<RedisStore> {
        let tls = try RedisTLSContext(caPEM: ca, certificatePEM: nil, keyPEM: nil, serverName: serverName, verify: verify)
        let settings = RedisConnectionSettings(host: "127.0.0.1", port: port ?? server.tlsPort, connectTimeout: .seconds(1),
            commandTimeout: .milliseconds(500), tls: tls)
        let factory = RedisStoreFactory(settings: settings, namespace: "tls", logger: Logger(label: "test"))
        let loop = group.next()
        return try await loop.submit { NIOLoopBound(factory.makeStore(on: loop), eventLoop: loop) }.get()
    }

    private func health(_ store: NIOLoopBound<RedisStore>) async throws -> StoreHealth {
        try await store.eventLoop.submit { store.value.health }.get()
    }

    private func lookup(_ store: NIOLoopBound<RedisStore>, _ address: EntryAddress) async throws -> LookupOutcome<ByteBuffer> {
        let promise = store.eventLoop.makePromise(of: LookupOutcome<ByteBuffer>.self)
        store.eventLoop.execute { store.value.lookup(address) { promise.succeed($0) } }
        return try await promise.futureResult.get()
    }

    /// With the test's CA, entries are stored, found and purged over TLS (the plain port sees the same keys).
    @Test func storesFindsAndPurgesOverTLS() async throws {
        let store = try await store(ca: try pem("ca.pem"))
        try await eventually("connected over TLS") { try await self.health(store).ready }
        #expect(try await health(store).status.hasPrefix("connected to rediss://127.0.0.1:"))
        let address = EntryAddress(key: "k", route: "r", tags: ["t"])
        let meta = EntryMeta(status: 200, headers: [], storedAt: 1, freshUntil: 2, staleUntil: 2, route: "r", tags: ["t"],
            generations: [0, 0, 0, 0], bodyLength: 5)
        let stored = store.eventLoop.makePromise(of: Bool.self)
        store.eventLoop.execute {
            store.value.store(StoreWrite(address: address, meta: meta, body: ByteBuffer(string: "hello"), expireAfter: 60_000)) {
                stored.succeed((try? $0.get()) != nil)
            }
        }
        #expect(try await stored.futureResult.get())
        guard case .found(_, let body, _, _) = try await lookup(store, address) else { Issue.record("found over TLS"); return }
        #expect(String(buffer: body) == "hello")
        #expect(try server.redis.command(["EXISTS", "tls:e:{k}"]) == "1", "the same Redis, seen on its plain port")
        let purged = store.eventLoop.makePromise(of: Bool.self)
        store.eventLoop.execute { store.value.purge(PurgeRequest(counters: [.tag("t")], counterLifetime: 60_000)) { purged.succeed((try? $0.get()) != nil) } }
        #expect(try await purged.futureResult.get())
        #expect(try server.redis.command(["GET", "tls:g:{tls}:t:t"]) == String(Generation.hardStep))
        try await store.eventLoop.submit { store.value.shutdown() }.get()
    }

    /// A CA that did not sign the server's certificate: never connected, and `/readyz`'s status says why.
    @Test func aWrongCAIsRefusedWithTheReason() async throws {
        let store = try await store(ca: try pem("other-ca.pem"))
        // The status is read until it says why: read during a retry, it says "connecting".
        try await eventually("the handshake failed, and the status says why") {
            let status = try await self.health(store).status
            return status.contains("TLS handshake with Redis failed") && status.contains("CERTIFICATE_VERIFY_FAILED")
        }
        #expect(try await health(store).ready == false)
        if case .unavailable = try await lookup(store, EntryAddress(key: "k", route: "r", tags: [])) {} else {
            Issue.record("a store that cannot connect is unavailable: requests go to the origin")
        }
        try await store.eventLoop.submit { store.value.shutdown() }.get()
    }

    /// The name the certificate must carry: `localhost` is in it; another name is not, nor is the address
    /// connected to when no `server_name` is given; `verify: false` takes any certificate (and `trove check` warns).
    @Test func theServerNameIsChecked() async throws {
        let good = try await store(ca: try pem("ca.pem"), serverName: "localhost")
        try await eventually("connected as localhost") { try await self.health(good).ready }
        let other = try await store(ca: try pem("ca.pem"), serverName: "redis.example.com")
        let address = try await store(ca: try pem("ca.pem"), serverName: nil)
        let unchecked = try await store(ca: try pem("other-ca.pem"), serverName: nil, verify: false)
        for bad in [other, address] {
            try await eventually("refused") { try await self.health(bad).status.contains("TLS handshake with Redis failed") }
            #expect(try await health(bad).ready == false)
        }
        // Read while the connection is between attempts (a status read during a retry says "connecting").
        try await eventually("the name is the reason") { try await self.health(other).status.contains("Couldn't find redis.example.com in certificate") }
        try await eventually("connected without checking") { try await self.health(unchecked).ready }
        try await good.eventLoop.submit {
            for store in [good, other, address, unchecked] { store.value.shutdown() }
        }.get()
    }

    /// PEMs that cannot be read are refused when the context is made (Trove refuses to start, saying which).
    @Test func unreadableKeyMaterialIsRefused() {
        #expect(throws: RedisTLSError.self) {
            try RedisTLSContext(caPEM: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", certificatePEM: nil,
                keyPEM: nil, serverName: nil, verify: true)
        }
    }
}
