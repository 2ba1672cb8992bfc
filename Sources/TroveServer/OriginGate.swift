internal import TroveHTTP
public import NIOCore
internal import Synchronization
internal import TroveCore
public import TroveRules

/// Keeps Trove within an origin's limits: at most `max_concurrency` requests in flight, at most `rate` a
/// second (with a `burst`), and a bounded, time-limited queue for what must wait. Past the queue a request
/// is refused at once, so Trove answers from a stale entry or with 503 and `Retry-After`; an origin's 429
/// with `Retry-After` pauses everything for that long.
///
/// Shared by every event loop. Grants are delivered on the requester's loop.
public final class OriginGate: Sendable {
    /// The answer to `acquire`.
    public enum Grant: Sendable {
        /// Go ahead; call `release()` when the origin has answered or failed.
        case granted
        /// Do not send: the origin is at its limit.
        case refused(retryAfter: Int, reason: String)
    }

    private struct Waiting {
        let deadline: NIODeadline
        let loop: any EventLoop
        let callback: @Sendable (Grant) -> Void
    }

    private struct State {
        var bucket: TokenBucket?
        /// The origin said 429 with `Retry-After`: nothing is sent before this.
        var pausedUntil: NIODeadline?
        var inFlight = 0
        var queue: [Waiting] = []
        var timerPending = false
    }

    public let origin: String
    public let protection: OriginProtection
    private let state: Mutex<State>
    private let timerLoop: any EventLoop

    public init(origin: String, protection: OriginProtection, timerLoop: any EventLoop) {
        self.origin = origin
        self.protection = protection
        self.timerLoop = timerLoop
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        state = Mutex(State(bucket: protection.rate.map { TokenBucket(rate: $0, capacity: protection.burst, now: now) }))
    }

    /// Asks to send one request. `background` requests (refreshes of stale entries) never wait in the queue:
    /// a refresh can happen on a later request instead.
    public func acquire(on loop: any EventLoop, background: Bool = false, _ callback: @escaping @Sendable (Grant) -> Void) {
        let now = NIODeadline.now()
        let decision: Grant? = state.withLock { state in
            if state.queue.isEmpty, Self.take(&state, protection: protection, now: now) {
                // The common case, and the only one for an origin without limits: no queue, a slot at once.
                return .granted
            }
            if background || state.queue.count >= protection.queue {
                return .refused(retryAfter: Self.retryAfter(state, protection: protection, now: now),
                    reason: refusal(state, background: background))
            }
            state.queue.append(Waiting(deadline: now + .nanoseconds(protection.queueTimeout.nanoseconds), loop: loop, callback: callback))
            return nil
        }
        if let decision {
            callback(decision)
        } else {
            drain()
        }
    }

    /// The request that was granted has ended.
    public func release() {
        state.withLock { $0.inFlight -= 1 }
        drain()
    }

    /// The origin answered 429: send nothing more for `seconds`.
    public func slowDown(for seconds: Int) {
        let until = NIODeadline.now() + .seconds(Int64(max(1, seconds)))
        state.withLock { state in
            state.pausedUntil = max(state.pausedUntil ?? until, until)
        }
        scheduleDrain(after: .seconds(Int64(max(1, seconds))))
    }

    /// Requests in flight and waiting, for statistics.
    public var load: (inFlight: Int, waiting: Int) {
        state.withLock { ($0.inFlight, $0.queue.count) }
    }

    // MARK: Internals

    private static func take(_ state: inout State, protection: OriginProtection, now: NIODeadline) -> Bool {
        if let paused = state.pausedUntil {
            if paused > now { return false }
            state.pausedUntil = nil
        }
        if let max = protection.maxConcurrency, state.inFlight >= max { return false }
        if state.bucket != nil, !state.bucket!.take(now: Int64(now.uptimeNanoseconds)) { return false }
        state.inFlight += 1
        return true
    }

    private static func retryAfter(_ state: State, protection: OriginProtection, now: NIODeadline) -> Int {
        var bucket = state.bucket
        var wait = Double(bucket?.wait(now: Int64(now.uptimeNanoseconds)) ?? 0) / 1e9
        if let paused = state.pausedUntil, paused > now { wait = max(wait, Double((paused - now).nanoseconds) / 1e9) }
        let perSecond = protection.rate ?? 1
        // At most a day: a client told to come back later than that learns nothing more useful.
        return min(86_400, max(1, Int(clamping: (wait + Double(state.queue.count) / perSecond).rounded(.up))))
    }

