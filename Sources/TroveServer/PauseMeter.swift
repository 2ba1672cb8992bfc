internal import NIOCore
internal import Synchronization

/// Times the pauses of one side of one exchange's stream, for `ProxyMetrics`: counted as paused from the first
/// `pause` to the next `resume`, however often each is repeated in between (a full window is reported on every
/// refused piece; ending a transfer resumes it whether or not it was paused).
final class PauseMeter: Sendable {
    private let metrics: ProxyMetrics
    private let side: ProxyMetrics.PausedFor
    private let since = Mutex<NIODeadline?>(nil)

    init(_ metrics: ProxyMetrics, waitingFor side: ProxyMetrics.PausedFor) {
        self.metrics = metrics
        self.side = side
    }

    func set(_ paused: Bool) {
        if paused { pause() } else { resume() }
    }

    func pause() {
        let started = since.withLock { since -> Bool in
            guard since == nil else { return false }
            since = .now()
            return true
        }
        if started { metrics.recordPause(side, started: true) }
    }

    func resume() {
        guard let started = since.withLock({ since -> NIODeadline? in
            defer { since = nil }
            return since
        }) else { return }
        metrics.recordPause(side, started: false, nanoseconds: (NIODeadline.now() - started).nanoseconds)
    }
}
