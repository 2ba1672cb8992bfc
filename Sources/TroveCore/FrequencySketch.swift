/// How often each key was asked for lately, approximately, in a few bits per key: the memory of the in-process
/// tier's admission policy (TinyLFU). A new entry may evict the least recently used one only if its key was asked
/// for at least as often, so a scan of keys asked for once cannot push out the entries asked for again and again.
///
/// A count-min sketch: four rows of 4-bit counters (saturating at 15), a key's count the least of its four.
/// Counts age: one 64-bit word of counters is halved every `agingStep` increments, round the table, so every
/// counter is halved once per about ten increments per counter. Aging is spread over the increments, never a pass
/// over the table, so no request ever pays for more than one word of it.
///
/// Not thread-safe: its owner's lock guards it (`InMemoryStore` holds it in its state).
public struct FrequencySketch: Sendable {
    /// Four rows of `width` counters, sixteen counters per word, row after row.
    private var words: [UInt64]
    private let mask: Int
    private var increments = 0
    private var agingCursor = 0
    /// Increments between two halved words: a whole round of the table takes ten increments per counter.
    let agingStep: Int

    public static let maximum: UInt64 = 15
    static let rows = 4

    /// - Parameter width: counters per row, rounded up to a power of two (at least 64).
    public init(width: Int) {
        var size = 64
        while size < width, size < 1 << 24 { size <<= 1 }
        mask = size - 1
        words = Array(repeating: 0, count: Self.rows * size / 16)
        agingStep = max(1, (10 * size) / (Self.rows * size / 16))
    }

    /// Counters per row.
    public var width: Int { mask + 1 }

    /// The estimated count of `hash`, 0 to 15.
    public func frequency(_ hash: Int) -> UInt64 {
        var least = Self.maximum
        for row in 0..<Self.rows {
            least = min(least, counter(row: row, hash: hash))
        }
        return least
    }

    /// Counts one more request for `hash` (only the counters at its least are raised: a conservative update,
    /// which keeps the estimates of keys that share counters apart).
    public mutating func increment(_ hash: Int) {
        let least = frequency(hash)
        if least < Self.maximum {
            for row in 0..<Self.rows where counter(row: row, hash: hash) == least {
                let (word, shift) = position(row: row, hash: hash)
                words[word] &+= 1 << shift
            }
        }
        increments &+= 1
        if increments >= agingStep {
            increments = 0
            // Halve the sixteen counters of one word: shift each right by one, dropping the bit that would
            // cross into the next counter.
            words[agingCursor] = (words[agingCursor] >> 1) & 0x7777_7777_7777_7777
            agingCursor = agingCursor + 1 == words.count ? 0 : agingCursor + 1
        }
    }

    private func counter(row: Int, hash: Int) -> UInt64 {
        let (word, shift) = position(row: row, hash: hash)
        return (words[word] >> shift) & 0xF
    }

    /// The word and bit offset of `hash`'s counter in `row`: a different mix of the hash per row
    /// (Kirsch–Mitzenmacher: the first hash plus the row times a second).
    private func position(row: Int, hash: Int) -> (word: Int, shift: UInt64) {
        let spread = UInt64(bitPattern: Int64(hash)) &* 0x9E37_79B9_7F4A_7C15
        let second = (spread >> 32) | 1
        let index = Int(truncatingIfNeeded: (spread &+ UInt64(row) &* second) >> 7) & mask
        let slot = row * (mask + 1) + index
        return (slot >> 4, UInt64(slot & 15) << 2)
    }
}
