public import NIOCore
public import TroveCore

/// Lets an answer arriving in `ByteBuffer` pieces be kept and joined for the store (`EntryFill`).
extension ByteBuffer: FillableBody {
    public var byteCount: Int { readableBytes }

    public static func joined(_ pieces: [ByteBuffer], byteCount: Int) -> ByteBuffer {
        if pieces.count == 1 { return pieces[0] }
        var whole = ByteBufferAllocator().buffer(capacity: byteCount)
        for var piece in pieces { whole.writeBuffer(&piece) }
        return whole
    }
}
