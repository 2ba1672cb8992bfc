import Testing
import TroveCurl

@Suite struct CurlLibraryTests {
    /// libcurl is linked and initialises; it reports its version.
    @Test func reportsItsVersion() {
        #expect(CurlLibrary.initialized)
        let version = CurlLibrary.version
        #expect(version.hasPrefix("libcurl/"), "got \(version)")
        let number = version.dropFirst("libcurl/".count).prefix { $0 != " " }
        #expect(number.split(separator: ".").count == 3, "got \(version)")
    }
}
