#if canImport(Glibc)
internal import TroveHTTP
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
internal import Synchronization

/// Counts the proxy's client connections and refuses those past `limits.max_connections`, so that a flood of
/// idle connections cannot take every file descriptor: past the limit a connection is accepted and closed at
/// once, and the admin API (its own listener) and Redis and origin connections still find descriptors.
///
/// The limit is also bounded by the process's descriptors: every client connection may hold one origin
/// connection while its miss is fetched, and Trove needs a few hundred for itself (Redis, the curl thread's
/// cache of origin connections, the admin API, logs).
public final class ClientConnections: Sendable {
    private let open = Atomic<Int>(0)
    /// Connections the descriptor limit leaves room for.
    public let descriptorBound: Int

    /// Descriptors kept for everything but client connections and their origin transfers.
    static let reserved = 256

    public init(descriptorLimit: Int? = nil) {
        let limit = descriptorLimit ?? Self.currentDescriptorLimit()
        descriptorBound = max(16, (limit - Self.reserved) / 2)
    }

    /// Connections open now.
    public var count: Int { open.load(ordering: .relaxed) }

    /// The connections allowed at once under a configured `maximum`.
    public func effectiveMaximum(_ maximum: Int) -> Int { min(maximum, descriptorBound) }

    /// Counts a new connection in; false (and nothing counted) when it is one too many.
    func admit(maximum: Int) -> Bool {
        let limit = effectiveMaximum(maximum)
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// An admitted connection closed.
    func closed() {
        open.subtract(1, ordering: .relaxed)
    }

    /// The soft limit on open descriptors (RLIMIT_NOFILE), or a conservative 1024 when it cannot be read.
    public static func currentDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return soft(limit)
    }

    /// The soft limit as a count (unlimited reads as 2^20, more than any use of it here needs).
    private static func soft(_ limit: rlimit) -> Int {
        limit.rlim_cur == rlim_t.max ? 1 << 20 : Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft descriptor limit to the hard one (as Go's runtime does at start): a proxy's connections
    /// are descriptors, and the soft default (often 1024) would make `max_connections` meaningless. Returns
    /// the soft limit in force afterwards.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return soft(limit)
    }
}
