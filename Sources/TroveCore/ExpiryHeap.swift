/// Keys ordered by the instant they expire: what tables that forget by time use instead of scanning.
///
/// A binary min-heap with each key's position indexed, so that setting a key's expiry again (or removing it)
/// costs O(log n), and taking what has expired costs O(log n) per key taken: nothing is ever scanned, which
/// matters because these tables are read under a lock on the request path (a sweep of 10,000 purge counters on
/// every purge once made hits 80 times slower).
public struct ExpiryHeap<Key: Hashable> {
    private var heap: [(key: Key, at: Int64)] = []
    private var position: [Key: Int] = [:]

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }

    /// The soonest expiry, if any.
    public var first: (key: Key, at: Int64)? { heap.first }

    /// When `key` expires; nil when it is not in the heap.
    public func expiry(of key: Key) -> Int64? {
        position[key].map { heap[$0].at }
    }

    /// Sets (or moves) `key`'s expiry.
    public mutating func set(_ key: Key, expiresAt at: Int64) {
        if let index = position[key] {
            let earlier = at < heap[index].at
            heap[index].at = at
            if earlier { siftUp(index) } else { siftDown(index) }
        } else {
            heap.append((key, at))
            position[key] = heap.count - 1
            siftUp(heap.count - 1)
        }
    }

    /// Forgets `key`.
    public mutating func remove(_ key: Key) {
        guard let index = position[key] else { return }
        removeAt(index)
    }

    /// Takes every key whose expiry is at or before `now`, soonest first.
    public mutating func popExpired(now: Int64) -> [Key] {
        var expired: [Key] = []
        while let first = heap.first, first.at <= now {
            expired.append(first.key)
            removeAt(0)
        }
        return expired
    }

    /// Takes the key that expires soonest (to make room when a table is full).
    public mutating func popFirst() -> Key? {
        guard let first = heap.first else { return nil }
        removeAt(0)
        return first.key
    }

    private mutating func removeAt(_ index: Int) {
        let removed = heap[index].key
        let last = heap.count - 1
        if index != last {
            heap.swapAt(index, last)
            position[heap[index].key] = index
        }
        heap.removeLast()
        position[removed] = nil
        if index < heap.count {
            siftDown(index)
            siftUp(index)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].at < heap[parent].at else { return }
            swap(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].at < heap[smallest].at { smallest = left }
            if right < heap.count, heap[right].at < heap[smallest].at { smallest = right }
            guard smallest != parent else { return }
            swap(parent, smallest)
            parent = smallest
        }
    }

    private mutating func swap(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        position[heap[a].key] = a
        position[heap[b].key] = b
    }
}

extension ExpiryHeap: Sendable where Key: Sendable {}
