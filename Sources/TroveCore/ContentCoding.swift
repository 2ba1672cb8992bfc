public import TroveHTTP

/// Content codings between origin, store and client (RFC 9110 §8.4, §12.5.3): Trove asks origins for gzip when
/// it fetches to store, keeps whatever coding the origin chose, and decodes on the way out for clients that
/// do not accept it. One entry serves every client, so `Accept-Encoding` never splits the cache.
public enum ContentCoding {
    /// The `Accept-Encoding` Trove sends on fetches it will store.
    public static let storageAcceptEncoding = Header("Accept-Encoding", "gzip")

    /// True when the answer's body is gzip-coded (and nothing else).
    public static func isGzip(_ headers: [Header]) -> Bool {
        // Asked of every answer from the store: no arrays unless the answer has a Content-Encoding at all.
        var gzip = false
        for header in headers where HTTPSyntax.name(header.name, is: "content-encoding") {
            for coding in header.value.split(separator: ",") {
                switch coding.trimmingWhitespace().lowercased() {
                case "identity": continue
                case "gzip", "x-gzip":
                    if gzip { return false }  // gzip twice
                    gzip = true
                default: return false  // another coding
                }
            }
        }
        return gzip
    }

    /// True when a client's `Accept-Encoding` admits gzip: listed (or `*`) with a quality above 0, and not
    /// refused by name. No `Accept-Encoding` at all means any coding is acceptable, but Trove decodes for such
    /// clients anyway: many HTTP libraries send none and cannot decode.
    public static func acceptsGzip(_ request: [Header]) -> Bool {
        var gzip: Double?
        var any: Double?
        for header in request where HTTPSyntax.name(header.name, is: "accept-encoding") {
            for item in header.value.split(separator: ",") {
                let parts = item.split(separator: ";").map { $0.trimmingWhitespace().lowercased() }
                guard let coding = parts.first, !coding.isEmpty else { continue }
                var quality = 1.0
                for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                    quality = Double(parameter.dropFirst(2)) ?? 0
                }
                switch coding {
                case "gzip", "x-gzip": gzip = max(gzip ?? 0, quality)
                case "*": any = quality
                default: break
                }
            }
        }
        if let gzip { return gzip > 0 }
        return (any ?? 0) > 0
    }

    /// The headers of a gzip answer once its body is decoded for a client: no `Content-Encoding`, and a weak
    /// `ETag` (the decoded bytes are a different representation; a strong validator would be a lie).
    public static func decodedHeaders(_ headers: [Header]) -> [Header] {
        headers.compactMap { header in
            if HTTPSyntax.name(header.name, is: "content-encoding") { return nil }
            if HTTPSyntax.name(header.name, is: "etag"), !header.value.hasPrefix("W/") { return Header(header.name, "W/" + header.value) }
            return header
        }
    }

    /// The decoded size a gzip stream declares in its trailer (ISIZE, RFC 1952: the last four bytes, little
    /// endian, modulo 2^32); nil when the bytes are too short to be gzip. A hint, not a promise (a stream of
    /// several members declares only its last one's size): decoders must still stop at their own limit.
    public static func declaredGzipSize<Bytes: Collection>(_ bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
        guard bytes.count >= 18 else { return nil }
        var size = 0
        for (offset, byte) in bytes.suffix(4).enumerated() { size |= Int(byte) << (8 * offset) }
        return size
    }

    /// `Vary` with `Accept-Encoding` in it, for caches after Trove: what Trove sends depends on it.
    public static func varyingOnEncoding(_ headers: [Header]) -> [Header] {
        var out = headers
        if let index = out.firstIndex(where: { HTTPSyntax.name($0.name, is: "vary") }) {
            let value = out[index].value
            let names = value.split(separator: ",").map { $0.trimmingWhitespace().lowercased() }
            if !names.contains("accept-encoding") && !names.contains("*") {
                out[index] = Header(out[index].name, value + ", Accept-Encoding")
            }
        } else {
            out.append(Header("Vary", "Accept-Encoding"))
        }
        return out
    }
}
