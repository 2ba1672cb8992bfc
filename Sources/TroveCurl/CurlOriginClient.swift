internal import TroveHTTP
internal import CCurl
internal import CCurlShim
internal import Foundation
public import NIOCore
internal import Synchronization
public import TroveCore

/// Sends requests to origins with libcurl's multi interface, on one thread of its own.
///
/// Callers on any thread hand over a request (only `Sendable` values cross: the request and a completion);
/// the curl thread builds the transfer, drives every transfer in flight with `curl_multi_poll`, and calls the
/// completion when a transfer ends. Connections to origins are kept and reused by the multi handle.
///
/// Bodies pass through unchanged: no redirects are followed and no content decoding is asked for.
public final class CurlOriginClient: OriginClient, Sendable {
    public typealias Body = ByteBuffer
    public typealias Completion = @Sendable (Result<OriginResponse<ByteBuffer>, OriginError>) -> Void

    private struct Inbox {
        var requests: [(OriginRequest<ByteBuffer>, Completion)] = []
        /// Streamed transfers to resume (their consumer caught up) or abort (their consumer left), by serial
        /// number: an easy handle's address can be reused by a later transfer, a serial number never is.
        var controls: [(serial: UInt64, control: Control)] = []
        var stopping = false
        var stopped: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    /// What a stream's consumer asks of its transfer, from its own thread.
    fileprivate enum Control {
        case resume, abort
    }

    private let multi: MultiHandle
    private let inbox = Mutex(Inbox())

    /// - Parameter maxCachedConnections: connections kept open for reuse, across origins; enough for the
    ///   bursts of concurrent misses Trove expects, so a burst does not end in reconnecting.
    public init(maxCachedConnections: Int = 1024) {
        precondition(CurlLibrary.initialized, "libcurl could not be initialised")
        guard let handle = curl_multi_init() else {
            fatalError("libcurl could not create a multi handle (out of memory)")
        }
        multi = MultiHandle(raw: handle)
        _ = CCurlShim_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, maxCachedConnections)
        let thread = Thread { [self] in self.run() }
        thread.name = "trove-curl"
        thread.start()
    }

    public func send(_ request: OriginRequest<ByteBuffer>, completion: @escaping Completion) {
        let accepted = inbox.withLock { inbox in
            guard !inbox.stopping else { return false }
            inbox.requests.append((request, completion))
            return true
        }
        guard accepted else {
            completion(.failure(OriginError(kind: .failed, origin: request.origin, reason: "Trove is shutting down")))
            return
        }
        _ = curl_multi_wakeup(multi.raw)
    }

    /// Asks the curl thread to resume or abort a streamed transfer (any thread).
    fileprivate func control(_ serial: UInt64, _ control: Control) {
        inbox.withLock { $0.controls.append((serial, control)) }
        _ = curl_multi_wakeup(multi.raw)
    }

