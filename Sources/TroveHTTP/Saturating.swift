/// Arithmetic that clamps instead of trapping, for numbers that came from outside Trove (HTTP dates, header
/// values, stored entries, rules files): Swift traps on overflow, and a trap is a crash of the whole process,
/// so one hostile request would stop every client's answers.
///
/// Parsers bound what they accept (an HTTP date's year, a duration's size, a rate's minimum), so these are the
/// second line: the arithmetic after parsing stays defined even for values a parser did not foresee.
extension Int64 {
    /// `self + other`, clamped to `Int64.min...Int64.max`.
    @inlinable
    public func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// `self - other`, clamped to `Int64.min...Int64.max`.
    @inlinable
    public func subtractingClamped(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other < 0 ? .max : .min
    }

    /// `self * other`, clamped to `Int64.min...Int64.max`.
    @inlinable
    public func multipliedClamped(by other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        guard overflow else { return product }
        return (self < 0) == (other < 0) ? .max : .min
    }

    /// A `Double` as a whole number, clamped: NaN is 0, infinities and values past the range are its ends.
    @inlinable
    public init(clamping value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_807.0 {
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self = Int64(value)
        }
    }
}

extension Int {
    /// A `Double` as a whole number, clamped: NaN is 0, infinities and values past the range are its ends.
    @inlinable
    public init(clamping value: Double) {
        self = Int(Int64(clamping: value))
    }
}
