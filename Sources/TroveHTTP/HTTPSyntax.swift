/// The bits of HTTP's grammar (RFC 9110 §5) that Trove checks: header names and values.
public enum HTTPSyntax {
    /// A token: a header name or a method (`tchar`s only, at least one).
    public static func isToken(_ text: String) -> Bool {
        !text.utf8.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// A header value that can be written back as is: no CR, LF or NUL (what would split or end a header).
    public static func isFieldValue(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// True when `name` equals `lowercased` (which must be lower-case ASCII) ignoring ASCII case, without
    /// allocating: header names are compared on every request.
    public static func name(_ name: String, is lowercased: String) -> Bool {
        var other = lowercased.utf8.makeIterator()
        for byte in name.utf8 {
            guard let expected = other.next() else { return false }
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if folded != expected { return false }
        }
        return other.next() == nil
    }
}
