public import ArgumentParser

/// The `trove` command line: the root command and its subcommands.
public struct TroveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "trove",
        abstract: "A read-through caching reverse proxy for slow HTTP APIs, driven by a rules file.",
        discussion: """
            Trove sits in front of an HTTP API. A rules file says, per route, how to build the cache key, how \
            long answers stay fresh, which tags they carry and which writes purge what. Hits are served from \
            Redis (or memory), misses go to the origin, writes invalidate what they change.

            Start with the annotated example:
              trove check -c rules/example.yaml
              trove explain -c rules/shopify-events.yaml 'GET /api/v1/events?page=2'

            Rules reference: docs/rules.md
            """,
        version: TroveVersion.current,
        subcommands: [ServeCommand.self, CheckCommand.self, ExplainCommand.self, PurgeCommand.self, ShadowCommand.self, SuggestCommand.self, WarmCommand.self, DemoOriginCommand.self]
    )

    public init() {}
}

/// The version `trove --version` prints.
public enum TroveVersion {
    public static let current = "0.1.0"
}

/// The `--config` option every command that reads rules shares.
struct ConfigOption: ParsableArguments {
    @Option(
        name: [.short, .long],
        help: ArgumentHelp("The rules file.", valueName: "file"),
        completion: .file(extensions: ["yaml", "yml"])
    )
    var config: String = "trove.yaml"
}

extension TroveCommand {
    /// Parses the process arguments and runs the chosen command; exits the process when it is done.
    public static func runFromCommandLine() async {
        await main()
    }
}
