/// An IPv4 or IPv6 address as its bytes (4 or 16), parsed from text without the C library, and the address
/// ranges (`10.0.0.0/8`, `fd00::/8`) the rules file names trusted proxies with.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is read as IPv4.
    public let bytes: [UInt8]

    public var description: String {
        bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : stride(from: 0, to: 16, by: 2).map {
            String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
        }.joined(separator: ":")
    }

    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// Parses `192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1` (and `[2001:db8::1]`); nil for anything else,
    /// host names included (`127.0.0.1.nip.io` is a name, not a loopback address).
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let v4 = Self.parseIPv4(text) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            let mapped: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
            bytes = Array(v6.prefix(12)) == mapped ? Array(v6.suffix(4)) : v6
        } else {
            return nil
        }
    }

    private static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = UInt8(part), part.count == 1 || part.first != "0"
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func parseIPv6(_ input: Substring) -> [UInt8]? {
        guard input.count <= 45, input.contains(":") else { return nil }
        var text = String(input)
        var tail: [UInt8] = []
        // A trailing dotted quad stands for the last 32 bits (`::ffff:192.0.2.1`).
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(text[text.index(after: lastColon)...]) else { return nil }
            tail = v4
            text = String(text[..<lastColon])
            if text.hasSuffix(":") { text += ":" }  // `::192.0.2.1` keeps its `::`
        }
        let halves = splitAtDoubleColon(text)
        guard let halves else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var values: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                // Hex digits only: UInt16(_:radix:) would also take a sign (`::+1`).
                guard (1...4).contains(group.utf8.count), group.utf8.allSatisfy(isHexDigit), let value = UInt16(group, radix: 16)
                else { return nil }
                values.append(value)
            }
            return values
        }
        let wanted = 8 - tail.count / 2
        var all: [UInt16]
        if let (before, after) = halves.compressed {
            guard let head = groups(before), let rest = groups(after), head.count + rest.count < wanted else { return nil }
            all = head + [UInt16](repeating: 0, count: wanted - head.count - rest.count) + rest
        } else {
            guard let only = groups(halves.whole), only.count == wanted else { return nil }
            all = only
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } + tail
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    /// The text around its one `::` (nil when it has more than one).
    private static func splitAtDoubleColon(_ text: String) -> (whole: Substring, compressed: (Substring, Substring)?)? {
        let characters = Array(text.utf8)
        var found: Int?
        var index = 0
        while index + 1 < characters.count {
            if characters[index] == UInt8(ascii: ":") && characters[index + 1] == UInt8(ascii: ":") {
                guard found == nil else { return nil }
                found = index
                index += 2
                continue
            }
            index += 1
        }
        let whole = Substring(text)
        guard let found else { return (whole, nil) }
        let start = text.utf8.index(text.startIndex, offsetBy: found)
        let end = text.utf8.index(start, offsetBy: 2)
        return (whole, (whole[..<start], whole[end...]))
    }
}

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a single address is a range of one.
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    public let base: IPAddress
    public let prefixLength: Int

    public var description: String { "\(base)/\(prefixLength)" }

    /// Parses `address` or `address/length`; nil when either part is not valid.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let base = IPAddress(String(parts[0])) else { return nil }
        let maximum = base.bytes.count * 8
        if parts.count == 2 {
            guard (1...3).contains(parts[1].count), let length = Int(parts[1]), (0...maximum).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        self.base = base
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var left = prefixLength
        for (a, b) in zip(address.bytes, base.bytes) {
            guard left > 0 else { return true }
            let bits = min(8, left)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if a & mask != b & mask { return false }
            left -= bits
        }
        return true
    }
}
