/// `GET /purges`: the most recent purges, newest first: when, who made them (a write, the admin API, a webhook),
/// hard or soft, what they named, how many counters moved, and whether they were applied, queued or refused.
enum AdminPurges {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        let history = request.environment.purgeHistory
        answer(.encoded(200, Listing(kept: history.capacity, purges: history.recent)))
    }

    struct Listing: Encodable {
        /// How many purges are kept: older ones are forgotten.
        let kept: Int
        let purges: [PurgeHistory.Record]
    }
}
