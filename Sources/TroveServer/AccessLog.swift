internal import TroveHTTP
internal import Dispatch
internal import Foundation
public import Logging
internal import Synchronization
internal import TroveCore

/// One line per answered request, through swift-log: route, method, path, status, cache outcome, a hash of
/// the cache key, origin time, total time, body bytes.
///
/// The proxy hands each line to a `Logger` (label `trove.access`); `AccessLogHandler` formats it (text or JSON
/// lines) into a buffer that a background queue writes out every 100 ms, so the event loops never wait on a
/// disk or a pipe. Off by default (`trove serve --access-log`); when off, no line is built at all.
public struct AccessLog: Sendable {
    public let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// One answered request. `key` is hashed (FNV-1a, 64 bits): enough to tell entries apart in a log, never
    /// the key itself, which may hold a hashed credential or a customer's query.
    func record(
        route: String?, method: String, path: String, status: Int, outcome: String, key: String?, originNanoseconds: Int64?,
        totalNanoseconds: Int64, bytes: Int, client: String?
    ) {
        var metadata: Logger.Metadata = [
            "route": .string(route ?? "-"),
            "method": .string(method),
            "path": .string(path),
            "status": .stringConvertible(status),
            "cache": .string(outcome),
            "total_ms": .string(Self.milliseconds(totalNanoseconds)),
            "bytes": .stringConvertible(bytes),
        ]
        if let key { metadata["key_hash"] = .string(Self.hash(key)) }
        if let originNanoseconds { metadata["origin_ms"] = .string(Self.milliseconds(originNanoseconds)) }
        if let client { metadata["client"] = .string(client) }
        logger.info("request", metadata: metadata)
    }

    /// One purge, as a line beside the requests: method `PURGE`, the status its admin API answer has (200 applied,
    /// 202 queued, 413 refused), the mode where a request's cache outcome goes, and what it named.
    func record(purge: PurgeHistory.Record) {
        var metadata: Logger.Metadata = [
            "method": "PURGE",
            "path": .string(purge.source),
            "status": .stringConvertible(purge.result.status),
            "cache": .string(purge.mode.rawValue),
            "purge_counters": .stringConvertible(purge.countersMoved),
        ]
        if purge.all { metadata["purge_all"] = "true" }
        for (name, names, count) in [("purge_tags", purge.tags, purge.counts.tags), ("purge_keys", purge.keys.map(Self.hash), purge.counts.keys),
            ("purge_routes", purge.routes, purge.counts.routes)] where count > 0 {
            metadata[name] = .string(names.joined(separator: ",") + (count > names.count ? ",…(\(count))" : ""))
        }
        if let route = purge.context["route.name"] { metadata["route"] = .string(route) }
        logger.info("purge", metadata: metadata)
    }

    static func milliseconds(_ nanoseconds: Int64) -> String {
        let micros = max(0, nanoseconds) / 1000
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }

    static func hash(_ key: String) -> String {
        var hash = FNV1a()
        hash.add(key.utf8)
        return hash.hex
    }
}

