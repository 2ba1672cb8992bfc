import ArgumentParser
import Testing
import TroveRules
@testable import TroveApp

/// `trove serve`'s command-line overrides of the rules file.
struct ServeOptionsTests {
    @Test func originListenAndStoreOverrides() throws {
        let command = try ServeCommand.parse([
            "-c", Repository.rules("demo.yaml"), "--origin", "demo=http://127.0.0.1:18080/v1", "--listen", "127.0.0.1:18081",
            "--memory",
        ])
        let rules = command.overridden(try RulesLoader.load(path: Repository.rules("demo.yaml"), environment: Repository.environment))
        #expect(rules.origin(named: "demo")?.url == "http://127.0.0.1:18080/v1")
        #expect(rules.listen.description == "127.0.0.1:18081")
        #expect(rules.store.redis == nil)
    }

    @Test(arguments: [
        (["--origin", "nope"], "--origin 'nope' is not name=URL, e.g. --origin events-api=http://127.0.0.1:8001"),
        (["--origin", "demo=ftp://x"], "--origin demo=ftp://x: 'ftp://x' is not an http:// or https:// URL with a host"),
        (["--redis", "redis://x:1/0", "--memory"], "say --redis or --memory, not both"),
        (["--listen", "8080"], "--listen '8080' is not host:port, e.g. 0.0.0.0:8080"),
    ])
    func badOptionsSayWhatToWrite(arguments: [String], message: String) {
        do {
            _ = try ServeCommand.parse(arguments)
            Issue.record("\(arguments) was accepted")
        } catch {
            #expect(ServeCommand.message(for: error) == message)
        }
    }
}
