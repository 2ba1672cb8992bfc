internal import CompressNIO
internal import NIOCore
internal import TroveCore
internal import TroveHTTP
internal import TroveRules

/// Compares, for a request in shadow, the entry Trove would have served with the origin's answer the client got,
/// and records the verdict. Gzip bodies are decoded first (on the event loop: up to `decodedLimit`, past which the
/// parts that differ are not named), so that a JSON answer's differing parts can be named on both sides.
enum ShadowCheck {
    /// Bodies past this are compared byte for byte only: naming parts means parsing both on the event loop.
    static let parsedLimit = 1 << 20

    /// Returns whether the answers differed.
    @discardableResult
    static func compare(
        entry: (meta: EntryMeta, body: ByteBuffer), origin: (status: Int, headers: [Header], body: ByteBuffer),
        target: RequestPlan.CacheTarget, route: String, requestTarget: String, report: ShadowReport
    ) -> Bool {
        guard entry.meta.chunks == nil, entry.body.readableBytes == entry.meta.bodyLength else {
            report.recordNotCompared(route: route, why: "entry stored in chunks")
            return false
        }
        let stored = ShadowComparison.Answer(status: entry.meta.status, headers: entry.meta.headers, body: bytes(entry.body, entry.meta.headers))
        let now = ShadowComparison.Answer(status: origin.status, headers: HeaderPolicy.storedHeaders(origin.headers),
            body: bytes(origin.body, origin.headers))
        let settings = target.shadow ?? ShadowSettings()
        var differences: [String] = []
        let small = stored.body.count <= parsedLimit && now.body.count <= parsedLimit
        if case .differs(let found) = ShadowComparison.compare(stored: stored, origin: now, settings: settings, namesParts: small) {
            differences = found
        }
        report.recordHit(route: route, key: target.key, target: requestTarget, storedAt: entry.meta.storedAt, tags: entry.meta.tags,
            differences: differences)
        return !differences.isEmpty
    }

    /// The body's bytes, decoded when it is gzip and small enough; as they are otherwise.
    private static func bytes(_ body: ByteBuffer, _ headers: [Header]) -> [UInt8] {
        guard ContentCoding.isGzip(headers), body.readableBytes <= parsedLimit else { return Array(body.readableBytesView) }
        var input = body
        guard let decoded = try? input.decompress(with: .gzip(), maxSize: parsedLimit) else { return Array(body.readableBytesView) }
        return Array(decoded.readableBytesView)
    }
}
