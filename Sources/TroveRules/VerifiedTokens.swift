internal import Crypto
internal import Synchronization

/// Tokens a verifier has already checked, by their SHA-256, with their claims and the instants they are valid
/// between: a client sends the same token with every request, and checking its signature and reading its JSON
/// again each time cost a hit three to six times its price (`loadtest/identity.sh`).
///
/// Only verified tokens are kept (a forged one is checked in full each time, and never fills the table), and a
/// kept one still answers only within its `exp` and `nbf` (and the leeway). Bounded: two generations of up to
/// `capacity` each; when the current one is full it becomes the previous one and the oldest is dropped, so the
/// lock is held for a lookup or an insert, never for a walk over the table.
final class VerifiedTokens: Sendable {
    struct Verified: Sendable {
        let claims: [String: String]
        /// Valid from this instant (seconds since the epoch, leeway applied); nil: no `nbf`.
        let validFrom: Int64?
        /// Valid until this instant (exclusive); nil: no `exp` (`require_expiry: false`).
        let validUntil: Int64?
    }

    private struct Generations {
        var current: [SHA256.Digest: Verified] = [:]
        var previous: [SHA256.Digest: Verified] = [:]
    }

    let capacity: Int
    private let state = Mutex(Generations())

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// The claims of a token verified before, if it is still valid at `seconds`.
    func claims(for digest: SHA256.Digest, at seconds: Int64) -> [String: String]? {
        // A generation dropped is released after the lock, not under it.
        let (found, dropped): (Verified?, [SHA256.Digest: Verified]?) = state.withLock { state in
            if let verified = state.current[digest] { return (verified, nil) }
            guard let verified = state.previous[digest] else { return (nil, nil) }
            return (verified, insert(digest, verified, into: &state))  // still in use: kept into the next generation
        }
        _ = dropped
        guard let found, found.validFrom.map({ seconds >= $0 }) ?? true, found.validUntil.map({ seconds < $0 }) ?? true else { return nil }
        return found.claims
    }

    func remember(_ digest: SHA256.Digest, _ verified: Verified) {
        let dropped: [SHA256.Digest: Verified]? = state.withLock { state in insert(digest, verified, into: &state) }
        _ = dropped
    }

    /// Inserts, turning generations over when the current one is full; returns the generation dropped, if any
    /// (for the caller to release after the lock).
    private func insert(_ digest: SHA256.Digest, _ verified: Verified, into state: inout Generations) -> [SHA256.Digest: Verified]? {
        var dropped: [SHA256.Digest: Verified]?
        if state.current.count >= capacity {
            dropped = state.previous
            state.previous = state.current
            state.current = [:]
        }
        state.current[digest] = verified
        return dropped
    }

    /// How many tokens are kept, for tests.
    var count: Int { state.withLock { $0.current.count + $0.previous.count } }
}
