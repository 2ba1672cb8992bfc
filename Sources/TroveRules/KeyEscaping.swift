/// Escapes request values before they enter a cache key or tag, so that no value can forge a separator.
///
/// Every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) is written as `%XX` with upper-case
/// hex; `%` itself is escaped too. An escaped value therefore never contains `:`, `=`, `&`, `/`, `{`, `}`, `#`
/// or whitespace, which is what lets `Template` prove that two different requests cannot render one key.
public enum KeyEscaping {
    /// The characters an escaped value may contain: unreserved characters plus `%` from the escapes.
    static let valueAlphabet: Set<Character> = {
        var set = Set<Character>("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        set.insert("%")
        return set
    }()

    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Appends `value`, escaped, to `output`.
    public static func append<S: StringProtocol>(_ value: S, to output: inout String) {
        // Fast path: most values (ids, page numbers, hex digests) need no escaping at all.
        if value.utf8.allSatisfy(isUnreserved) {
            output += value
            return
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count * 3)
        for byte in value.utf8 {
            if isUnreserved(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        output += String(decoding: bytes, as: UTF8.self)
    }

    /// `value`, escaped.
    public static func escape<S: StringProtocol>(_ value: S) -> String {
        var output = ""
        append(value, to: &output)
        return output
    }
}
