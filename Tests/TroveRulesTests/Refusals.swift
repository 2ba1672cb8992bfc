import Testing
import TroveRules

/// The diagnostics of a rules file that must be refused (with `errorsOnly`, its errors alone); records an issue
/// when the file is accepted. Shared by the suites that test what a rules file may not say.
func refusal(
    _ yaml: String, file: String, environment: [String: String] = ["TROVE_ADMIN_TOKEN": "t"], errorsOnly: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [String] {
    do {
        _ = try RulesLoader.parse(yaml, file: file, environment: environment)
        Issue.record("the file was accepted", sourceLocation: sourceLocation)
        return []
    } catch {
        return (errorsOnly ? error.errors : error.diagnostics).map(\.description)
    }
}
