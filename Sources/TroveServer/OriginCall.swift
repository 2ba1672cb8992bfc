internal import TroveHTTP
public import NIOCore
public import TroveCore

/// What asking an origin came to.
public enum OriginCallResult: Sendable {
    case response(OriginResponse<ByteBuffer>)
    case failed(OriginError)
    /// The origin's gate refused: nothing was sent.
    case busy(retryAfter: Int, reason: String)
}

extension ProxyEnvironment {
    /// Sends `request` through its origin's gate, and completes on `loop`. Releases the gate's slot when the
    /// origin is done, and pauses the gate when the origin answers 429.
    func call(_ request: OriginRequest<ByteBuffer>, on loop: any EventLoop, background: Bool = false) -> EventLoopFuture<OriginCallResult> {
        let promise = loop.makePromise(of: OriginCallResult.self)
        let origins = self.origins
        let metrics = self.metrics
        // Timed from the moment the request leaves (after any wait at the origin's gate) to its answer.
        @Sendable func send(_ completion: @escaping @Sendable (Result<OriginResponse<ByteBuffer>, OriginError>) -> Void) {
            let started = NIODeadline.now()
            origins.send(request) { result in
                let failed = result.isFailure
                metrics.recordOrigin(request.origin, nanoseconds: (NIODeadline.now() - started).nanoseconds, failed: failed)
                if case .failure(let error) = result {
                    switch error.kind {
                    case .tooLarge: metrics.recordLimit(.maxResponseBody)
                    case .overloaded: metrics.recordLimit(.responseBodyBudget)
                    case .unreachable, .timeout, .failed: break
                    }
                }
                completion(result)
            }
        }
        guard let gate = gates.gate(for: request.origin) else {
            send { result in promise.succeed(result.get(orElse: OriginCallResult.failed)) }
            return promise.futureResult
        }
        gate.acquire(on: loop, background: background) { grant in
            switch grant {
            case .refused(let retryAfter, let reason):
                promise.succeed(.busy(retryAfter: retryAfter, reason: reason))
            case .granted:
                send { result in
                    gate.release()
                    if case .success(let response) = result, response.status == 429 {
                        gate.slowDown(for: Self.retryAfter(response.headers))
                    }
                    promise.succeed(result.get(orElse: OriginCallResult.failed))
                }
            }
        }
        return promise.futureResult
    }

    /// Seconds from a `Retry-After` header (delay-seconds form); 1 when absent or a date.
    static func retryAfter(_ headers: [Header]) -> Int {
        let value = headers.value(of: "retry-after")?.trimmingWhitespace()
        return value.flatMap(Int.init).map { min(max(1, $0), 3600) } ?? 1
    }
}

extension Result where Success == OriginResponse<ByteBuffer>, Failure == OriginError {
    fileprivate func get(orElse failure: (OriginError) -> OriginCallResult) -> OriginCallResult {
        switch self {
        case .success(let response): .response(response)
        case .failure(let error): failure(error)
        }
    }
}
