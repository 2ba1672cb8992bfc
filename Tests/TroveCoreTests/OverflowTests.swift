import TroveHTTP
import Testing
@testable import TroveCore
import TroveRules

/// Numbers from outside (HTTP dates, `Age`, stored instants, rates) never make arithmetic trap: a trap is the
/// whole process gone (#12, finding 1: one `If-Modified-Since` with the year 300000000 crashed Trove).
@Suite struct OverflowTests {
    static let huge = [
        "Sun, 06 Nov 300000000 08:49:37 GMT", "Sunday, 06-Nov-300000000 08:49:37 GMT", "Sun Nov  6 08:49:37 300000000",
        "Sun, 06 Nov 9223372036854775807 08:49:37 GMT", "Sun, 06 Nov 99999 08:49:37 GMT", "Sun, 06 Nov 1994 99:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:3 GMT", "Sun, 06 Nov 1994 08:49:37:12 GMT", "Sun, 06 Nov 1994 8:49:37 GMT",
    ]

    /// Years past 9999 (and clocks that are not HH:MM:SS) are not HTTP dates, in all three forms.
    @Test(arguments: huge) func hugeYearsAreNotDates(text: String) {
        #expect(HTTPDate.milliseconds(text) == nil)
    }

    @Test func theLastFourDigitYearIsADate() {
        #expect(HTTPDate.milliseconds("Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799_000)
    }

    /// An If-Modified-Since, Last-Modified or Date from far in the future is compared, or ignored, without a trap.
    @Test(arguments: huge) func conditionalsWithHugeDates(text: String) {
        let entry = [Header("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]
        #expect(!ConditionalRequest.notModified(request: [Header("If-Modified-Since", text)], entryStatus: 200, entryHeaders: entry))
        #expect(!ConditionalRequest.notModified(request: [Header("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")],
            entryStatus: 200, entryHeaders: [Header("Last-Modified", text), Header("Date", text)]))
    }

    /// An origin's Expires, Date and Age at their extremes give a bounded lifetime.
    @Test func originHeadersAtTheirExtremes() throws {
        let policy = try FreshnessTests.policy("ttl: 5m, freshness: origin, max_ttl: 1h")
        let now: Int64 = 1_800_000_000_000
        for headers in [
            [Header("Expires", "Fri, 31 Dec 9999 23:59:59 GMT"), Header("Date", "Thu, 01 Jan 1970 00:00:00 GMT")],
            [Header("Expires", "Sun, 06 Nov 300000000 08:49:37 GMT"), Header("Date", "Sun, 06 Nov 300000000 08:49:37 GMT")],
            [Header("Cache-Control", "max-age=99999999999999999999999"), Header("Age", "99999999999999999999999")],
            [Header("Cache-Control", "s-maxage=9223372036854775807, stale-if-error=9223372036854775807")],
        ] {
            let freshness = try #require(Freshness.of(status: 200, headers: headers, policy: policy, now: now))
            #expect((0...3_600_000).contains(freshness.ttl), "\(headers)")
        }
    }

    /// Instants read back from the store may be anything another writer put there.
    @Test func storedInstantsAtTheirExtremes() {
        for (storedAt, freshUntil) in [(Int64.min, Int64.min), (Int64.max, Int64.max), (Int64.min, Int64.max), (0, Int64.min + 1)] {
            let meta = EntryMeta(status: 200, headers: [], storedAt: storedAt, freshUntil: freshUntil, staleUntil: freshUntil,
                errorUntil: freshUntil, route: "r", tags: [], generations: [], variant: [], bodyLength: 0)
            for now in [Int64.min, 0, 1_800_000_000_000, Int64.max] {
                #expect(meta.age(at: now) >= 0)
                _ = meta.remainingTTL(at: now)
            }
        }
    }

    /// A bucket with a rate the rules would refuse still answers how long to wait, clamped.
    @Test func tinyRatesDoNotTrap() {
        var bucket = TokenBucket(rate: 1e-22, capacity: 1, now: 0)
        let first = bucket.take(now: 0)
        let second = bucket.take(now: 1)
        let wait = bucket.wait(now: 1)
        bucket.pause(until: .max, now: 0)
        let paused = bucket.wait(now: 2)
        #expect(first && !second)
        #expect(wait == .max)
        #expect(paused == .max)
    }

    @Test func clampedArithmetic() {
        #expect(Int64.max.addingClamped(1) == .max)
        #expect(Int64.min.addingClamped(-1) == .min)
        #expect(Int64.min.subtractingClamped(1) == .min)
        #expect(Int64(5).subtractingClamped(.min) == .max)
        #expect(Int64.max.multipliedClamped(by: -2) == .min)
        #expect(Int64(-3).multipliedClamped(by: .min) == .max)
        #expect(Int64(clamping: Double.nan) == 0)
        #expect(Int64(clamping: Double.infinity) == .max)
        #expect(Int64(clamping: -1e300) == .min)
        #expect(Int64(clamping: 12.9) == 12)
        #expect(Units.parseDuration("99999999999d999999999999h") == Units.longestDuration)
        #expect(Units.longestDuration.milliseconds == 36_500 * 86_400_000)
        #expect(Duration.seconds(Int64.max).milliseconds == .max)
    }
}

/// The size a gzip trailer declares (#12, finding 8).
@Suite struct GzipTrailerTests {
    @Test func declaredSize() {
        #expect(ContentCoding.declaredGzipSize([UInt8](repeating: 0, count: 14) + [0x00, 0x00, 0x00, 0x40]) == 1 << 30)
        #expect(ContentCoding.declaredGzipSize([UInt8](repeating: 0, count: 14) + [0x05, 0x01, 0x00, 0x00]) == 261)
        #expect(ContentCoding.declaredGzipSize([UInt8](repeating: 0, count: 17)) == nil)
    }
}
