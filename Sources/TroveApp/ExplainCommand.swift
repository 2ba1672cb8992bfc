internal import ArgumentParser
internal import Foundation
internal import TroveRules

/// `trove explain`: says what Trove would do with one request, without sending it anywhere.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show what Trove would do with a request: route, cache key, TTL, tags, and why.",
        discussion: """
            Nothing is sent to the origin or the store: the answer comes from the rules alone.

            Examples:
              trove explain -c rules/shopify-events.yaml 'GET /api/v1/events?page=2'
              trove explain -c rules/shopify-events.yaml 'PUT /api/v1/events/42'
              trove explain -c rules/fastapi-stats.yaml \\
                'GET /api/v1/products/stats/asin-status' -H 'Authorization: Bearer a'
            """
    )

    @OptionGroup var options: ConfigOption

    @Argument(help: ArgumentHelp(
        "The request: 'METHOD /path?query' (the method defaults to GET).", valueName: "request"))
    var request: String

    @Option(name: [.customShort("H"), .long], help: ArgumentHelp(
        "A request header, 'Name: value'. Repeat for more.", valueName: "header"))
    var header: [String] = []

    @Flag(help: "Print the explanation as JSON (the admin API's /explain answers the same).")
    var json = false

    func validate() throws {
        for item in header where !item.contains(":") {
            throw ValidationError("header '\(item)' has no ':'; write it as 'Name: value'")
        }
        _ = try RulesReport.parseRequest(request, headers: header)
    }

    func run() throws {
        let outcome = RulesReport.explain(path: options.config, request: request, headers: header, json: json)
        print(outcome.output)
        if !outcome.success { throw ExitCode.failure }
    }
}
