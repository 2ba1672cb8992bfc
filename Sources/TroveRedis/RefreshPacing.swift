internal import NIOCore

/// When a topology may be read again (the master the sentinels name, a cluster's slots): one read at a time, at
/// most one start per `spacing`, and any number of requests made while one runs, or too soon after one began,
/// make exactly one more read. Every loop's connection asks at once when Redis goes; this makes it one query.
struct RefreshPacing {
    enum Decision: Equatable {
        case startNow
        case startAt(NIODeadline)
        case nothing
    }

    let spacing: TimeAmount
    private var running = false
    /// A request came while a read ran: one more is owed.
    private var owed = false
    private var scheduled = false
    private var lastStart: NIODeadline?

    init(spacing: TimeAmount = .milliseconds(100)) {
        self.spacing = spacing
    }

    /// Someone wants a fresh read.
    mutating func request(now: NIODeadline) -> Decision {
        if running {
            owed = true
            return .nothing
        }
        if scheduled { return .nothing }
        if let lastStart, now - lastStart < spacing {
            scheduled = true
            return .startAt(lastStart + spacing)
        }
        running = true
        lastStart = now
        return .startNow
    }

    /// The time a `.startAt` gave has come.
    mutating func due(now: NIODeadline) -> Decision {
        scheduled = false
        return request(now: now)
    }

    /// The read that started ended, however it went.
    mutating func finished(now: NIODeadline) -> Decision {
        running = false
        guard owed else { return .nothing }
        owed = false
        return request(now: now)
    }
}

/// Something that reads a topology on its event loop, paced by `RefreshPacing`: `refresh()` asks for a read,
/// `query()` is the read (started only through the pacing), `queryEnded()` is called when it ends.
protocol PacedRefresher: AnyObject {
    var eventLoop: any EventLoop { get }
    var stopped: Bool { get }
    var pacing: RefreshPacing { get set }
    func query()
}

extension PacedRefresher {
    func refresh() {
        guard !stopped else { return }
        act(pacing.request(now: .now()))
    }

    func queryEnded() {
        act(pacing.finished(now: .now()))
    }

    private func act(_ decision: RefreshPacing.Decision) {
        switch decision {
        case .startNow: query()
        case .startAt(let deadline): eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.act(self.pacing.due(now: .now())) }
        case .nothing: break
        }
    }
}
