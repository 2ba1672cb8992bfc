/// Which of Redis Cluster's 16384 hash slots a key belongs to: CRC16 (XMODEM) of the key, or of its hash tag
/// (the text between the first `{` and the next `}`, when not empty), modulo 16384. Keys that share a hash
/// tag share a slot, so one node holds them and one command may name them together.
public enum RedisSlot {
    public static let count = 16384

    /// The slot of `key`, read as UTF-8 bytes.
    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The slot of a key given as bytes.
    public static func of(bytes key: UnsafeRawBufferPointer) -> Int {
        var hashed = key
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])
        }
        return Int(crc16(hashed) & 0x3FFF)
    }

    /// CRC16-CCITT as Redis computes it (XMODEM: polynomial 0x1021, initial value 0, no reflection).
    static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
