internal import Foundation

/// `GET /stats`: requests, hits (and how many were served from this process's memory), misses, passes and the hit
/// ratio, overall and per route.
enum AdminStats {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        let stats = request.environment.stats
        request.storeHealth { health in
            answer(.json(200, [
                "rules": request.rulesDescription,
                "store": request.storeDescription(health),
                "total": describe(stats.total),
                "routes": stats.byRoute.mapValues(describe),
            ]))
        }
    }

    static func describe(_ counts: ProxyStats.Snapshot) -> [String: Any] {
        var fields: [String: Any] = [
            "requests": counts.requests, "hits": counts.hits, "misses": counts.misses, "stale": counts.stale,
            "bypasses": counts.bypasses, "passes": counts.passes, "errors": counts.errors, "stored": counts.stored,
            // RFC 9211's word for a request coalesced on another's fetch, as Cache-Status says it.
            "collapsed": counts.coalesced,
            // Of the hits, those served from this process's memory (the memory store, or the in-process tier).
            "local_hits": counts.localHits,
        ]
        fields["hit_ratio"] = counts.hitRatio.map { ($0 * 10_000).rounded() / 10_000 } ?? NSNull()
        return fields
    }
}
