internal import Synchronization

/// A body that can be received in pieces and joined back into one for the store.
public protocol FillableBody: Sendable {
    var byteCount: Int { get }
    static func joined(_ pieces: [Self], byteCount: Int) -> Self
}

extension Array: FillableBody where Element == UInt8 {
    public var byteCount: Int { count }
    public static func joined(_ pieces: [[UInt8]], byteCount: Int) -> [UInt8] {
        var whole: [UInt8] = []
        whole.reserveCapacity(byteCount)
        for piece in pieces { whole.append(contentsOf: piece) }
        return whole
    }
}

/// A cacheable origin answer while it arrives (read-while-write): the request that fetched it and every request
/// coalesced on it read the body as it comes, each at its own pace, while it is kept whole for the store.
///
/// Two modes, decided once the answer's head has been judged:
/// - **kept** (storable, and no bigger than `limit` so far): every piece is kept for the store, and the origin
///   is never paused for a reader (what is kept is bounded by the route's `max_body` and the response body
///   budget anyway). A reader may join at any time and starts from the first byte. An answer that outgrows the
///   limit, or the budget, is no longer kept and falls to the second mode.
/// - **passed**: a piece is dropped once every reader has taken it, and the origin is paused while the slowest
///   reader is more than `window` bytes behind: memory is a window, whatever the size. A reader that comes after
///   the first piece was dropped cannot join.
///
/// Each reader has at most `window` bytes handed to it and not yet `consumed` (written to its socket). While the
/// answer is kept and not yet `seal`ed, the last piece received is held back from readers: a client must not see
/// the answer's end before the entry is in the store, or its next request could miss.
///
/// Shared by the origin client's thread (`append`, `finish`) and the readers' event loops (`join`, `consumed`,
/// `leave`). One lock per fill, held while the fill's own readers are walked; readers' callbacks are called under
/// it (they only hop to their event loop), which keeps each reader's events in order.
public final class EntryFill<Body: FillableBody>: Sendable {
    /// What a reader is handed.
    public enum Event: Sendable {
        case pieces([Body])
        /// The body is whole (success) or broke off (failure); nothing follows.
        case end(Result<Void, OriginError>)
    }

    /// How the answer is treated, once its head was judged.
    public enum Decision: Sendable {
        /// Keep it for the store, up to `limit` bytes; `grow` asks the response body budget for more room.
        case keep(limit: Int, grow: @Sendable (Int) -> Bool)
        /// Not stored: pass it on to readers.
        case pass
    }

    private enum Mode {
        case undecided
        case kept(limit: Int, grow: @Sendable (Int) -> Bool)
        case passed
    }

    private struct Reader {
        var next: Int
        var outstanding: Int
        let deliver: @Sendable (Event) -> Void
    }

    private struct State {
        var mode = Mode.undecided
        /// Pieces from `dropped` on (indices are counted from the answer's first piece).
        var pieces: [Body] = []
        var dropped = 0
        var received = 0
        /// Bytes in `pieces`.
        var held = 0
        /// Bytes handed to the origin stream's `consumed`, so it may go on.
        var released = 0
        var ended: Result<Void, OriginError>?
        var sealed = false
        var cancelled = false
        var readers: [Int: Reader] = [:]
        var nextReader = 0
        /// Whether a reader ever joined (a passed answer with no reader left is abandoned).
        var everRead = false
        var declaredLength: Int?
    }

    /// Bytes a reader may have in hand, and a passed answer may hold beyond its slowest reader.
    public let window: Int
    private let state = Mutex(State())
    private let origin = Mutex<(release: @Sendable (Int) -> Void, abort: @Sendable () -> Void)?>(nil)

    public init(window: Int) {
        self.window = max(1, window)
    }

    /// How the fill tells the origin transfer to go on (`release`: bytes it no longer holds back) or stop.
    public func connect(release: @escaping @Sendable (Int) -> Void, abort: @escaping @Sendable () -> Void) {
        origin.withLock { $0 = (release, abort) }
    }

