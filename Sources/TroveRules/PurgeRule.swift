
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
    /// `soft: true` (or a duration: the extra stale window): what it purges becomes stale instead of gone. A write's
    /// keys, and the entry of the target it writes, stay hard (RFC 9111 §4.4); a webhook topic's keys are soft too.
    public let soft: SoftPurge?

    public init(tags: [Template], keys: [Template], routes: [String], everything: Bool, soft: SoftPurge? = nil) {
        self.tags = tags
        self.keys = keys
        self.routes = routes
        self.everything = everything
        self.soft = soft
    }
}
