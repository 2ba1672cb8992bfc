internal import NIOCore
internal import TroveCore

/// An answer written to its client as its body arrives, and how far it got: from the origin, not stored
/// (`OriginStream`), or from an answer being stored that several requests read while it is written
/// (`EntryFill`). Confined to the connection's event loop.
final class StreamedAnswer {
    /// Tells the source that `count` bytes handed over were written to the socket (so it may send more).
    var consumed: (Int) -> Void
    /// Tells the source the client is gone (or does not want the body).
    var leave: () -> Void
    /// The body's length, when its source said (the origin's `Content-Length`): the answer is framed by it.
    var declaredLength: Int?
    var headReceived = false
    /// The head went to the client; pieces now go out as they arrive.
    var started = false
    /// Pieces that arrived before the head went out: bounded by the source's window.
    var pending: [ByteBuffer] = []
    var chunked = false
    var keepAlive = true
    var omitBody = false
    /// The transfer ended (nil: whole; else how it failed) before the head went out.
    var ended: OriginError??
    var bytes = 0
    /// The last write to the client: a connection that closes after the answer closes once it is out.
    var lastWrite: EventLoopFuture<Void>?
    /// Set when the body is gathered whole before it is answered (a gzip entry for a client that does not take
    /// gzip): what was gathered, the most it may be, and who gets it.
    var gathering: (body: ByteBuffer, limit: Int, then: (Result<ByteBuffer, OriginError>) -> Void)?

    init(consumed: @escaping (Int) -> Void, leave: @escaping () -> Void) {
        self.consumed = consumed
        self.leave = leave
    }

    /// Reads an origin answer that is passed on unstored.
    convenience init(_ stream: OriginStream<ByteBuffer>) {
        self.init(consumed: { stream.consumed($0) }, leave: { stream.cancel() })
    }

    /// Reads an answer being stored, as reader `reader` of `fill`.
    convenience init(_ fill: EntryFill<ByteBuffer>, reader: Int) {
        self.init(consumed: { _ in }, leave: {})
        read(fill, as: reader)
    }

    /// From now on, reads `fill` as reader `reader` (pieces may have been handed over before: they wait in
    /// `pending`).
    func read(_ fill: EntryFill<ByteBuffer>, as reader: Int) {
        consumed = { fill.consumed(reader, $0) }
        leave = { fill.leave(reader) }
        declaredLength = fill.declaredLength
        headReceived = true
    }
}
