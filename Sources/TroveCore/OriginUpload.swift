internal import Synchronization

/// A request body handed to the origin as it arrives from the client, for a write that is forwarded as soon as
/// its head is read: at most `window` bytes are held between the two. Past the window the connection stops
/// reading from the client (`append` says so, and `room` says when to read again); when nothing is held, the
/// origin client pauses the transfer until more arrives.
///
/// Shared by two threads: the connection's, which calls `append`, `finish` and `cancel`, and the origin
/// client's, which calls `read`.
public final class OriginUpload: Sendable {
    /// What the origin client gets for a read.
    public enum Read: Equatable, Sendable {
        /// This many bytes were copied.
        case bytes(Int)
        /// Nothing is held now: pause until `resume`.
        case pause
        /// The body ended.
        case end
        /// The client went away: abort the transfer.
        case abort
    }

    private struct State {
        var pieces: [[UInt8]] = []
        /// Bytes of `pieces[0]` already read.
        var offset = 0
        var held = 0
        var finished = false
        /// The origin client found nothing to read and waits for `resume`.
        var waiting = false
        /// The connection was told the window is full and waits for `room`.
        var full = false
    }

    public let window: Int
    /// The body's length, when the client declared it (`Content-Length`); nil: chunked.
    public let length: Int?
    private let state = Mutex(State())
    /// How the origin client is resumed and aborted (`attach` it when the transfer starts).
    public let control = TransferControl()
    private let room: @Sendable () -> Void

    /// - Parameter room: called (on the origin client's thread) when the window, once full, is half free again.
    public init(window: Int, length: Int?, room: @escaping @Sendable () -> Void) {
        self.window = max(1, window)
        self.length = length
        self.room = room
    }

    // MARK: The connection's side

    /// Hands over a piece of the body; false when the window is now full (stop reading until `room`).
    public func append(_ bytes: [UInt8]) -> Bool {
        guard !control.isCancelled else { return true }
        let (resumes, full) = state.withLock { state -> (Bool, Bool) in
            state.pieces.append(bytes)
            state.held += bytes.count
            // Once full, full until the origin has read it down to half: the connection stopped reading when it
            // was told, and pieces it had already decoded may still arrive; if one of them found the window
            // below full again and cleared this, the origin's read would never call `room`, and the upload would
            // stall with the client not being read.
            if state.held >= window { state.full = true }
            defer { state.waiting = false }
            return (state.waiting, state.full)
        }
        if resumes { control.resume() }
        return !full
    }

    /// The body ended.
    public func finish() {
        let resumes = state.withLock { state -> Bool in
            state.finished = true
            defer { state.waiting = false }
            return state.waiting
        }
        if resumes { control.resume() }
    }

    /// The client went away: the transfer is aborted.
    public func cancel() {
        guard control.cancel() else { return }
        state.withLock { $0.pieces = [] }
    }

    // MARK: The origin client's side

    /// Copies what is held into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Read {
        if control.isCancelled { return .abort }
        let (result, freed): (Read, Bool) = state.withLock { state in
            var copied = 0
            while copied < buffer.count, !state.pieces.isEmpty {
                let piece = state.pieces[0]
                let count = min(buffer.count - copied, piece.count - state.offset)
                piece.withUnsafeBytes { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + count)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[state.offset..<(state.offset + count)]))
                }
                copied += count
                state.offset += count
                if state.offset == piece.count {
                    state.pieces.removeFirst()
                    state.offset = 0
                }
            }
            state.held -= copied
            var freed = false
            if state.full, state.held <= window / 2 {
                state.full = false
                freed = true
            }
            if copied > 0 { return (.bytes(copied), freed) }
            if state.finished { return (.end, freed) }
            state.waiting = true
            return (.pause, freed)
        }
        if freed { room() }
        return result
    }
}