    // MARK: The origin's side

    /// A piece arrived.
    public func append(_ piece: Body) {
        let count = piece.byteCount
        guard count > 0 else { return }
        let (release, abandoned) = state.withLock { state -> (Int, Bool) in
            guard !state.cancelled, state.ended == nil else { return (0, false) }
            state.pieces.append(piece)
            state.received += count
            state.held += count
            if case .kept(let limit, let grow) = state.mode, state.received > limit || !grow(count) {
                state.mode = .passed
                // Outgrown with nobody reading (a HEAD, a 304 to its client): nothing left to fetch it for.
                if state.readers.isEmpty { return (0, true) }
            }
            deliverAll(&state)
            return (releasable(&state), false)
        }
        if abandoned {
            cancel(OriginError(kind: .failed, origin: "", reason: "the answer outgrew what is stored, and nobody reads it"))
        } else if release > 0 {
            origin.withLock { $0 }?.release(release)
        }
    }

    /// The origin's transfer ended. A kept answer's readers still wait for `seal`.
    public func finish(_ result: Result<Void, OriginError>) {
        // Nothing more to release or abort; and the transfer's closures (which reach the request) are let go.
        origin.withLock { $0 = nil }
        state.withLock { state in
            guard state.ended == nil else { return }
            state.ended = result
            // A kept (or not yet judged) answer that ended whole waits for `seal`: the store comes first.
            switch (state.mode, result) {
            case (.passed, _), (_, .failure): state.sealed = true
            case (.kept, .success), (.undecided, .success): break
            }
            deliverAll(&state)
        }
    }

    // MARK: The fetching request's side

    /// Decides how the answer is treated (once; later calls do nothing).
    public func decide(_ decision: Decision) {
        let release = state.withLock { state -> Int in
            guard case .undecided = state.mode else { return 0 }
            switch decision {
            case .keep(let limit, let grow):
                state.mode = state.received <= limit && grow(state.received) ? .kept(limit: limit, grow: grow) : .passed
            case .pass:
                state.mode = .passed
            }
            if case .passed = state.mode, state.ended != nil { state.sealed = true }
            deliverAll(&state)
            return releasable(&state)
        }
        if release > 0 { origin.withLock { $0 }?.release(release) }
    }

    public var isUndecided: Bool {
        state.withLock { if case .undecided = $0.mode { true } else { false } }
    }

    /// The whole body, when it ended whole and was kept; nil otherwise.
    public func wholeBody() -> Body? {
        state.withLock { state in
            guard case .kept = state.mode, case .success = state.ended, state.dropped == 0 else { return nil }
            return Body.joined(state.pieces, byteCount: state.received)
        }
    }

    /// The body's length as the origin declared it (`Content-Length`), for readers' framing; set with the head.
    public var declaredLength: Int? {
        get { state.withLock { $0.declaredLength } }
        set { state.withLock { $0.declaredLength = newValue } }
    }

    /// Bytes received so far.
    public var received: Int { state.withLock { $0.received } }

    /// True while every byte received is kept (so far storable).
    public var isKept: Bool {
        state.withLock { if case .kept = $0.mode { true } else { false } }
    }

    /// The entry is stored (or will not be): readers get the rest and the end.
    public func seal() {
        state.withLock { state in
            guard !state.sealed else { return }
            state.sealed = true
            deliverAll(&state)
        }
    }

    /// Nobody wants the answer: the origin transfer is aborted, and readers are told it broke off.
    public func cancel(_ reason: OriginError) {
        let abort = state.withLock { state -> Bool in
            guard !state.cancelled else { return false }
            state.cancelled = true
            if state.ended == nil {
                state.ended = .failure(reason)
                state.sealed = true
                deliverAll(&state)
            }
            return true
        }
        if abort { origin.withLock { origin in defer { origin = nil }; return origin }?.abort() }
    }