    /// Fails the transfers in flight, stops the thread and frees libcurl's handles. Idempotent.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = inbox.withLock { inbox in
                inbox.stopping = true
                if inbox.finished { return true }
                inbox.stopped.append(continuation)
                return false
            }
            if finished {
                continuation.resume()
            } else {
                _ = curl_multi_wakeup(multi.raw)
            }
        }
    }

    // MARK: The curl thread

    /// All state of the loop is local to this function: nothing but the inbox is shared.
    private func run() {
        let handle = multi.raw
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        /// Streamed transfers by serial number, for their consumers' controls.
        var controlled: [UInt64: UnsafeMutableRawPointer] = [:]
        var nextSerial: UInt64 = 0
        var running: Int32 = 0
        while true {
            let (requests, controls, stopping) = inbox.withLock { inbox in
                defer {
                    inbox.requests.removeAll(keepingCapacity: true)
                    inbox.controls.removeAll(keepingCapacity: true)
                }
                return (inbox.requests, inbox.controls, inbox.stopping)
            }
            for (serial, control) in controls {
                guard let easy = controlled[serial], let transfer = active[easy] else { continue }
                switch control {
                case .resume:
                    // May call the write callback at once with what libcurl held back, which may pause it again.
                    _ = curl_easy_pause(easy, 0)  // CURLPAUSE_CONT
                case .abort:
                    active[easy] = nil
                    controlled[serial] = nil
                    _ = curl_multi_remove_handle(handle, easy)
                    transfer.fail(OriginError(kind: .failed, origin: transfer.origin, reason: "the client went away"))
                }
            }
            for (request, completion) in requests {
                if stopping {
                    completion(.failure(OriginError(kind: .failed, origin: request.origin, reason: "Trove is shutting down")))
                    continue
                }
                switch Transfer.start(request, completion: completion) {
                case .success(let transfer):
                    active[transfer.easy] = transfer
                    _ = curl_multi_add_handle(handle, transfer.easy)
                    if transfer.isControlled {
                        nextSerial += 1
                        let serial = nextSerial
                        transfer.serial = serial
                        controlled[serial] = transfer.easy
                        for control in [request.stream?.control, request.upload?.control].compactMap({ $0 }) {
                            control.attach(resume: { [self] in self.control(serial, .resume) }, abort: { [self] in self.control(serial, .abort) })
                        }
                    }
                case .failure(let error):
                    completion(.failure(error))
                }
            }
            if stopping { break }
            _ = curl_multi_perform(handle, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(handle, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let transfer = active.removeValue(forKey: easy)
                else { continue }
                if let serial = transfer.serial { controlled[serial] = nil }
                _ = curl_multi_remove_handle(handle, easy)
                transfer.finish(code: message.pointee.data.result)
            }
            _ = curl_multi_poll(handle, nil, 0, 1000, nil)
        }
        for (easy, transfer) in active {
            _ = curl_multi_remove_handle(handle, easy)
            transfer.fail(OriginError(kind: .failed, origin: transfer.origin, reason: "Trove is shutting down"))
        }
        curl_multi_cleanup(handle)
        let waiting = inbox.withLock { inbox in
            inbox.finished = true
            defer { inbox.stopped.removeAll() }
            return inbox.stopped
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// The multi handle, shared by the caller threads and the curl thread.
///
/// `@unchecked Sendable` is safe here because the only libcurl call made with it from other threads than the
/// curl thread is `curl_multi_wakeup`, which libcurl documents as callable from any thread; every other use
/// happens on the curl thread.
private struct MultiHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
}

/// One request in flight: the easy handle and what accumulates while the answer arrives. Created, used and
/// freed on the curl thread only (not `Sendable`).
private final class Transfer {
    let easy: UnsafeMutableRawPointer
    let origin: String
    private let completion: CurlOriginClient.Completion
    private let maxBytes: Int
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// libcurl writes its detailed error message here; it must stay put while the transfer exists.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var status = 0
    private var headers: [Header] = []
    private var body: ByteBuffer
    private var tooLarge = false
    /// Set for an answer handed over as it arrives (`OriginRequest.stream`).
    private let stream: OriginStream<ByteBuffer>?
    /// Set for a body read as the client sends it (`OriginRequest.upload`).
    let upload: OriginUpload?
    /// Its number among transfers a consumer may resume or abort (`CurlOriginClient.Control`).
    var serial: UInt64?
    var isControlled: Bool { stream != nil || upload != nil }
    private var headDelivered = false
    private var streamedBytes = 0
    /// This answer's share of the process-wide budget of answers being received; dropped (given back) when the
    /// transfer ends.
    private var reservation: BudgetReservation?
    private var overBudget = false
    private var finished = false
    private let timeout: Duration

    /// libcurl's receive buffer for a streamed answer whose window is `window` bytes: a quarter of it, within
    /// libcurl's default (16 KiB) and 1 MiB.
    static func receiveBuffer(window: Int) -> Int {
        min(1 << 20, max(16 << 10, window / 4))
    }

    private init(easy: UnsafeMutableRawPointer, request: OriginRequest<ByteBuffer>, completion: @escaping CurlOriginClient.Completion) {
        self.easy = easy
        self.origin = request.origin
        self.completion = completion
        self.maxBytes = request.maxResponseBytes
        self.timeout = request.timeout
        self.body = ByteBufferAllocator().buffer(capacity: 0)
        self.stream = request.stream
        self.upload = request.upload
        // A streamed answer holds a window, not a body: it takes no share of the budget.
        self.reservation = request.stream == nil ? request.budget.map { BudgetReservation(budget: $0, capacity: request.budgetCapacity) } : nil
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_slist_free_all(headerList)
        curl_easy_cleanup(easy)
        errorBuffer.deallocate()
    }

    static func start(
        _ request: OriginRequest<ByteBuffer>, completion: @escaping CurlOriginClient.Completion
    ) -> Result<Transfer, OriginError> {
        guard let easy = curl_easy_init() else {
            return .failure(OriginError(kind: .failed, origin: request.origin, reason: "libcurl could not create a transfer"))
        }
        let transfer = Transfer(easy: easy, request: request, completion: completion)
        transfer.configure(request)
        return .success(transfer)
    }

    private func configure(_ request: OriginRequest<ByteBuffer>) {
        // The callbacks find the transfer through this pointer; the curl thread's table of active transfers
        // keeps it alive for as long as libcurl may call them.
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = CCurlShim_easy_setopt_str(easy, CURLOPT_URL, request.url)
        _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_PRIVATE, context)
        _ = CCurlShim_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = CCurlShim_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1)  // Trove normalized the path already
        _ = CCurlShim_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = CCurlShim_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout.milliseconds))
        if request.stream == nil {
            _ = CCurlShim_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(request.timeout.milliseconds))
        } else {
            // A streamed answer lasts as long as the client takes to read it (the transfer pauses meanwhile, and a
            // paused transfer is not speed-checked): what is bounded is silence, the origin sending nothing for
            // its timeout, before the head or in the middle of the body.
            _ = CCurlShim_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
            _ = CCurlShim_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, Int(request.timeout.seconds)))
            // Each piece libcurl hands over is a hop to the client's event loop and a socket write: 16 KiB pieces
            // (libcurl's default) cost a 100 MB download 6,400 of each. A quarter of the window per piece keeps
            // four pieces in flight and costs each streaming transfer that buffer in libcurl.
            if let stream = request.stream {
                _ = CCurlShim_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, Self.receiveBuffer(window: stream.window))
            }
        }
        _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = CCurlShim_easy_setopt_write_cb(easy, CURLOPT_WRITEFUNCTION, writeCallback)
        _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, context)
        _ = CCurlShim_easy_setopt_write_cb(easy, CURLOPT_HEADERFUNCTION, headerCallback)
        _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, context)

        var names = Set<String>()
        for header in request.headers {
            names.insert(header.name.lowercased())
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        // Headers libcurl would add by itself are removed, so the origin gets what the client sent:
        // no "Expect: 100-continue" round trip, no made-up Accept or form Content-Type.
        headerList = curl_slist_append(headerList, "Expect:")
        if !names.contains("accept") { headerList = curl_slist_append(headerList, "Accept:") }

        switch request.method {
        case "GET":
            break
        case "HEAD":
            _ = CCurlShim_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        default:
            _ = CCurlShim_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, request.method)
            if let upload = request.upload {
                // Read as the client sends it: the declared length, or chunked when the client sent it chunked.
                if !names.contains("content-type") { headerList = curl_slist_append(headerList, "Content-Type:") }
                _ = CCurlShim_easy_setopt_long(easy, CURLOPT_POST, 1)
                _ = CCurlShim_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(upload.length ?? -1))
                _ = CCurlShim_easy_setopt_read_cb(easy, CURLOPT_READFUNCTION, readCallback)
                _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_READDATA, context)
                break
            }
            // Writes always carry a length (0 when empty); other methods only when the client sent a body.
            let body = request.body ?? (["POST", "PUT", "PATCH"].contains(request.method) ? ByteBuffer() : nil)
            if let body {
                if !names.contains("content-type") { headerList = curl_slist_append(headerList, "Content-Type:") }
                _ = CCurlShim_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.readableBytes))
                // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
                body.withUnsafeReadableBytes { raw in
                    if let base = raw.baseAddress, raw.count > 0 {
                        _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base))
                    } else {
                        _ = CCurlShim_easy_setopt_str(easy, CURLOPT_COPYPOSTFIELDS, "")
                    }
                }
            }
        }
        _ = CCurlShim_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
    }

    /// What the write callback returns for `bytes`: all of them taken, 0 (abort), or `CURL_WRITEFUNC_PAUSE`.
    fileprivate func received(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let stream else { return append(bytes) ? bytes.count : 0 }
        if stream.isCancelled { return 0 }
        deliverHead()
        guard stream.reserve(bytes.count) else { return Int(CURL_WRITEFUNC_PAUSE) }
        var piece = ByteBufferAllocator().buffer(capacity: bytes.count)
        piece.writeBytes(bytes)
        streamedBytes += bytes.count
        stream.push(piece)
        return bytes.count
    }

    /// Hands the final head to the stream, once.
    private func deliverHead() {
        guard let stream, !headDelivered, status >= 200 else { return }
        headDelivered = true
        stream.head(status: status, headers: headers)
    }

    fileprivate func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.readableBytes + bytes.count <= maxBytes else {
            tooLarge = true
            return false
        }
        if let reservation, !reservation.grow(by: bytes.count) {
            overBudget = true
            return false
        }
        body.writeBytes(bytes)
        return true
    }

    fileprivate func headerLine(_ line: Substring) {
        if line.hasPrefix("HTTP/") {
            // A new status line (after 100 Continue, for instance): the headers start over.
            headers.removeAll()
            let words = line.split(separator: " ", maxSplits: 2)
            status = words.count >= 2 ? Int(words[1]) ?? 0 : 0
            return
        }
        if line.isEmpty {
            // The end of a head: the final one goes to a stream now, so that an answer without a body (HEAD,
            // 204) has a head too.
            deliverHead()
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        headers.append(Header(name, value))
    }

    func finish(code: CURLcode) {
        guard !finished else { return }
        finished = true
        detach()
        // The answer leaves the curl thread now: what happens to its bytes next is bounded by the client's
        // connection (send_timeout), not by this budget.
        reservation = nil
        if code == CURLE_OK {
            var status = 0
            _ = CCurlShim_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            if stream != nil {
                deliverHead()
                completion(.success(OriginResponse(status: status, headers: headers, body: body, bodyLength: streamedBytes)))
            } else {
                completion(.success(OriginResponse(status: status, headers: headers, body: body, bodyLength: body.readableBytes)))
            }
            return
        }
        completion(.failure(error(for: code)))
    }

    func fail(_ error: OriginError) {
        guard !finished else { return }
        finished = true
        detach()
        reservation = nil
        completion(.failure(error))
    }

    /// The transfer is over: its consumer's resume and abort reach nothing any more.
    private func detach() {
        stream?.control.detach()
        upload?.control.detach()
    }

    private func error(for code: CURLcode) -> OriginError {
        let detail = String(cString: errorBuffer)
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        if tooLarge {
            return OriginError(kind: .tooLarge, origin: origin, reason: "the body exceeds \(maxBytes) bytes")
        }
        if overBudget {
            return OriginError(kind: .overloaded, origin: origin, reason: "limits.response_body_budget is in use")
        }
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return OriginError(kind: .unreachable, origin: origin, reason: reason)
        case CURLE_OPERATION_TIMEDOUT:
            // A timeout before the connection was made means the origin could not be reached.
            var connected: Double = 0
            _ = CCurlShim_easy_getinfo_double(easy, CURLINFO_CONNECT_TIME, &connected)
            if connected == 0 {
                return OriginError(kind: .unreachable, origin: origin, reason: reason)
            }
            return OriginError(kind: .timeout, origin: origin, reason: "no whole answer within \(Units.format(timeout))")
        default:
            return OriginError(kind: .failed, origin: origin, reason: reason)
        }
    }
}

/// A C function pointer built from a closure without captures: the transfer comes back through `userdata`.
private let writeCallback: curl_write_callback = { data, size, count, userdata in
    guard let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    guard length > 0, let data else { return length }
    return transfer.received(UnsafeRawBufferPointer(start: data, count: length))
}

/// Hands libcurl the next bytes of a body the client is still sending.
private let readCallback: curl_read_callback = { buffer, size, count, userdata in
    guard let userdata, let buffer else { return Int(CURL_READFUNC_ABORT) }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    guard let upload = transfer.upload else { return 0 }
    switch upload.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count)) {
    case .bytes(let copied): return copied
    case .pause: return Int(CURL_READFUNC_PAUSE)
    case .end: return 0
    case .abort: return Int(CURL_READFUNC_ABORT)
    }
}

/// Called once per header line, status lines included.
private let headerCallback: curl_write_callback = { data, size, count, userdata in
    let length = size * count
    guard let userdata, let data, length > 0 else { return length }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    transfer.headerLine(Substring(line.trimmingCharacters(in: .newlines)))
    return length
}
