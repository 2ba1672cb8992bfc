internal import NIOCore

/// Large bodies this event loop has recently read from or written to Redis, kept in process so that a hit on a
/// large entry reads only the entry's head from Redis (`GETRANGE`) instead of the whole value.
///
/// A body is reused only when the head Redis holds now is byte for byte the head it was stored under: the head
/// carries the entry's storage time, freshness, recorded purge counters, headers and body length, so any new
/// store, from any instance, changes it. Purges need nothing here: they are checked against the head, as for
/// every lookup. Bounded in bytes; the oldest bodies go first. One per event loop, used only on that loop.
final class LocalBodies {
    /// Bodies smaller than this are read whole from Redis: the head alone would not save a round trip's worth.
    static let minimumBody = 16 << 10
    /// How much of a value `GETRANGE` asks for: the head of any ordinary entry fits.
    static let headPrefix = 4096

    private struct Body {
        let head: [UInt8]
        let body: ByteBuffer
    }

    private var bodies: [String: Body] = [:]
    private var order = CircularBuffer<String>()
    private var bytes = 0
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// True when a body is held for `key` (of whatever version): lookups then ask Redis for the head only.
    /// Free when nothing is held (routes with small answers never hash their keys here).
    func holds(_ key: String) -> Bool {
        !bodies.isEmpty && bodies[key] != nil
    }

    /// The body stored under exactly this head, if held.
    func body(for key: String, head: UnsafeRawBufferPointer) -> ByteBuffer? {
        guard let held = bodies[key], held.head.elementsEqual(head) else { return nil }
        return held.body
    }

    /// Keeps a large body under its entry's head bytes (replacing an older version of the key).
    func keep(_ body: ByteBuffer, head: [UInt8], for key: String) {
        // A head longer than the prefix a lookup reads could never be matched: such entries are read whole.
        guard body.readableBytes >= Self.minimumBody, body.readableBytes <= capacity / 4, head.count < Self.headPrefix else { return }
        if let old = bodies.removeValue(forKey: key) {
            bytes -= old.body.readableBytes
        } else {
            order.append(key)
        }
        bodies[key] = Body(head: head, body: body)
        bytes += body.readableBytes
        while bytes > capacity, let oldest = order.popFirst() {
            if let evicted = bodies.removeValue(forKey: oldest) { bytes -= evicted.body.readableBytes }
        }
    }

    /// Forgets a key (its entry is gone from Redis).
    func forget(_ key: String) {
        if let old = bodies.removeValue(forKey: key) {
            bytes -= old.body.readableBytes
            if let index = order.firstIndex(of: key) { order.remove(at: index) }
        }
    }

    var count: Int { bodies.count }
}
