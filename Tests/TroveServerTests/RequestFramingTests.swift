import Testing
import TroveHTTP

/// `RequestFraming`: where a request ends, and which requests are plain reads the fast path may answer.
@Suite struct RequestFramingTests {
    private func frame(_ text: String, maxHead: Int = 16 << 10) -> RequestFraming.Frame {
        Array(text.utf8).withUnsafeBytes { RequestFraming.frame($0, maxHead: maxHead) }
    }

    private func plain(_ text: String) -> RequestFraming.PlainRead? {
        if case .plainRead(let read) = frame(text) { read } else { nil }
    }

    @Test func aSimpleGetIsAPlainRead() throws {
        let text = "GET /events/7?a=1 HTTP/1.1\r\nHost: trove.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\nGET /next"
        let read = try #require(plain(text))
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[read.target], as: UTF8.self) == "/events/7?a=1")
        #expect(String(decoding: bytes[read.host], as: UTF8.self) == "trove.test")
        #expect(read.length == text.utf8.count - "GET /next".utf8.count, "only the first request")
        #expect(!read.isHead)
        #expect(plain("HEAD / HTTP/1.1\r\nhost:  a  \r\nConnection: Keep-Alive\r\nSec-Fetch-Mode: cors\r\n\r\n")?.isHead == true)
    }

    @Test func aHeadNotAllHereIsIncomplete() {
        for text in ["", "GET", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: a\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r"] {
            #expect(frame(text) == .incomplete, "\(text.debugDescription)")
        }
        // Past the most the fast path holds: the decoder's business.
        #expect(frame("GET /" + String(repeating: "a", count: 100), maxHead: 64) == .unframed)
    }

    /// Anything a hit reads, or the fast path cannot answer the same way, is framed but not plain.
    @Test func requestsAHitWouldReadDifferentlyAreNotPlain() {
        let notPlain = [
            "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
            "DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n",
        ]
        for text in notPlain {
            #expect(frame(text) == .request(length: text.utf8.count), "\(text.debugDescription)")
        }
    }

    @Test func aBodyIsFramedByContentLength() {
        let head = "PUT /events/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
        #expect(frame(head) == .request(length: head.utf8.count + 11), "more than has arrived")
        #expect(frame(head + "hello world" + "GET") == .request(length: head.utf8.count + 11))
        let empty = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        #expect(plain(empty) != nil, "an empty body is no body")
    }

    /// What the fast path cannot frame the same way as NIO's decoder goes to the decoder, with the rest of the
    /// connection.
    @Test func doubtfulHeadsAreLeftToTheDecoder() {
        let unframed = [
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\nHost: a\n\n",
            "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\u{7F}\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            // A length no request body could have is not parsed into an overflow.
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ]
        for text in unframed {
            #expect(frame(text) == .unframed, "\(text.debugDescription)")
        }
    }

    /// The fields of a plain read, as the full path gets them when a read the fast path took needs it.
    @Test func aPlainReadsFieldsAreItsHeaders() throws {
        let text = "GET /a HTTP/1.1\r\nHost:  trove.test \r\nAccept:\r\nUser-Agent: wrk/4 (x)\r\n\r\nGET /b"
        let read = try #require(plain(text))
        let fields = Array(text.utf8).withUnsafeBytes { RequestFraming.fields(of: read, in: $0) }
        #expect(fields.map(\.name) == ["Host", "Accept", "User-Agent"])
        #expect(fields.map(\.value) == ["trove.test", "", "wrk/4 (x)"])
    }
}
