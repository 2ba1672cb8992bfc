internal import NIOCore
internal import Foundation
internal import TroveCore
internal import TroveRules
internal import TroveHTTP

/// `POST /purge` with `{"tags": [], "keys": [], "routes": [], "all": false, "soft": false, "stale": "30s"}`: what was
/// invalidated (200), or that the store is away and the purge is queued (202). A soft purge makes what it covers
/// stale instead of gone, served while one refresh runs within each route's `stale` window plus `stale`.
enum AdminPurge {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        let loaded = request.environment.rules.current
        let purges: PurgeSet
        switch parse(Data(request.body.readableBytesView), cachedRoutes: loaded.rules.routes.filter { $0.cachePolicy != nil }.map(\.name)) {
        case .success(let parsed): purges = parsed
        case .failure(let error): return answer(.error(400, error.message))
        }
        guard let store = request.store else { return answer(.error(503, "no store")) }
        request.environment.purger.purge(purges, from: .admin, settings: loaded.purgeSettings, in: store) { result in
            switch result {
            case .applied(let report):
                answer(.json(200, ["purged": [
                    "all": report.all, "routes": report.routes, "tags": report.tags,
                    "keys": report.keys.map { ["key": $0.key, "found": $0.found] },
                    "soft": purges.soft != nil,
                ]]))
            case .queued(let error):
                answer(.json(202, [
                    "queued": true,
                    "reason": "the store is unavailable (\(error)); the purge is applied as soon as it is back, and "
                        + "until then nothing is served from it",
                ]))
            case .refused(let reason):
                answer(.error(413, reason))
            }
        }
    }

    struct BodyError: Error, Equatable {
        let message: String
    }

    /// The body's fields, decoded in one pass that also sees the keys it does not know.
    private struct Body: Decodable {
        var tags: [String] = []
        var keys: [String] = []
        var routes: [String] = []
        var all = false
        var soft = false
        var stale: String?

        struct Key: CodingKey {
            let stringValue: String
            init(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            let unknown = container.allKeys.map(\.stringValue).filter { !Self.fields.contains($0) }
            guard unknown.isEmpty else {
                throw BodyError(message: "unknown field(s) \(unknown.sorted().joined(separator: ", ")); use tags, keys, routes, all, soft or stale")
            }
            tags = try container.decodeIfPresent([String].self, forKey: Key(stringValue: "tags")) ?? []
            keys = try container.decodeIfPresent([String].self, forKey: Key(stringValue: "keys")) ?? []
            routes = try container.decodeIfPresent([String].self, forKey: Key(stringValue: "routes")) ?? []
            all = try container.decodeIfPresent(Bool.self, forKey: Key(stringValue: "all")) ?? false
            soft = try container.decodeIfPresent(Bool.self, forKey: Key(stringValue: "soft")) ?? false
            stale = try container.decodeIfPresent(String.self, forKey: Key(stringValue: "stale"))
        }

        static let fields = ["tags", "keys", "routes", "all", "soft", "stale"]
    }

    /// The body, read once: a JSON object of known fields, each of its type, naming something.
    static func parse(_ data: Data, cachedRoutes: [String]) -> Result<PurgeSet, BodyError> {
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: data)
        } catch let error as BodyError {
            return .failure(error)
        } catch DecodingError.typeMismatch(_, let context) where !context.codingPath.isEmpty {
            let field = context.codingPath[0].stringValue
            let expected = switch field {
            case "all", "soft": "\(field) is true or false"
            case "stale": "stale is a duration such as \"30s\" or \"5m\""
            default: "\(field) is a list of strings"
            }
            return .failure(BodyError(message: expected))
        } catch DecodingError.typeMismatch {
            return .failure(BodyError(message: "the body must be a JSON object"))
        } catch {
            return .failure(BodyError(message: "the body must be JSON like {\"tags\": [\"events\"]} (\(error.localizedDescription))"))
        }
        for route in body.routes where !cachedRoutes.contains(route) {
            return .failure(BodyError(message: "no cached route is named '\(route)'; cached routes: \(cachedRoutes.joined(separator: ", "))"))
        }
        var soft: SoftPurge?
        if let stale = body.stale {
            guard body.soft else { return .failure(BodyError(message: "stale is the window of a soft purge: add \"soft\": true")) }
            guard let window = Units.parseDuration(stale) else {
                return .failure(BodyError(message: "stale is a duration such as \"30s\" or \"5m\", not '\(stale)'"))
            }
            soft = SoftPurge(extraStale: window.milliseconds)
        } else if body.soft {
            soft = SoftPurge()
        }
        let purges = PurgeSet(tags: body.tags, keys: body.keys, routes: body.routes, everything: body.all, soft: soft)
        guard !purges.isEmpty else {
            return .failure(BodyError(message: "nothing to purge: give tags, keys, routes or \"all\": true"))
        }
        return .success(purges)
    }
}
