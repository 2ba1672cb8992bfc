#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One client TCP connection to 127.0.0.1 that a test drives byte by byte, as a hostile client would: send part
/// of a request and stop, pipeline requests and never read, or wait to see whether the server closes.
///
/// Blocking, with a deadline on every read (tests and load scripts only, never Trove itself).
public final class RawConnection {
    private var fd: Int32
    /// Bytes received and not yet taken by `readHead` / `readUntil`.
    public private(set) var received: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; `receiveBuffer` shrinks the kernel's buffer (a client that reads slowly).
    public init(port: Int, receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            closeDescriptor(fd)
            throw TestSupportError("nothing listens on 127.0.0.1:\(port) (errno \(error))")
        }
    }

    deinit { if fd >= 0 { closeDescriptor(fd) } }

    /// Changes the kernel's receive buffer: a client that starts reading fast after reading slowly.
    public func setReceiveBuffer(_ bytes: Int) {
        var size = Int32(clamping: bytes)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Closes the connection now.
    public func close() {
        if fd >= 0 { closeDescriptor(fd) }
        fd = -1
    }

    /// Sends all of `text`; throws when the server closed the connection.
    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { sendBytes(fd, $0.baseAddress, $0.count) }
            guard sent > 0 else { throw TestSupportError("send() failed: errno \(errno)") }
            offset += sent
        }
    }

    /// Reads whatever arrives within `seconds`; returns false when the server closed the connection (EOF or
    /// reset), true when the time passed with the connection still open.
    @discardableResult
    public func receive(for seconds: Double) -> Bool {
        let deadline = Self.now() + seconds
        while true {
            let left = deadline - Self.now()
            if left <= 0 { return true }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, left * 1000)))
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return false }
            received += chunk[..<count]
        }
    }

    /// Waits up to `seconds` for the server to close the connection, keeping what arrives; true when it did.
    public func closedByServer(within seconds: Double) -> Bool {
        let deadline = Self.now() + seconds
        while Self.now() < deadline {
            if !receive(for: min(0.1, max(0.001, deadline - Self.now()))) { return true }
        }
        return false
    }

    /// Reads until one whole answer head (through the blank line) has arrived, and takes it with the body its
    /// `Content-Length` announces. Throws when none arrives within `seconds`.
    public func readAnswer(within seconds: Double = 5) throws -> HTTPReply {
        let deadline = Self.now() + seconds
        while true {
            if let reply = takeAnswer() { return reply }
            let left = deadline - Self.now()
            guard left > 0 else { throw TestSupportError("no whole answer within \(seconds) s; received \(received.count) bytes") }
            if !receive(for: min(0.05, left)) {
                if let reply = takeAnswer() { return reply }
                throw TestSupportError("the server closed the connection before a whole answer (\(received.count) bytes)")
            }
        }
    }

    /// Reads one answer whose body is framed by `Content-Length`, counting its body bytes and keeping none of
    /// them (for answers bigger than a test should hold). Returns the head's fields and the body's length; with
    /// `firstBytes`, returns once that many body bytes came (`discard` reads the rest).
    public func readDiscardingBody(within seconds: Double, firstBytes: Int? = nil) throws -> (status: Int, headers: [String: String], bodyBytes: Int) {
        let deadline = Self.now() + seconds
        let separator: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            guard Self.now() < deadline else { throw TestSupportError("no head within \(seconds) s") }
            if !receive(for: 0.01) && received.isEmpty { throw TestSupportError("closed before a head") }
            if received.count >= 4 {
                end = (0...(received.count - 4)).first { received[$0..<($0 + 4)].elementsEqual(separator) }
            }
        }
        let headEnd = end! + 4
        let lines = String(decoding: received[..<end!], as: UTF8.self).split(separator: "\r\n").map(String.init)
        let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmed()
        }
        guard let length = fields["content-length"].flatMap({ Int($0) }) else { throw TestSupportError("no Content-Length") }
        let count = received.count - headEnd
        received = []
        return (status, fields, try discard(min(length, firstBytes ?? length) - count, within: deadline - Self.now()) + count)
    }

    /// Reads and drops at least `bytes` bytes (none when it is not positive); returns how many came.
    public func discard(_ bytes: Int, within seconds: Double) throws -> Int {
        let deadline = Self.now() + seconds
        var count = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while count < bytes {
            guard Self.now() < deadline else { throw TestSupportError("\(count) of \(bytes) body bytes within \(seconds) s") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let read = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard read > 0 else { throw TestSupportError("closed after \(count) of \(bytes) body bytes") }
            count += read
        }
        return count
    }

    /// The first whole answer in `bytes`; throws when there is none.
    public static func parse(_ bytes: [UInt8]) throws -> HTTPReply {
        let scratch = RawAnswerBuffer(bytes)
        guard let reply = scratch.take() else {
            throw TestSupportError("no whole answer in \(bytes.count) bytes: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        return reply
    }

    private func takeAnswer() -> HTTPReply? {
        let buffer = RawAnswerBuffer(received)
        guard let reply = buffer.take() else { return nil }
        received = buffer.bytes
        return reply
    }

    private static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

private func closeDescriptor(_ fd: Int32) { close(fd) }

private func sendBytes(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    send(fd, bytes, count, Int32(MSG_NOSIGNAL))
}

extension String {
    fileprivate func trimmed() -> String {
        var scalars = Substring(self)
        while scalars.first == " " || scalars.first == "\t" { scalars.removeFirst() }
        while scalars.last == " " || scalars.last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}

/// Bytes holding answers one after another; `take` removes the first whole one.
private final class RawAnswerBuffer {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func take() -> HTTPReply? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4,
            let end = (0...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(separator) })
        else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmed()
        }
        let length = (status == 304 || status == 204 || (100..<200).contains(status)) ? 0 : Int(fields["content-length"] ?? "0") ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        let body = String(decoding: bytes[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        bytes.removeFirst(end + 4 + length)
        return HTTPReply(status: status, headers: fields, body: body)
    }
}
