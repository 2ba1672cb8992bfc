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
        recorded.withLock { $0.append(request) }
        completion(script(request))
    }
}
