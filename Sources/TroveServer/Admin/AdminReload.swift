internal import NIOCore
/// `POST /reload`: re-reads the rules file; refused (and the rules in force kept) when it has errors.
enum AdminReload {
    /// Reads the file off the event loop (it is file I/O), and answers with what happened.
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        guard let reload = request.environment.reload else {
            return answer(.error(409, "these rules were not read from a file, so there is nothing to re-read"))
        }
        let promise = request.eventLoop.makePromise(of: ReloadOutcome.self)
        Task { promise.succeed(reload()) }
        promise.futureResult.assumeIsolated().whenSuccess { outcome in
            if outcome.applied {
                answer(.json(200, ["applied": true, "version": outcome.version, "warnings": outcome.diagnostics,
                    "needs_restart": outcome.needsRestart]))
            } else {
                answer(.json(400, ["applied": false, "version": outcome.version, "errors": outcome.diagnostics,
                    "error": "the rules file was refused; the rules in force stay"]))
            }
        }
    }
}
