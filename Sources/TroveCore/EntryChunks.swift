/// Where a large entry's body is kept: apart from its head, in chunks of `size` bytes named by `nonce`, so that
/// a lookup reads only the head and a client is served one chunk at a time (the Redis store's layout for bodies
/// past its chunk size; the memory store keeps every body whole, shared by every client that reads it).
public struct EntryChunks: Sendable, Equatable {
    /// Names the chunks of this one stored version of the entry: a new store writes new chunks, so a client still
    /// reading the old version reads it to the end.
    public let nonce: UInt64
    public let size: Int

    public init(nonce: UInt64, size: Int) {
        self.nonce = nonce
        self.size = max(1, size)
    }

    /// How many chunks a body of `bodyLength` bytes takes.
    public func count(of bodyLength: Int) -> Int {
        bodyLength <= 0 ? 0 : (bodyLength - 1) / size + 1
    }

    /// How long chunk `index` of a body of `bodyLength` bytes is.
    public func length(of index: Int, in bodyLength: Int) -> Int {
        max(0, min(size, bodyLength - index * size))
    }
}
