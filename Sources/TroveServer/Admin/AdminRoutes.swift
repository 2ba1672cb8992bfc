internal import Foundation
internal import NIOCore
internal import NIOHTTP1
internal import TroveCore

/// What an endpoint does with its request: answers once, on the request's event loop.
typealias AdminEndpoint = @Sendable (AdminRequest, @escaping (JSONAnswer) -> Void) -> Void

/// The admin API: each endpoint once, with its method, path and what it answers. The handler finds requests
/// here; the 404 hint, the 405 `Allow` list and the documentation's table are all derived from it.
///
/// To add an endpoint: write it in its own file in this folder (a function of `AdminRequest`), add its row
/// here, and its line to `docs/operations.md`.
enum AdminRoutes {
    struct Route: Sendable {
        let method: HTTPMethod
        let path: String
        /// What the path takes, for the 404 hint (`?key=…`).
        let usage: String
        /// False only for `/healthz`: a liveness probe carries no token.
        let needsToken: Bool
        let endpoint: AdminEndpoint
    }

    static let table: [Route] = [
        Route(method: .GET, path: "/healthz", usage: "", needsToken: false, endpoint: AdminHealth.answer),
        Route(method: .GET, path: "/readyz", usage: "", needsToken: true, endpoint: AdminReadiness.answer),
        Route(method: .GET, path: "/stats", usage: "", needsToken: true, endpoint: AdminStats.answer),
        Route(method: .GET, path: "/metrics", usage: "", needsToken: true, endpoint: AdminMetrics.answer),
        Route(method: .GET, path: "/explain", usage: "?request=…", needsToken: true, endpoint: AdminExplain.answer),
        Route(method: .GET, path: "/entry", usage: "?key=…", needsToken: true, endpoint: AdminEntry.answer),
        Route(method: .POST, path: "/purge", usage: "", needsToken: true, endpoint: AdminPurge.answer),
        Route(method: .GET, path: "/purges", usage: "", needsToken: true, endpoint: AdminPurges.answer),
        Route(method: .POST, path: "/reload", usage: "", needsToken: true, endpoint: AdminReload.answer),
        Route(method: .GET, path: "/shadow", usage: "", needsToken: true, endpoint: AdminShadow.answer),
        Route(method: .DELETE, path: "/shadow", usage: "", needsToken: true, endpoint: AdminShadow.reset),
    ]

    /// How a request's method and path resolve.
    enum Resolution {
        case route(Route)
        /// The path exists, not with this method: these are the methods it takes.
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    static func resolve(method: HTTPMethod, path: String) -> Resolution {
        let routes = table.filter { $0.path == path }
        if let route = routes.first(where: { $0.method == method }) { return .route(route) }
        return routes.isEmpty ? .notFound : .methodNotAllowed(allowed: routes.map(\.method))
    }

    /// True when the path is answered without a token (`/healthz`).
    static func isPublic(_ path: String) -> Bool {
        table.contains { $0.path == path && !$0.needsToken }
    }

    /// The answer to a path that is not in the table: every endpoint, grouped by method.
    static func notFound(_ path: String) -> JSONAnswer {
        let byMethod = Dictionary(grouping: table, by: \.method.rawValue)
        let lists = byMethod.keys.sorted().map { method in
            "\(method) " + byMethod[method]!.map { $0.path + $0.usage }.joined(separator: ", ")
        }
        return .error(404, "no such endpoint \(path); try \(lists.joined(separator: "; "))")
    }

    /// The answer to a known path with a method it does not take, with `Allow`.
    static func methodNotAllowed(_ method: HTTPMethod, path: String, allowed: [HTTPMethod]) -> JSONAnswer {
        let names = allowed.map(\.rawValue).joined(separator: ", ")
        var answer = JSONAnswer.error(405, "\(method.rawValue) is not allowed on \(path); use \(names)")
        answer.headers.append(("Allow", names))
        return answer
    }
}
