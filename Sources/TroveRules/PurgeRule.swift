
/// What a write route invalidates when the origin accepts the write.
public struct PurgeRule: Sendable {
    /// Tags, rendered from the write request: every entry carrying one is purged.
    public let tags: [Template]
    /// Cache keys, rendered from the write request: those entries are purged.
    public let keys: [Template]
    /// Route names: every entry those routes stored is purged.
    public let routes: [String]
    /// Purge every entry.
    public let everything: Bool
}
