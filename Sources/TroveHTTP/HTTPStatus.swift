/// What HTTP says about status codes that a cache needs to know (RFC 9110 §15, RFC 9111 §3).
public enum HTTPStatus {
    /// Statuses an answer may be stored with and reused without explicit freshness (RFC 9110 §15.1), less 206:
    /// Trove stores whole representations only.
    public static let heuristicallyCacheable = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

    /// The statuses RFC 9110 defines: a cache "understands" these (`must-understand`, RFC 9111 §5.2.2.3).
    public static func isUnderstood(_ status: Int) -> Bool {
        switch status {
        case 200...206, 300...305, 307, 308, 400...417, 421, 422, 426, 500...505: true
        default: false
        }
    }

    /// Final statuses a cache may store: not 1xx, and not 206 or 304, which are not whole representations.
    public static func isStorable(_ status: Int) -> Bool {
        (200...599).contains(status) && status != 206 && status != 304
    }
}
