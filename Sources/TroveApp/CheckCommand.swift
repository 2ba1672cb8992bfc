internal import ArgumentParser
internal import TroveRules

/// `trove check`: validates a rules file and shows what it will do.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a rules file and print its routes.",
        discussion: """
            Prints the listeners, store, origins and a table of routes in matching order, then any warnings. \
            Errors name the file, line, route and field. Exit status: 0 when the file is valid, 1 when it is \
            not (or, with --strict, when it has warnings).
            """
    )

    @OptionGroup var options: ConfigOption

    @Flag(help: "Fail (exit 1) on warnings too.")
    var strict = false

    func run() throws {
        let outcome = RulesReport.check(path: options.config, strict: strict)
        print(outcome.output)
        if !outcome.success { throw ExitCode.failure }
    }
}
