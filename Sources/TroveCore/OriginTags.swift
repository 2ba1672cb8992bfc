/// How a store records the tags an origin names in its answer (`tags_from`) without a race against purges.
///
/// An entry records its counters' values as they were before its fetch began (`EntryAddress`), but the tags an
/// origin names are known only when its answer arrives, too late to read their counters "before". So a lookup for
/// a route that learns tags also reads the tag-purge sequence (`PurgeCounter.tagSequence`), which every tag purge
/// moves on, and each tag purge first stamps the tag with the sequence's new value (`PurgeCounter.tagPurged`).
/// When the answer is stored, the store reads, at once, each named tag's stamp and counter: a stamp past the
/// sequence the lookup read means the tag was purged after the fetch began, and the answer is not stored
/// (`StoreError.purgedWhileFetched`); otherwise the counters as read are recorded, and a purge after that read
/// moves them on, which the next lookup sees. A hit on such an entry reads its origin tags' counters in a second
/// step (the tags are in the entry), so it costs a second round trip to Redis.
public enum OriginTags {
    /// What a store reads, at once, to record `meta`'s origin tags: each one's stamp, then each one's counter.
    public static func countersToRecord(_ meta: EntryMeta) -> [PurgeCounter] {
        let tags = meta.originTags ?? []
        return tags.map(PurgeCounter.tagPurged) + tags.map(PurgeCounter.tag)
    }

    /// `meta` ready to store for `address`: the address's generations as the lookup before the fetch read them,
    /// then its origin tags' as read now (`values`, in `countersToRecord` order); nil when one of the tags was
    /// purged after the fetch began. Unchanged for a route that does not learn tags.
    public static func recorded(_ meta: EntryMeta, address: EntryAddress, values: [Int64]) -> EntryMeta? {
        guard let sequenceIndex = address.sequenceIndex else { return meta }
        let count = address.counters.count
        let tags = meta.originTags ?? []
        // A refresh of an entry with origin tags began from a lookup that read theirs too: only the address's count.
        guard meta.generations.count >= count, values.count == 2 * tags.count else { return nil }
        let began = meta.generations[sequenceIndex]
        guard values.prefix(tags.count).allSatisfy({ $0 <= began }) else { return nil }
        var recorded = meta
        recorded.generations = Array(meta.generations.prefix(count)) + values.suffix(tags.count)
        return recorded
    }

    /// The counters a hit reads after finding `meta` for `address`: its origin tags' (none when the route does not
    /// learn tags, or the entry names none).
    public static func countersToCheck(_ meta: EntryMeta, address: EntryAddress) -> [PurgeCounter] {
        guard address.learnsTags, let tags = meta.originTags else { return [] }
        return tags.map(PurgeCounter.tag)
    }
}
