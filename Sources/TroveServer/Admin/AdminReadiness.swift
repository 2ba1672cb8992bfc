internal import TroveCore

/// `GET /readyz`: the rules loaded, and the store ready or degraded (requests then go to the origin).
enum AdminReadiness {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        request.storeHealth { health in
            answer(.json(200, [
                "status": health.ready ? "ready" : "degraded",
                "rules": request.rulesDescription,
                "store": request.storeDescription(health),
            ]))
        }
    }
}