    // MARK: A reader's side

    /// Joins as a reader from the first byte; nil when that byte is gone (a passed answer). `deliver` is called
    /// with this reader's events in order, on any thread.
    public func join(_ handler: @escaping @Sendable (Event) -> Void) -> Int? {
        state.withLock { state -> Int? in
            guard state.dropped == 0 else { return nil }
            if case .failure = state.ended { return nil }
            let id = state.nextReader
            state.nextReader += 1
            state.everRead = true
            state.readers[id] = Reader(next: 0, outstanding: 0, deliver: handler)
            deliver(&state, id)
            return id
        }
    }

    /// The reader wrote `count` of the bytes it was handed.
    public func consumed(_ reader: Int, _ count: Int) {
        let release = state.withLock { state -> Int in
            guard state.readers[reader] != nil else { return 0 }
            state.readers[reader]!.outstanding = max(0, state.readers[reader]!.outstanding - count)
            deliver(&state, reader)
            return releasable(&state)
        }
        if release > 0 { origin.withLock { $0 }?.release(release) }
    }

    /// The reader is gone. A passed answer that nobody reads any more is aborted.
    public func leave(_ reader: Int) {
        let (release, abandoned) = state.withLock { state -> (Int, Bool) in
            guard state.readers.removeValue(forKey: reader) != nil else { return (0, false) }
            if case .passed = state.mode, state.readers.isEmpty, state.ended == nil { return (0, true) }
            return (releasable(&state), false)
        }
        if abandoned {
            cancel(OriginError(kind: .failed, origin: "", reason: "every client reading the answer left"))
        } else if release > 0 {
            origin.withLock { $0 }?.release(release)
        }
    }

    public var readerCount: Int { state.withLock { $0.readers.count } }

    // MARK: Under the lock

    private func deliverAll(_ state: inout State) {
        for id in state.readers.keys { deliver(&state, id) }
    }

    /// Hands reader `id` what it may have: pieces up to its window (one at least when it holds nothing), all
    /// but the last while a kept (or unjudged) answer is not sealed; then the end.
    private func deliver(_ state: inout State, _ id: Int) {
        guard var reader = state.readers[id] else { return }
        var holdsBack = !state.sealed
        if case .passed = state.mode { holdsBack = false }
        let available = state.dropped + state.pieces.count - (holdsBack ? 1 : 0)
        var batch: [Body] = []
        while reader.next < available, reader.outstanding < window {
            let piece = state.pieces[reader.next - state.dropped]
            batch.append(piece)
            reader.outstanding += piece.byteCount
            reader.next += 1
        }
        if !batch.isEmpty { reader.deliver(.pieces(batch)) }
        if state.sealed, reader.next == state.dropped + state.pieces.count, let ended = state.ended {
            reader.deliver(.end(ended))
            state.readers[id] = nil
            return
        }
        state.readers[id] = reader
    }

    /// Drops what no reader needs (a passed answer) and returns how many more bytes the origin may send: all of a
    /// kept answer; of a passed one, what the slowest reader has taken.
    private func releasable(_ state: inout State) -> Int {
        switch state.mode {
        case .undecided:
            return 0
        case .kept:
            defer { state.released = state.received }
            return state.received - state.released
        case .passed:
            let slowest = state.readers.values.map(\.next).min() ?? (state.everRead ? state.dropped + state.pieces.count : state.dropped)
            let drop = max(0, slowest - state.dropped)
            if drop > 0 {
                for piece in state.pieces[0..<drop] { state.held -= piece.byteCount }
                state.pieces.removeFirst(drop)
                state.dropped += drop
            }
            // What is no longer held may be sent again; what was kept before is released already.
            let shouldBeReleased = state.received - state.held
            guard shouldBeReleased > state.released else { return 0 }
            defer { state.released = shouldBeReleased }
            return shouldBeReleased - state.released
        }
    }
}
