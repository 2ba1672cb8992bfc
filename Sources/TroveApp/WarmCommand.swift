internal import TroveHTTP
internal import ArgumentParser
internal import Foundation
internal import NIOCore
internal import TroveCore
internal import TroveCurl
internal import TroveRules

/// `trove warm`: fetches a list of URLs through a running Trove so that their entries are stored before users
/// ask, at a bounded concurrency and never faster than each origin's `rate` allows.
struct WarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warm",
        abstract: "Fetch URLs through a running Trove so their entries are stored before users ask.",
        discussion: """
            The URLs come from --urls FILE (one request target per line, such as /api/v1/events?page=1; \
            '#' starts a comment) or, without it, from the rules file's `warm:` list. Each is sent as a GET to \
            the proxy; URLs no cacheable route matches are reported and not sent.

            Requests to each origin start no faster than its `rate` (and at most its `max_concurrency` at once), \
            so warming a throttled API such as Shopify's never makes it answer 429.

            Examples:
              trove warm -c rules/shopify-events.yaml --urls warm.txt
              trove warm -c rules/django-catalog.yaml --proxy http://10.0.0.5:8080 --concurrency 8
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: ArgumentHelp("A file of request targets, one per line (default: the rules' warm: list).", valueName: "file"))
    var urls: String?

    @Option(help: ArgumentHelp("The proxy's URL (default: the rules' listen address).", valueName: "url"))
    var proxy: String?

    @Option(help: ArgumentHelp("Requests in flight at most.", valueName: "n"))
    var concurrency: Int = 4

    @Option(help: ArgumentHelp("Requests per second at most, over all origins (default: each origin's rate).", valueName: "n"))
    var rate: Double?

    func validate() throws {
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 256") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be more than 0") }
    }

    /// One URL to warm and what the rules say about it.
    struct Item: Sendable {
        let target: String
        let origin: String?
        /// Why it is not sent (no cacheable route); nil when it is.
        let skip: String?
    }

    /// What one URL came to.
    enum Outcome: String {
        case stored, fresh = "already fresh", stale = "stale, refreshing", notStored = "not stored", skipped, failed
    }

    func run() async throws {
        let rules: RuleSet
        do {
            rules = try RulesLoader.load(path: options.config)
        } catch {
            print(RulesReport.rejection(error, path: options.config))
            throw ExitCode.failure
        }
        let targets = try readTargets(rules)
        guard !targets.isEmpty else {
            FileHandle.standardError.write(Data(
                "trove warm: nothing to warm: give --urls FILE, or list request targets under warm: in \(options.config)\n".utf8))
            throw ExitCode.failure
        }
        let host = rules.listen.host == "0.0.0.0" ? "127.0.0.1" : rules.listen.host
        let base = (proxy ?? "http://\(host):\(rules.listen.port)").trimmingSuffix("/")
        let items = targets.map { Self.item($0, rules: rules) }
        let pacer = Pacer(rules: rules, overallRate: rate)
        let client = CurlOriginClient(maxCachedConnections: concurrency)
        let clock = ContinuousClock()
        let started = clock.now
        let width = String(items.count).count
        var counts: [Outcome: Int] = [:]
        var done = 0

        func report(_ item: Item, _ outcome: Outcome, _ detail: String) {
            done += 1
            counts[outcome, default: 0] += 1
            let number = String(repeating: " ", count: width - String(done).count) + String(done)
            print("[\(number)/\(items.count)] \(outcome.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0)) \(item.target)  \(detail)")
        }

        await withTaskGroup(of: (Item, Outcome, String).self) { group in
            var next = 0
            func startNext() {
                while next < items.count {
                    let item = items[next]
                    next += 1
                    if let skip = item.skip {
                        report(item, .skipped, skip)
                        continue
                    }
                    group.addTask { await Self.warm(item, base: base, client: client, pacer: pacer) }
                    return
                }
            }
            for _ in 0..<concurrency { startNext() }
            while let (item, outcome, detail) = await group.next() {
                report(item, outcome, detail)
                startNext()
            }
        }
        await client.shutdown()
        let seconds = Double((clock.now - started).milliseconds) / 1000
        let summary = [Outcome.stored, .fresh, .stale, .notStored, .skipped, .failed].compactMap { outcome in
            counts[outcome].map { "\($0) \(outcome.rawValue)" }
        }
        print("warmed \(items.count) URLs through \(base) in \(String(format: "%.1f", seconds)) s: \(summary.joined(separator: ", "))")
        if counts[.failed, default: 0] > 0 { throw ExitCode.failure }
    }

    /// The targets from --urls, or the rules' `warm:` list.
    func readTargets(_ rules: RuleSet) throws -> [String] {
        guard let urls else { return rules.warm }
        let text: String
        do {
            text = try String(contentsOfFile: urls, encoding: .utf8)
        } catch {
            FileHandle.standardError.write(Data("trove warm: cannot read --urls \(urls): \(error.localizedDescription)\n".utf8))
            throw ExitCode.failure
        }
        var targets: [String] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("GET ") { line = String(line.dropFirst(4)).trimmingCharacters(in: .whitespaces) }
            guard line.hasPrefix("/"), (try? RequestTarget(parsing: line)) != nil else {
                FileHandle.standardError.write(Data(
                    "trove warm: \(urls):\(number + 1): '\(line)' is not a request target; write it like /api/v1/events?page=1\n".utf8))
                throw ExitCode.failure
            }
            targets.append(line)
        }
        return targets
    }

    static func item(_ target: String, rules: RuleSet) -> Item {
        let plan = rules.plan(for: RequestHead(method: "GET", target: target))
        switch plan.decision {
        case .cache:
            return Item(target: target, origin: plan.origin?.name, skip: nil)
        case .bypass(let reason):
            return Item(target: target, origin: nil, skip: "route \(plan.route?.name ?? "?") does not store it (\(reason))")
        case .pass:
            return Item(target: target, origin: nil,
                skip: plan.route.map { "route \($0.name) passes it through unstored" } ?? "no route matches it")
        case .write, .reject:
            return Item(target: target, origin: nil, skip: "no cacheable route matches GET \(target)")
        }
    }

    static func warm(_ item: Item, base: String, client: CurlOriginClient, pacer: Pacer) async -> (Item, Outcome, String) {
        await pacer.wait(for: item.origin)
        let clock = ContinuousClock()
        let started = clock.now
        let result = await withCheckedContinuation { continuation in
            client.send(OriginRequest(
                origin: "trove", method: "GET", url: base + item.target, headers: [Header("Accept", "*/*")], body: nil,
                connectTimeout: .seconds(2), timeout: .seconds(120), maxResponseBytes: 256 << 20)) {
                continuation.resume(returning: $0)
            }
        }
        await pacer.done(item.origin)
        let millis = (clock.now - started).milliseconds
        switch result {
        case .failure(let error):
            return (item, .failed, "cannot reach Trove at \(base): \(error.reason)")
        case .success(let response):
            let cache = response.headers.value(of: "x-cache") ?? "-"
            let status = response.headers.value(of: "cache-status") ?? ""
            let detail = "\(response.status) \(cache) \(millis) ms"
            if response.status >= 500 { return (item, .failed, "\(detail): \(String(buffer: response.body).prefix(200))") }
            switch cache {
            case "HIT": return (item, .fresh, detail)
            case "STALE": return (item, .stale, detail)
            case "MISS" where status.contains("stored"): return (item, .stored, detail)
            default: return (item, .notStored, "\(detail) (\(status))")
            }
        }
    }
}

/// Spaces requests to each origin by its `rate` (and `max_concurrency`), or all of them by `--rate`.
actor Pacer {
    private struct Lane {
        var interval: Duration?
        var nextStart: ContinuousClock.Instant
        var limit: Int?
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private var lanes: [String: Lane] = [:]
    private let clock = ContinuousClock()
    private let overall: Duration?
    private let rules: RuleSet

    init(rules: RuleSet, overallRate: Double?) {
        self.rules = rules
        overall = overallRate.map { .nanoseconds(Int64(1e9 / $0)) }
    }

    private func lane(_ origin: String?) -> String {
        let name = overall != nil ? "*" : origin ?? "*"
        if lanes[name] == nil {
            let protection = origin.flatMap { rules.origin(named: $0)?.protection }
            let interval = overall ?? protection?.rate.map { Duration.nanoseconds(Int64(1e9 / $0)) }
            lanes[name] = Lane(interval: interval, nextStart: clock.now, limit: overall == nil ? protection?.maxConcurrency : nil)
        }
        return name
    }

    /// Returns when a request to `origin` may start.
    func wait(for origin: String?) async {
        let name = lane(origin)
        if let limit = lanes[name]!.limit, lanes[name]!.inFlight >= limit {
            // `done` hands its slot straight to the first waiter, so no one can take it in between.
            await withCheckedContinuation { lanes[name]!.waiters.append($0) }
        } else {
            lanes[name]!.inFlight += 1
        }
        let start = max(clock.now, lanes[name]!.nextStart)
        if let interval = lanes[name]!.interval { lanes[name]!.nextStart = start + interval }
        if start > clock.now { try? await clock.sleep(until: start) }
    }

    func done(_ origin: String?) {
        let name = lane(origin)
        if lanes[name]!.waiters.isEmpty {
            lanes[name]!.inFlight -= 1
        } else {
            lanes[name]!.waiters.removeFirst().resume()
        }
    }
}
