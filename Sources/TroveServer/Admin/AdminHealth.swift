/// `GET /healthz`: the process is alive. No token: a liveness probe carries none.
enum AdminHealth {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        answer(.json(200, ["status": "ok"]))
    }
}
