public import TroveHTTP
public import NIOCore
internal import Synchronization
public import TroveCore

/// The in-memory twin of the origin client: answers from a script, and records what it was asked.
public final class ScriptedOrigin: OriginClient, Sendable {
    public typealias Body = ByteBuffer
    public typealias Script = @Sendable (OriginRequest<ByteBuffer>) -> Result<OriginResponse<ByteBuffer>, OriginError>

    private let script: Script
    private let recorded = Mutex<[OriginRequest<ByteBuffer>]>([])

    public init(_ script: @escaping Script) {
        self.script = script
    }

    /// Answers every request with `status`, `body` and `headers`.
    public convenience init(status: Int = 200, body: String = "answer", headers: [Header] = [Header("Content-Type", "text/plain")]) {
        self.init { _ in
            .success(OriginResponse(status: status, headers: headers, body: ByteBuffer(string: body), bodyLength: body.utf8.count))
        }
    }

    /// The requests received so far.
    public var requests: [OriginRequest<ByteBuffer>] { recorded.withLock { $0 } }

    public func send(_ request: OriginRequest<ByteBuffer>, completion: @escaping @Sendable (Result<OriginResponse<ByteBuffer>, OriginError>) -> Void) {
        guard let upload = request.upload else {
            recorded.withLock { $0.append(request) }
            return completion(script(request))
        }
        // A body still arriving: read it whole, as the origin would, then answer (recorded with the body).
        let reader = UploadReader(upload: upload) { [self] result in
            switch result {
            case .success(let body):
                var whole = request
                whole.upload = nil
                whole.body = body
                recorded.withLock { $0.append(whole) }
                completion(script(whole))
            case .failure(let error):
                completion(.failure(OriginError(kind: .failed, origin: request.origin, reason: "\(error)")))
            }
        }
        upload.control.attach(resume: { reader.pump() }, abort: { reader.pump() })
        reader.pump()
    }
}

/// Reads an upload to its end for `ScriptedOrigin`, from whichever thread hands it more.
private final class UploadReader: Sendable {
    struct Aborted: Error {}

    private let upload: OriginUpload
    private let done: @Sendable (Result<ByteBuffer, Aborted>) -> Void
    private let state = Mutex<(body: ByteBuffer, finished: Bool)>((ByteBuffer(), false))

    init(upload: OriginUpload, done: @escaping @Sendable (Result<ByteBuffer, Aborted>) -> Void) {
        self.upload = upload
        self.done = done
    }

    func pump() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let read = buffer.withUnsafeMutableBytes { upload.read(into: $0) }
            let outcome: Result<ByteBuffer, Aborted>? = state.withLock { state in
                guard !state.finished else { return nil }
                switch read {
                case .bytes(let count):
                    state.body.writeBytes(buffer[..<count])
                    return nil
                case .pause:
                    return nil
                case .end:
                    state.finished = true
                    return .success(state.body)
                case .abort:
                    state.finished = true
                    return .failure(Aborted())
                }
            }
            if let outcome { return done(outcome) }
            if case .bytes = read { continue }
            return
        }
    }
}
