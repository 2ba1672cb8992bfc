internal import TroveCore

/// `GET /healthz` (alive; no token) and `GET /readyz` (rules loaded; the store ready or degraded).
enum AdminHealth {
    static func liveness(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        answer(.json(200, ["status": "ok"]))
    }

    static func readiness(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        request.storeHealth { health in
            answer(.json(200, [
                "status": health.ready ? "ready" : "degraded",
                "rules": request.rulesDescription,
                "store": request.storeDescription(health),
            ]))
        }
    }
}
