internal import TroveHTTP
internal import TroveCore
/// `GET /entry?key=KEY`: the entry's status, age, TTL, tags, size, and whether a purge invalidated it.
enum AdminEntry {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        guard let key = request.parameter("key") else {
            return answer(.error(400, "say which key: /entry?key=events:full:42 (trove explain shows a request's key)"))
        }
        guard let store = request.store else { return answer(.error(503, "no store")) }
        let now = request.environment.clock.nowMilliseconds()
        store.inspect(key: key) { result in
            switch result {
            case .failure(let error):
                answer(.error(503, "the store cannot answer: \(error)"))
            case .success(nil):
                answer(.error(404, "no entry is stored under '\(key)'"))
            case .success(let inspection?):
                let meta = inspection.meta
                answer(.json(200, [
                    "key": key, "route": meta.route, "status": meta.status, "valid": inspection.valid,
                    "age": meta.age(at: now), "ttl": meta.remainingTTL(at: now),
                    "stale_for": max(0, Int((meta.staleUntil - max(now, meta.freshUntil)) / 1000)),
                    "stored_at": AdminRequest.iso(meta.storedAt), "tags": meta.tags, "size": meta.bodyLength,
                    "headers": meta.headers.map { [$0.name, $0.value] },
                ]))
            }
        }
    }
}
