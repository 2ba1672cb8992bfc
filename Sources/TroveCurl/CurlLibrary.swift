internal import CCurl

/// Process-wide libcurl facts and set-up.
public enum CurlLibrary {
    /// libcurl's own description of itself, e.g. `libcurl/7.88.1 OpenSSL/3.0.15 zlib/1.2.13 …`.
    public static var version: String {
        String(cString: curl_version())
    }

    /// Initialises libcurl once per process. `curl_global_init` is not thread-safe, so this runs before the
    /// first transfer is created (a `static let` initialiser runs exactly once, under a lock).
    public static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()
}