/// Formats access-log lines and writes them from a background queue (see `AccessLog`).
public struct AccessLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        /// `2026-11-22T07:10:00.123Z GET /api/v1/events?page=1 200 hit route=events-list total_ms=0.412 …`
        case text
        /// One JSON object per line.
        case json
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let format: Format
    private let sink: AccessLogSink

    public init(format: Format, sink: AccessLogSink) {
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The fields every line has first, in this order; others follow sorted by name.
    static let leading = ["method", "path", "status", "cache", "route", "key_hash", "origin_ms", "total_ms", "bytes", "client"]

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let time = Self.timestamp(Date())
        var line: String
        switch format {
        case .json:
            line = "{\"ts\":\"\(time)\""
            for (name, value) in Self.ordered(fields) {
                line += ",\"\(name)\":"
                switch name {
                case "status", "bytes", "origin_ms", "total_ms": line += "\(value)"
                default: line += Self.jsonString("\(value)")
                }
            }
            if event.message.description != "request" { line += ",\"message\":\(Self.jsonString(event.message.description))" }
            line += "}\n"
        case .text:
            func field(_ name: String) -> String { fields[name].map { "\($0)" } ?? "-" }
            line = "\(time) \(field("method")) \(field("path")) \(field("status")) \(field("cache"))"
            for (name, value) in Self.ordered(fields) where !["method", "path", "status", "cache"].contains(name) {
                line += " \(name)=\(value)"
            }
            if event.message.description != "request" { line += " \(event.message)" }
            line += "\n"
        }
        sink.append(line)
    }

    static func ordered(_ fields: Logger.Metadata) -> [(String, Logger.Metadata.Value)] {
        let first = leading.compactMap { name in fields[name].map { (name, $0) } }
        let rest = fields.filter { !leading.contains($0.key) }.sorted { $0.key < $1.key }
        return first + rest.map { ($0.key, $0.value) }
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// Where access-log lines go: a buffer that a background queue writes to a file descriptor every 100 ms
/// (or sooner, past 256 KB). Past 16 MB unwritten (a stuck disk or pipe), lines are dropped and counted, and the
/// count is written as soon as writing works again, so nothing is lost without a trace.
public final class AccessLogSink: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var pendingLines = 0
        var dropped = 0
        /// Why lines were dropped since the last successful write.
        var reason = "the destination did not keep up"
        var flushScheduled = false
        var closed = false
    }

    private let state = Mutex(State())
    private let handle: FileHandle
    private let queue = DispatchQueue(label: "trove.access-log")
    static let flushThreshold = 256 << 10
    static let limit = 16 << 20

    /// Writes to `handle` (standard output, or a file opened for appending).
    init(handle: FileHandle) {
        self.handle = handle
        scheduleTick()
    }

    /// Flushes every 100 ms until `close()`.
    private func scheduleTick() {
        queue.asyncAfter(deadline: .now() + .milliseconds(100)) { [weak self] in
            guard let self, !self.state.withLock({ $0.closed }) else { return }
            self.writeOut()
            self.scheduleTick()
        }
    }

    /// Why `open` failed.
    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens `destination`: `stdout`, `stderr`, or a file path (created, appended to).
    public static func open(_ destination: String) throws -> AccessLogSink {
        switch destination {
        case "stdout", "-": return AccessLogSink(handle: .standardOutput)
        case "stderr": return AccessLogSink(handle: .standardError)
        default:
            if !FileManager.default.fileExists(atPath: destination) {
                guard FileManager.default.createFile(atPath: destination, contents: nil) else {
                    throw OpenError(description: "cannot create \(destination) (does its directory exist, and may Trove write there?)")
                }
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: destination))
            try handle.seekToEnd()
            return AccessLogSink(handle: handle)
        }
    }

    func append(_ line: String) {
        let flushNow = state.withLock { state -> Bool in
            guard state.pending.count < Self.limit else {
                state.dropped += 1
                return false
            }
            state.pending.append(contentsOf: line.utf8)
            state.pendingLines += 1
            if state.pending.count >= Self.flushThreshold && !state.flushScheduled {
                state.flushScheduled = true
                return true
            }
            return false
        }
        if flushNow { queue.async { self.writeOut() } }
    }

    /// Writes what is pending now (tests; `close()` does it at shutdown).
    public func flush() {
        queue.sync { writeOut() }
    }

    /// On `queue` only, so chunks leave in the order they were taken.
    private func writeOut() {
        let (bytes, lines, dropped, reason) = state.withLock { state in
            defer {
                state.pending.removeAll(keepingCapacity: true)
                state.pendingLines = 0
                state.dropped = 0
                state.reason = "the destination did not keep up"
                state.flushScheduled = false
            }
            return (state.pending, state.pendingLines, state.dropped, state.reason)
        }
        var out = bytes
        if dropped > 0 { out.append(contentsOf: "access log: \(dropped) lines dropped (\(reason))\n".utf8) }
        guard !out.isEmpty else { return }
        do {
            try handle.write(contentsOf: out)
        } catch {
            // Counted, and said in the log as soon as a write succeeds again: lost lines never go unnoticed.
            state.withLock { state in
                state.dropped += dropped + lines
                state.reason = "writing failed: \(error)"
            }
        }
    }

    /// Stops the periodic flush and writes what is left.
    public func close() {
        state.withLock { $0.closed = true }
        flush()
    }
}
