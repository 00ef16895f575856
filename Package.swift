// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// Hand kernels that need AVX2 and FMA (Sources/VigilKernelsAVX2) are compiled for Haswell-class
// x86-64 CPUs; VigilKernels calls them only after checking the CPU (CCPU), so the binary still
// runs on baseline x86-64. Elsewhere they are compiled for the baseline.
#if arch(x86_64)
let avx2Settings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let avx2Settings: [SwiftSetting] = []
#endif

// VigilServer reads Glibc structs (stat, timespec) that NIO's C shims (CNIOLinux) and Dispatch
// also declare; which clang module "defines" them for MemberImportVisibility changed between a
// warm and a fresh build, so that one target checks member imports the Swift 5 way.
let serverSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Vigil",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VigilEngine", targets: ["VigilEngine"]),
        .executable(name: "vigil", targets: ["vigil"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The server (issue 7). Hummingbird's default traits pull in swift-configuration, which
        // the server does not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // NIOHTTPTypes: the response parts a channel handler writes for a request the HTTP/1
        // parser rejects (already resolved through Hummingbird; issue 13).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // OpenBLAS + LAPACKE from Debian (libopenblas-dev, liblapacke-dev).
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // PNG and JPEG decoding from Debian (libpng-dev, libjpeg62-turbo-dev); the shims keep
        // libpng's and libjpeg's longjmp error handling inside C.
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        // Generated once by Sources/ONNXProto/regenerate.sh and committed.
        .target(
            name: "ONNXProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["onnx-ml.proto", "regenerate.sh"]
        ),
        // cpuid, header only.
        .systemLibrary(name: "CCPU"),
        .target(name: "VigilKernelsAVX2", swiftSettings: strictSettings + avx2Settings),
        .target(name: "VigilKernels", dependencies: ["CBLAS", "CCPU", "VigilKernelsAVX2"], swiftSettings: strictSettings),
        .target(name: "VigilCore", dependencies: ["VigilKernels", "VigilKernelsAVX2"], swiftSettings: strictSettings),
        // JSON reading (JSONValue) and writing (JSON text, ordered JSONOutput) in one place.
        .target(name: "VigilJSON", dependencies: ["VigilCore"], swiftSettings: strictSettings),
        .target(
            name: "VigilFormats",
            dependencies: [
                "VigilCore", "VigilJSON", "ONNXProto", "CPNG", "CJPEG",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        // The runtime guard: group fields, the fitted policy, threshold resolution.
        .target(name: "VigilGuard", dependencies: ["VigilCore"], swiftSettings: strictSettings),
        // Explanation: linear SHAP, TreeSHAP, integrated gradients.
        .target(name: "VigilExplain", dependencies: ["VigilCore", "VigilKernels"], swiftSettings: strictSettings),
        // Statistics the audit and the monitor share: metrics from counts, curves, calibration,
        // bootstrap intervals, Wilson intervals, PSI and Jensen-Shannon drift.
        .target(name: "VigilStatistics", dependencies: ["VigilCore"], swiftSettings: strictSettings),
        // The offline tools: fairness audit, disparities, threshold fitting.
        .target(
            name: "VigilAudit",
            dependencies: ["VigilCore", "VigilKernels", "VigilStatistics", "VigilGuard"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "VigilEngine",
            dependencies: [
                "VigilCore", "VigilFormats", "VigilJSON", "VigilGuard", "VigilExplain", "VigilStatistics",
                "VigilAudit", "VigilKernels",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // HTTP/1.1 + JSON on a Unix socket and/or loopback TCP: Open Inference Protocol, native
        // records, outcomes, monitoring, Prometheus, and the hash-chained audit ledger.
        .target(
            name: "VigilServer",
            dependencies: [
                "VigilEngine", "VigilJSON", "VigilStatistics",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: serverSettings
        ),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "VigilEngine", "VigilServer", "VigilJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "VigilTesting", dependencies: ["VigilEngine", "VigilCore"], swiftSettings: strictSettings),
        .testTarget(name: "VigilKernelsTests", dependencies: ["VigilKernels", "VigilTesting"], swiftSettings: strictSettings),
        .testTarget(name: "VigilCoreTests", dependencies: ["VigilCore", "VigilTesting"], swiftSettings: strictSettings),
        .testTarget(
            name: "VigilFormatsTests",
            dependencies: ["VigilFormats", "VigilCore", "VigilEngine", "VigilTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "VigilJSONTests", dependencies: ["VigilJSON", "VigilCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "VigilExplainTests",
            dependencies: ["VigilExplain", "VigilCore", "VigilFormats", "VigilEngine", "VigilTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilAuditTests",
            dependencies: ["VigilAudit", "VigilStatistics", "VigilGuard", "VigilCore", "VigilEngine", "VigilTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "VigilEngineTests", dependencies: ["VigilEngine", "VigilTesting"], swiftSettings: strictSettings),
        // ONNX's own backend node tests (Tests/Fixtures/onnx_node, copied by its collect.py).
        .testTarget(
            name: "ONNXConformanceTests",
            dependencies: [
                "VigilFormats", "VigilCore", "VigilTesting", "ONNXProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilServerTests",
            dependencies: ["VigilServer", "VigilEngine", "VigilTesting", "vigil"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "CLITests", dependencies: ["VigilTesting", "VigilKernels", "vigil"], swiftSettings: strictSettings),
    ]
)
