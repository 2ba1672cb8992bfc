import TroveHTTP
import NIOCore
import NIOHTTP1
import Testing
import TroveCore
import TroveRules
@testable import TroveServer

/// The bytes of an answer's head, as the proxy writes them.
@Suite struct ResponseEncodingTests {
    private func head(
        version: HTTPVersion = .http1_1, status: Int = 200, headers: [Header] = [], trove: ResponseEncoding.TroveHeaders = .none,
        contentLength: Int? = 5, keepAlive: Bool = true
    ) -> String {
        String(buffer: ResponseEncoding.head(
            version: version, status: status, headers: headers, trove: trove, contentLength: contentLength, keepAlive: keepAlive,
            allocator: ByteBufferAllocator()))
    }

    @Test func aHitCarriesTroveHeadersAfterTheStoredOnes() {
        let text = head(
            headers: [Header("Content-Type", "application/json"), Header("Cache-Status", "origin-cache; hit"), Header("X-Cache", "MISS")],
            trove: .init(cacheStatus: CacheStatus(outcome: .hit, hit: true, ttl: 243), age: 7, retryAfter: nil), contentLength: 2048)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Cache: HIT\r\n"
            + "Cache-Status: origin-cache; hit, trove; hit; ttl=243\r\nAge: 7\r\nContent-Length: 2048\r\n\r\n")
    }

    @Test func withoutTroveHeadersTheOriginsStay() {
        #expect(head(headers: [Header("X-Cache", "HIT from upstream")], contentLength: 0)
            == "HTTP/1.1 200 OK\r\nX-Cache: HIT from upstream\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func connectionAndVersions() {
        #expect(head(keepAlive: false) == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        #expect(head(version: .http1_0) == "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n")
        #expect(head(version: .http1_0, keepAlive: false) == "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
    }

    @Test func bodilessAndRetryAfter() {
        #expect(ResponseEncoding.isBodiless(304) && ResponseEncoding.isBodiless(204) && ResponseEncoding.isBodiless(100))
        #expect(!ResponseEncoding.isBodiless(200) && !ResponseEncoding.isBodiless(404))
        #expect(head(status: 304, contentLength: nil) == "HTTP/1.1 304 Not Modified\r\n\r\n")
        #expect(head(status: 503, trove: .init(cacheStatus: nil, age: nil, retryAfter: 12), contentLength: 10)
            == "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 12\r\nContent-Length: 10\r\n\r\n")
        var buffer = ByteBufferAllocator().buffer(capacity: 32)
        for value in [0, 9, 10, 99, 100, 1_234_567, Int.max] {
            buffer.clear()
            ResponseEncoding.writeDecimal(value, into: &buffer)
            #expect(String(buffer: buffer) == String(value))
        }
    }
}
