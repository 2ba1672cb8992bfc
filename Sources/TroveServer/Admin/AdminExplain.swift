internal import Foundation
internal import TroveCore
internal import TroveHTTP
internal import TroveRules

/// `GET /explain?request=GET%20/path&header=Name:%20value`: what the rules do with a request, as
/// `trove explain --json` prints it.
enum AdminExplain {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        guard let line = request.parameter("request") else {
            return answer(.error(400, "say which request: /explain?request=GET%20/api/v1/events%3Fpage%3D2"))
        }
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard (1...2).contains(words.count) else { return answer(.error(400, "the request must be 'METHOD /path?query'")) }
        let method = words.count == 2 ? words[0].uppercased() : "GET"
        let target = String(words.last!)
        var headers: [Header] = []
        for item in request.query where item.name == "header" {
            guard let value = item.value, let colon = value.firstIndex(of: ":") else {
                return answer(.error(400, "header '\(item.value ?? "")' has no ':'; write header=Name:%20value"))
            }
            headers.append(Header(value[..<colon].trimmingWhitespace(), value[value.index(after: colon)...].trimmingWhitespace()))
        }
        let rules = request.environment.rules.current.rules
        let head = RequestHead(method: method, target: target, headers: headers, receivedAt: request.environment.clock.nowMilliseconds())
        answer(.encoded(200, Explanation(plan: rules.plan(for: head), rules: rules, request: head)))
    }
}
