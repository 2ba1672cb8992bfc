/// Reads and writes the duration and size notations of the rules file (`30s`, `10m`, `1h30m`, `512KB`).
///
/// Durations are a sequence of whole numbers with a unit (`ms`, `s`, `m`, `h`, `d`), largest unit first; a bare
/// number is refused because `ttl: 300` could mean seconds or milliseconds. Sizes are whole bytes or a number
/// with `B`, `KB`, `MB`, `GB` (powers of 1024, as in nginx and redis.conf's `kb`/`mb`; `KiB`/`MiB`/`GiB` also
/// work).
public enum Units {
    /// The longest duration a text can mean: longer ones read as this (about 100 years), so that whatever is
    /// done with a parsed duration afterwards (milliseconds, nanoseconds, sums of a few) stays far from
    /// overflowing. The rules reader refuses anything past its own, much smaller, maximum.
    public static let longestDuration = Duration.milliseconds(36_500 * 86_400_000)

    /// Parses `30s`, `10m`, `1h`, `1h30m`, `250ms`, `2d`; nil when the text is not a duration. A duration longer
    /// than `longestDuration` reads as `longestDuration`.
    public static func parseDuration(_ text: String) -> Duration? {
        let units: [(suffix: String, milliseconds: Int64)] = [
            ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
        ]
        var rest = Substring(text.trimmingWhitespace())
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        var lastUnitRank = Int.max
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty else { return nil }
            // Any number of digits is a duration (a too long one, clamped below), not a syntax error.
            let number = digits.count <= 18 ? Int64(digits)! : Int64.max
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix(while: { $0.isASCII && $0.isLetter })
            // "ms" before "m" and "s": match the whole run of letters, not a prefix of it.
            guard let rank = units.firstIndex(where: { $0.suffix == letters.lowercased() }) else { return nil }
            // Largest unit first, each at most once: "1h30m" yes, "30m1h" and "1m1m" no.
            guard rank < lastUnitRank else { return nil }
            lastUnitRank = rank
            rest = rest.dropFirst(letters.count)
            // Twelve digits of days overflow Int64 milliseconds, and so can the sum of parts: clamp both.
            total = total.addingClamped(number.multipliedClamped(by: units[rank].milliseconds))
        }
        return .milliseconds(min(total, longestDuration.milliseconds))
    }

    /// Writes a duration the way the rules file does: `5m`, `1h30m`, `250ms`, `0s`.
    public static func format(_ duration: Duration) -> String {
        var milliseconds = duration.milliseconds
        if milliseconds == 0 { return "0s" }
        var text = milliseconds < 0 ? "-" : ""
        milliseconds = abs(milliseconds)
        for (suffix, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
        where milliseconds >= size {
            text += "\(milliseconds / size)\(suffix)"
            milliseconds %= size
        }
        return text
    }

    /// Parses `1048576`, `512KB`, `1MB`, `1MiB`, `2GB`; nil when the text is not a size.
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 15, let number = Int(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingWhitespace().lowercased()
        let multipliers: [String: Int] = [
            "": 1, "b": 1,
            "k": 1024, "kb": 1024, "kib": 1024,
            "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
            "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
        ]
        guard let multiplier = multipliers[unit] else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// Writes a size for people: `512 B`, `64 KiB`, `1 MiB`, `1.5 MiB`.
    public static func format(bytes: Int) -> String {
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1024)]
        for (name, size) in units where bytes >= size {
            if bytes % size == 0 { return "\(bytes / size) \(name)" }
            let tenths = (bytes * 10 + size / 2) / size
            return "\(tenths / 10).\(tenths % 10) \(name)"
        }
        return "\(bytes) B"
    }
}

extension Duration {
    /// Whole milliseconds, rounded toward zero; clamped to Int64's range.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds.multipliedClamped(by: 1000).addingClamped(attoseconds / 1_000_000_000_000_000)
    }

    /// Whole seconds, rounded toward zero.
    public var seconds: Int64 { components.seconds }
}

extension StringProtocol {
    /// The text without spaces, tabs and newlines at either end (Foundation-free).
    public func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

extension String {
    /// The string followed by spaces up to `width` characters (unchanged when already that long).
    public func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