    private func refusal(_ state: State, background: Bool) -> String {
        var limits: [String] = []
        if let rate = protection.rate { limits.append("\(Self.format(rate)) requests/s") }
        if let max = protection.maxConcurrency { limits.append("\(max) at once") }
        if let paused = state.pausedUntil, paused > NIODeadline.now() { limits.append("it answered 429: paused") }
        let what = background ? "no refresh now" : "\(state.queue.count) requests already wait"
        return "origin '\(origin)' is at its limit (\(limits.joined(separator: ", "))); \(what)"
    }

    private static func format(_ rate: Double) -> String {
        rate == rate.rounded() ? String(Int(rate)) : String((rate * 100).rounded() / 100)
    }

    /// Grants what can go now, refuses what waited too long, and sets a timer for the next change.
    private func drain() {
        let now = NIODeadline.now()
        var decisions: [(Waiting, Grant)] = []
        var wake: TimeAmount?
        state.withLock { state in
            while let first = state.queue.first {
                if first.deadline <= now {
                    state.queue.removeFirst()
                    decisions.append((first, .refused(
                        retryAfter: Self.retryAfter(state, protection: protection, now: now),
                        reason: "origin '\(origin)' is at its limit, and this request waited \(Units.format(protection.queueTimeout)) for its turn")))
                } else if Self.take(&state, protection: protection, now: now) {
                    state.queue.removeFirst()
                    decisions.append((first, .granted))
                } else {
                    break
                }
            }
            guard let first = state.queue.first, !state.timerPending else { return }
            // Waiting for a token (the bucket says when) or for a slot (a release wakes us), and never past
            // the first deadline.
            var next = first.deadline - now
            if var bucket = state.bucket {
                let tokenWait = bucket.wait(now: Int64(now.uptimeNanoseconds))
                if tokenWait > 0 { next = min(next, .nanoseconds(tokenWait)) }
            }
            if let paused = state.pausedUntil, paused > now { next = min(next, paused - now) }
            state.timerPending = true
            wake = max(next, .milliseconds(1))
        }
        for (waiting, grant) in decisions {
            waiting.loop.execute { waiting.callback(grant) }
        }
        if let wake { scheduleDrain(after: wake, alreadyMarked: true) }
    }

    private func scheduleDrain(after delay: TimeAmount, alreadyMarked: Bool = false) {
        if !alreadyMarked {
            let already = state.withLock { state in
                defer { state.timerPending = true }
                return state.timerPending
            }
            if already { return }
        }
        timerLoop.scheduleTask(in: delay) { [self] in
            state.withLock { $0.timerPending = false }
            drain()
        }
    }
}

/// The gates of the origins the rules name, rebuilt for origins whose limits change on reload.
public final class OriginGates: Sendable {
    private let gates: Mutex<[String: OriginGate]>
    private let timerLoop: any EventLoop

    public init(rules: RuleSet, timerLoop: any EventLoop) {
        self.timerLoop = timerLoop
        gates = Mutex([:])
        update(for: rules)
    }

    /// The gate of `origin`. Origins without limits have one too, so that their 429s are honoured.
    public func gate(for origin: String) -> OriginGate? {
        gates.withLock { $0[origin] }
    }

    /// Keeps the gates of unchanged origins (and their counts), builds new ones for changed limits.
    public func update(for rules: RuleSet) {
        gates.withLock { gates in
            var next: [String: OriginGate] = [:]
            for origin in rules.origins {
                if let existing = gates[origin.name], existing.protection == origin.protection {
                    next[origin.name] = existing
                } else {
                    next[origin.name] = OriginGate(origin: origin.name, protection: origin.protection, timerLoop: timerLoop)
                }
            }
            gates = next
        }
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64's range (about 292 years).
    var nanoseconds: Int64 {
        components.seconds.multipliedClamped(by: 1_000_000_000).addingClamped(components.attoseconds / 1_000_000_000)
    }
}
