/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, and the two obsolete forms
/// recipients must still read, `Sunday, 06-Nov-94 08:49:37 GMT` and asctime's `Sun Nov  6 08:49:37 1994`.
public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// Milliseconds since the epoch; nil when the text is not an HTTP date.
    public static func milliseconds(_ text: String) -> Int64? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        var day: Int?, month: Int?, year: Int?, time: [Int]?
        if words.count == 4, words[3] == "GMT" {
            // rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
            let parts = words[1].split(separator: "-").map(String.init)
            guard parts.count == 3 else { return nil }
            day = Int(parts[0])
            month = index(of: parts[1])
            year = Int(parts[2]).map { $0 < 70 ? 2000 + $0 : ($0 < 100 ? 1900 + $0 : $0) }
            time = clock(words[2])
        } else if words.count == 6, words[5] == "GMT" {
            // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            day = Int(words[1])
            month = index(of: words[2])
            year = Int(words[3])
            time = clock(words[4])
        } else if words.count == 5 {
            // asctime: Sun Nov  6 08:49:37 1994
            month = index(of: words[1])
            day = Int(words[2])
            time = clock(words[3])
            year = Int(words[4])
        }
        // A year past 9999 is not an HTTP date (they have four digits), and reading it as one would overflow the
        // arithmetic below: `Sun, 06 Nov 300000000 08:49:37 GMT` from a client once crashed Trove.
        guard let day, let month, let year, let time, (1...31).contains(day), (1970...9999).contains(year) else { return nil }
        let days = daysFromCivil(year: year, month: month + 1, day: day)
        return ((days * 24 + Int64(time[0])) * 3600 + Int64(time[1]) * 60 + Int64(time[2])) * 1000
    }

    private static func index(of month: String) -> Int? {
        months.firstIndex(of: month.lowercased())
    }

    private static func clock(_ text: String) -> [Int]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.count == 2 ? Int($0) : nil }
        guard parts.count == 3, let hour = parts[0], let minute = parts[1], let second = parts[2],
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else { return nil }
        return [hour, minute, second]
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
