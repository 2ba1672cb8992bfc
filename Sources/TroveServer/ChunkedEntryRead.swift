internal import NIOCore
internal import TroveCore

/// Serves a chunked entry (`EntryChunks`) one chunk at a time: the next chunk is read from the store once the
/// last was written to the client, so a client holds one chunk, whatever the body's size. A chunk that is gone
/// (evicted) or unreadable ends the answer early: the client's connection closes, never a short answer that
/// looks whole. Confined to the connection's event loop (the store answers there).
final class ChunkedEntryRead {
    private let chunks: EntryChunks
    private let bodyLength: Int
    private let read: (Int, @escaping (Result<ByteBuffer?, StoreError>) -> Void) -> Void
    /// Cleared once the read ends or stops: they reach the exchange, which reaches this.
    private var deliver: ((ByteBuffer) -> Void)?
    private var end: ((OriginError?) -> Void)?
    private var next = 0
    /// Bytes handed over and not yet written.
    private var outstanding = 0
    private var reading = false

    /// - Parameters:
    ///   - read: reads chunk `index` (`CacheStore.readChunk`).
    ///   - deliver: gets each chunk, in order.
    ///   - end: called once: nil when the body was handed over whole, else why it broke off.
    init(
        chunks: EntryChunks, bodyLength: Int, read: @escaping (Int, @escaping (Result<ByteBuffer?, StoreError>) -> Void) -> Void,
        deliver: @escaping (ByteBuffer) -> Void, end: @escaping (OriginError?) -> Void
    ) {
        self.chunks = chunks
        self.bodyLength = bodyLength
        self.read = read
        self.deliver = deliver
        self.end = end
    }

    func start() { readNext() }

    /// `bytes` handed over were written: once all are, the next chunk is read.
    func consumed(_ bytes: Int) {
        outstanding = max(0, outstanding - bytes)
        if outstanding == 0 { readNext() }
    }

    /// The client is gone: nothing more is read.
    func stop() {
        deliver = nil
        end = nil
    }

    private func readNext() {
        guard !reading, deliver != nil else { return }
        let index = next
        guard index < chunks.count(of: bodyLength) else { return finish(nil) }
        let expected = chunks.length(of: index, in: bodyLength)
        reading = true
        read(index) { result in
            self.reading = false
            switch result {
            case .success(let chunk?) where chunk.readableBytes == expected:
                self.next += 1
                self.outstanding += expected
                self.deliver?(chunk)
            case .success(let chunk):
                let found = chunk.map { "\($0.readableBytes) bytes instead of \(expected)" } ?? "it is gone"
                self.finish(OriginError(kind: .failed, origin: "store", reason: "chunk \(index) of the entry could not be served: \(found)"))
            case .failure(let error):
                self.finish(OriginError(kind: .failed, origin: "store", reason: "chunk \(index) of the entry could not be read: \(error)"))
            }
        }
    }

    private func finish(_ error: OriginError?) {
        let end = self.end
        stop()
        end?(error)
    }
}
