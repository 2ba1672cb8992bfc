import TroveHTTP
import Testing
import TroveRules

@Suite struct UnitsTests {
    /// Durations read the way ops people write them, largest unit first.
    @Test(arguments: [
        ("30s", 30_000), ("10m", 600_000), ("1h", 3_600_000), ("1h30m", 5_400_000), ("250ms", 250),
        ("2d", 172_800_000), ("0s", 0), ("1m30s", 90_000), (" 5m ", 300_000),
    ] as [(String, Int64)])
    func parsesDurations(text: String, milliseconds: Int64) {
        #expect(Units.parseDuration(text)?.milliseconds == milliseconds)
    }

    /// A bare number, a fraction, a unit out of order or repeated, and words are not durations.
    @Test(arguments: ["300", "1.5s", "30m1h", "1m1m", "5 minutes", "", "m", "10x", "-5s", "d5", "5"])
    func rejectsNonDurations(text: String) {
        #expect(Units.parseDuration(text) == nil)
    }

    /// Formatting writes what parsing reads.
    @Test func formatsDurations() {
        #expect(Units.format(.seconds(300)) == "5m")
        #expect(Units.format(.seconds(5400)) == "1h30m")
        #expect(Units.format(.milliseconds(250)) == "250ms")
        #expect(Units.format(.zero) == "0s")
        #expect(Units.parseDuration(Units.format(.milliseconds(93_784_005))) == .milliseconds(93_784_005))
    }

    /// Sizes are bytes or powers of 1024, as in nginx.
    @Test func parsesSizes() {
        #expect(Units.parseSize("1048576") == 1_048_576)
        #expect(Units.parseSize("512KB") == 524_288)
        #expect(Units.parseSize("1MB") == 1_048_576)
        #expect(Units.parseSize("1 MiB") == 1_048_576)
        #expect(Units.parseSize("2gb") == 2_147_483_648)
        #expect(Units.parseSize("1.5MB") == nil)
        #expect(Units.parseSize("lots") == nil)
        #expect(Units.parseSize("10PB") == nil)
        #expect(Units.format(bytes: 1_048_576) == "1 MiB")
        #expect(Units.format(bytes: 1_572_864) == "1.5 MiB")
        #expect(Units.format(bytes: 100) == "100 B")
    }
}
