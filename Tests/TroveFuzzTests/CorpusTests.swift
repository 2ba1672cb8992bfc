import Foundation
import Testing
import TroveFuzz

/// Every input in the committed fuzz corpus (`fuzz/corpus/TARGET`) and every input fuzzing once found a problem
/// with (`fuzz/regressions/TARGET`) runs through its target again: a crash or a broken invariant fails the test.
@Suite struct CorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    static func inputs(_ folder: String, _ target: String) -> [URL] {
        let directory = root.appendingPathComponent(folder).appendingPathComponent(target)
        return ((try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? [])
            .filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.path < $1.path }
    }

    @Test(arguments: FuzzTargets.names) func corpusReplays(target: String) throws {
        let files = Self.inputs("corpus", target) + Self.inputs("regressions", target)
        #expect(!Self.inputs("corpus", target).isEmpty, "fuzz/corpus/\(target) holds the seeds and what fuzzing kept")
        for file in files {
            let bytes = try Data(contentsOf: file)
            bytes.withUnsafeBytes { FuzzTargets.run(target, $0) }
        }
    }
}
