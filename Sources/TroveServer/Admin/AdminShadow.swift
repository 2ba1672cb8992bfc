internal import TroveCore

/// `GET /shadow`: what the routes in shadow would have done (would-be hits, misses, stale answers), the last stale
/// examples, and a diagnosis of each route that would have served stale answers (see `docs/shadow.md`).
/// `DELETE /shadow` starts the counts again: after changing the rules, a report of the new rules alone.
enum AdminShadow {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        let rules = request.environment.rules.current.rules
        answer(.encoded(200, request.environment.shadow.summary(rules: rules)))
    }

    static func reset(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        request.environment.shadow.reset()
        answer(.json(200, ["reset": true]))
    }
}
