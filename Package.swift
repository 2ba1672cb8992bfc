// swift-tools-version:6.2
import PackageDescription

// One set of compiler settings for every target of ours (Hummingbird does the same):
// - warnings are errors, so NIO's @preconcurrency APIs cannot hide a real data race behind a warning;
// - InternalImportsByDefault keeps C modules and dependencies from leaking through public API (SE-0409);
// - ExistentialAny makes every existential visible at the use site (SE-0335);
// - MemberImportVisibility: a file sees members only of modules it imports itself (SE-0444).
let swiftSettings: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Trove",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "trove", targets: ["trove"]),
        .executable(name: "trove-loadtest", targets: ["trove-loadtest"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // C libraries. Each is imported by exactly one Swift target.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),

        // The vocabulary every module shares: HTTP's words (header fields, statuses, methods, dates, the grammar
        // of names and values, addresses) and the units of durations and sizes. Pure Swift, no dependencies.
        .target(name: "TroveHTTP", swiftSettings: swiftSettings),
        // The rules file: parse, validate, match routes, render cache keys. Pure Swift, no I/O but reading
        // the file.
        .target(
            name: "TroveRules",
            dependencies: [
                "TroveHTTP",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RS256 tokens (`TokenVerifier`): RSA signatures are in swift-crypto's extras.
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The decision core: freshness, hit/miss/stale/pass/purge, entries, the store and origin protocols
        // and their in-memory twins. No sockets, no NIO, no C.
        .target(
            name: "TroveCore",
            dependencies: ["TroveHTTP", "TroveRules", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The Redis store: hiredis' reader on a NIO-owned socket.
        .target(
            name: "TroveRedis",
            dependencies: [
                "TroveHTTP",
                "TroveCore",
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // TLS to managed Redis (rediss://), on the NIO-owned connection.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                // Per-node connections, redirections and topology changes for /metrics (the app's factory).
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The origin client: libcurl's multi interface on a dedicated thread.
        .target(
            name: "TroveCurl",
            dependencies: [
                "TroveHTTP",
                "TroveCore",
                "CCurl",
                "CCurlShim",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP in and out: the public listener and the admin API. The only place errors become statuses.
        .target(
            name: "TroveServer",
            dependencies: [
                "TroveHTTP",
                "TroveRules",
                "TroveCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The demo origin: a slow legacy API to run Trove in front of (`trove demo-origin`, tests, load tests).
        .target(
            name: "TroveDemoOrigin",
            dependencies: [
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The composition root and the command line; the only target that imports everything.
        .target(
            name: "TroveApp",
            dependencies: [
                "TroveHTTP",
                "TroveRules",
                "TroveCore",
                "TroveRedis",
                "TroveCurl",
                "TroveServer",
                "TroveDemoOrigin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "trove",
            dependencies: ["TroveApp"],
            swiftSettings: swiftSettings
        ),

        // Fixtures for tests and load tests: processes (posix_spawn), a redis-server on a free port (failing
        // loudly when there is none), blocking sockets, waiting on conditions. Nothing of Trove's.
        .target(
            name: "TroveFixtures",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
        // Test support: a manual clock and a scripted origin, the in-memory twins of Trove's clock and origin; signed
        // tokens for the JWT tests (swift-crypto signs them).
        .target(
            name: "TroveTestSupport",
            dependencies: [
                "TroveHTTP", "TroveCore", "TroveRules", "TroveFixtures", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load-test tool: runs a scenario straight at the origin and through Trove, and reports both.
        // A black box: it starts `trove` and the demo origin as processes and talks HTTP to them.
        .target(
            name: "TroveLoadTest",
            dependencies: [
                "TroveFixtures",
                "TroveHTTP",
                "TroveRules",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "trove-loadtest",
            dependencies: [
                "TroveLoadTest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The parsers that read what comes from outside, as functions of arbitrary bytes: for libFuzzer (`make fuzz`)
        // and for the tests that replay the committed corpus.
        .target(
            name: "TroveFuzz",
            dependencies: ["TroveHTTP", "TroveRules", "TroveCore", "TroveRedis", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // libFuzzer's driver, declared for trove-fuzz (linked only with -sanitize=fuzzer).
        .target(name: "CTroveFuzz"),
        // libFuzzer's entry point (built with -sanitize=fuzzer -DFUZZING by `make fuzz`); built plainly, it replays files.
        .executableTarget(
            name: "trove-fuzz",
            dependencies: ["TroveFuzz", "CTroveFuzz"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveFuzzTests",
            dependencies: ["TroveFuzz"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveCoreTests",
            dependencies: ["TroveHTTP", "TroveCore", "TroveRules", "TroveTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveRulesTests",
            dependencies: ["TroveHTTP", "TroveRules", "TroveTestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveRedisTests",
            dependencies: [
                "TroveFixtures",
                "TroveHTTP",
                "TroveRedis",
                "TroveTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveCurlTests",
            dependencies: [
                "TroveFixtures",
                "TroveHTTP",
                "TroveCurl",
                "TroveDemoOrigin",
                "TroveTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveServerTests",
            dependencies: [
                "TroveHTTP",
                "TroveServer",
                "TroveTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Trove end to end: a real redis-server and a real origin on free ports.
        .testTarget(
            name: "TroveIntegrationTests",
            dependencies: [
                "TroveFixtures",
                "TroveApp",
                "TroveHTTP",
                "TroveCore",
                "TroveRules",
                "TroveCurl",
                "TroveDemoOrigin",
                "TroveTestSupport",
                "TroveServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load-test tool: scenarios, the request mix, the generator and the report; and the whole tool end
        // to end with `trove` and redis-server as processes.
        .testTarget(
            name: "TroveLoadTestTests",
            dependencies: [
                "TroveLoadTest",
                "TroveFixtures",
                "TroveDemoOrigin",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TroveAppTests",
            dependencies: [
                "TroveApp", "TroveHTTP", "TroveRules", "TroveTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
