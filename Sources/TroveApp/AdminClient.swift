internal import TroveHTTP
internal import ArgumentParser
internal import Foundation
internal import NIOCore
internal import TroveCore
internal import TroveCurl
internal import TroveRules

/// How a command talks to a running Trove's admin API (`trove purge`, `trove shadow`): where it is (--admin, or
/// the rules file's `admin.listen`), the token from the environment, one request through libcurl.
struct AdminClient {
    let url: String
    let tokenEnv: String
    let command: String

    /// `admin` when given; else the rules file's admin address; else the default. Nil (the rejection printed) when
    /// the rules file cannot be read.
    init?(admin: String?, config: String?, tokenEnv: String, command: String) {
        self.tokenEnv = tokenEnv
        self.command = command
        var url = admin ?? "http://127.0.0.1:9090"
        if admin == nil, let config {
            do {
                let rules = try RulesLoader.load(path: config)
                let host = rules.admin.listen.host == "0.0.0.0" ? "127.0.0.1" : rules.admin.listen.host
                url = "http://\(host):\(rules.admin.listen.port)"
            } catch {
                print(RulesReport.rejection(error, path: config))
                return nil
            }
        }
        self.url = url.trimmingSuffix("/")
    }

    var token: String? { ProcessInfo.processInfo.environment[tokenEnv].flatMap { $0.isEmpty ? nil : $0 } }

    /// The status and body of `method path`; on failure to reach it, says so on stderr and returns nil. A 401
    /// without a token says which variable to set.
    func send(_ method: String, _ path: String, json body: [String: Any]? = nil) async -> (status: Int, body: String)? {
        var headers: [Header] = []
        if let token { headers.append(Header("Authorization", "Bearer \(token)")) }
        var payload: ByteBuffer?
        if let body, let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]) {
            headers.append(Header("Content-Type", "application/json"))
            payload = ByteBuffer(bytes: data)
        }
        let client = CurlOriginClient(maxCachedConnections: 1)
        let result = await withCheckedContinuation { continuation in
            client.send(OriginRequest(
                origin: "admin", method: method, url: url + path, headers: headers,
                body: payload, connectTimeout: .seconds(2), timeout: .seconds(10), maxResponseBytes: 16 << 20)) {
                continuation.resume(returning: $0)
            }
        }
        await client.shutdown()
        switch result {
        case .failure(let error):
            FileHandle.standardError.write(Data("trove \(command): cannot reach the admin API at \(url): \(error.reason)\n".utf8))
            return nil
        case .success(let response):
            if response.status == 401 && token == nil {
                FileHandle.standardError.write(Data("trove \(command): the admin API wants a token: set $\(tokenEnv)\n".utf8))
            }
            return (response.status, String(buffer: response.body))
        }
    }
}

/// Where a command finds the admin API: `--admin`, or a rules file's `admin.listen`, and the token's variable.
struct AdminOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The admin API's URL.", valueName: "url"))
    var admin: String?

    @Option(name: [.short, .long], help: ArgumentHelp("A rules file to read the admin address from.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("The environment variable holding the admin token.", valueName: "name"))
    var tokenEnv: String = "TROVE_ADMIN_TOKEN"

    /// The client for `command`; nil (the rules file's rejection printed) when the rules file cannot be read.
    func client(for command: String) -> AdminClient? {
        AdminClient(admin: admin, config: config, tokenEnv: tokenEnv, command: command)
    }
}
