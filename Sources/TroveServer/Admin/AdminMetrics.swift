internal import NIOCore

/// `GET /metrics`: `/stats` and more in Prometheus' text format (`ProxyMetrics`).
enum AdminMetrics {
    static func answer(_ request: AdminRequest, _ answer: @escaping (JSONAnswer) -> Void) {
        answer(JSONAnswer(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            body: ByteBuffer(bytes: request.environment.metrics.exposition())))
    }
}
