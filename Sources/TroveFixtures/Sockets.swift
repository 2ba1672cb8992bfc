#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Small blocking socket helpers for test fixtures (never used by Trove itself).
public enum Sockets {
    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestSupportError("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Connects to 127.0.0.1:`port`, sends `request` and reads until `isComplete` says the reply is whole.
    /// Throws when nothing listens or no whole reply arrives within `timeout` seconds.
    public static func exchange(
        port: Int, request: [UInt8], timeout: Int = 5, untilClosed: Bool = false, isComplete: ([UInt8]) -> Bool
    ) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestSupportError("nothing listens on 127.0.0.1:\(port) (errno \(errno))") }
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { throw TestSupportError("send() wrote \(sent) of \(request.count) bytes") }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !isComplete(reply) {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 && untilClosed { return reply }
            guard count > 0 else { throw TestSupportError("no whole reply from 127.0.0.1:\(port) within \(timeout) s") }
            reply += chunk[..<count]
        }
        return reply
    }

    /// Connects, sends `request`, and reads everything until the other side closes the connection (or
    /// `timeout` seconds pass without a byte, which throws).
    public static func exchangeUntilClosed(port: Int, request: [UInt8], timeout: Int = 5) throws -> [UInt8] {
        try exchange(port: port, request: request, timeout: timeout, untilClosed: true) { _ in false }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

/// A test fixture could not be set up; the message says what to install or check.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// An HTTP answer read whole by `Sockets.http`.
public struct HTTPReply: Sendable {
    public let status: Int
    /// Header names lower-cased.
    public let headers: [String: String]
    public let body: String
}

extension Sockets {
    /// One HTTP/1.1 request to 127.0.0.1:`port` on a connection of its own (`Connection: close`), read until
    /// the server closes it. For fixtures and tools, not for load.
    public static func http(
        port: Int, method: String = "GET", path: String, headers: [(String, String)] = [], body: String? = nil,
        timeout: Int = 10
    ) throws -> HTTPReply {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        let bytes = try exchangeUntilClosed(port: port, request: Array(request.utf8), timeout: timeout)
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw TestSupportError("127.0.0.1:\(port) answered \(method) \(path) with no whole HTTP head")
        }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw TestSupportError("127.0.0.1:\(port) answered \(method) \(path) with '\(lines.first ?? "")'")
        }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPReply(status: status, headers: fields, body: String(text[split.upperBound...]))
    }
}
