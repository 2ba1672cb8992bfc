internal import TroveHTTP
internal import ArgumentParser
internal import Foundation

/// `trove purge`: asks a running Trove's admin API to purge tags, keys, routes or everything.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Purge entries of a running Trove through its admin API.",
        discussion: """
            Examples:
              trove purge --tag events
              trove purge --tag event:42 --key events:full:42 --admin http://10.0.0.5:9090
              trove purge --route events-list
              trove purge --all
              trove purge --tag products --soft --stale 1m
            A soft purge (--soft) makes entries stale instead of gone: each is served while one refresh \
            runs, within its route's stale window plus --stale, so a broad purge costs the origin no stampede.
            The token is read from $TROVE_ADMIN_TOKEN (or --token-env); with --config, the admin address \
            comes from the rules file.
            """
    )

    @Option(name: .customLong("tag"), help: ArgumentHelp("A tag to purge. Repeat for more.", valueName: "tag"))
    var tags: [String] = []

    @Option(name: .customLong("key"), help: ArgumentHelp("A cache key to purge. Repeat for more.", valueName: "key"))
    var keys: [String] = []

    @Option(name: .customLong("route"), help: ArgumentHelp("A route whose entries to purge. Repeat for more.", valueName: "route"))
    var routes: [String] = []

    @Flag(help: "Purge every entry.")
    var all = false

    @Flag(help: "Make the entries stale instead of gone: served while one refresh runs.")
    var soft = false

    @Option(help: ArgumentHelp("With --soft: how long past each route's own stale window entries may still be served stale (30s, 5m).",
        valueName: "duration"))
    var stale: String?

    @OptionGroup var location: AdminOptions

    @Flag(help: "Print the admin API's JSON answer as it is, instead of a summary.")
    var json = false

    func validate() throws {
        if tags.isEmpty && keys.isEmpty && routes.isEmpty && !all {
            throw ValidationError("say what to purge: --tag, --key, --route or --all")
        }
        if let stale {
            guard soft else { throw ValidationError("--stale is the window of a soft purge: add --soft") }
            guard Units.parseDuration(stale) != nil else { throw ValidationError("--stale takes a duration such as 30s or 5m, not '\(stale)'") }
        }
    }

    func run() async throws {
        guard let client = location.client(for: "purge") else { throw ExitCode.failure }
        var body: [String: Any] = [:]
        if !tags.isEmpty { body["tags"] = tags }
        if !keys.isEmpty { body["keys"] = keys }
        if !routes.isEmpty { body["routes"] = routes }
        if all { body["all"] = true }
        if soft { body["soft"] = true }
        if let stale { body["stale"] = stale }
        guard let (status, text) = await client.send("POST", "/purge", json: body) else { throw ExitCode.failure }
        print(json ? text : Self.summary(status: status, body: text), terminator: json ? "" : "\n")
        if status >= 400 { throw ExitCode.failure }
    }
}

extension PurgeCommand {
    /// What the admin API's answer says, for a person: what was purged, hard or soft, and which keys had an entry;
    /// that it was queued, and why; or its error. An answer it cannot read is printed as it came.
    static func summary(status: Int, body: String) -> String {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] else { return body }
        if let error = object["error"] as? String { return "trove purge: \(error)" }
        if object["queued"] as? Bool == true {
            return "queued: \(object["reason"] as? String ?? "the store is unavailable"); nothing it covers is served meanwhile"
        }
        guard let purged = object["purged"] as? [String: Any] else { return body }
        let mode = purged["soft"] as? Bool == true ? "soft" : "hard"
        var lines: [String] = []
        if purged["all"] as? Bool == true { lines.append("  all     every entry") }
        for route in purged["routes"] as? [String] ?? [] { lines.append("  route   \(route)") }
        for tag in purged["tags"] as? [String] ?? [] { lines.append("  tag     \(tag)") }
        let keys = purged["keys"] as? [[String: Any]] ?? []
        for key in keys {
            lines.append("  key     \(key["key"] as? String ?? "?")   \(key["found"] as? Bool == true ? "had an entry" : "had no entry")")
        }
        let what = mode == "soft" ? "now stale: each is served while one refresh runs" : "gone: the next request for each is a miss"
        return (["\(mode) purge applied (\(status)); what it named is \(what):"] + lines).joined(separator: "\n")
    }
}

extension String {
    /// The string without `suffix` at its end (URLs given with a trailing `/`).
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
