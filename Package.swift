// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
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
        .target(name: "VigilKernels", dependencies: ["CBLAS"], swiftSettings: strictSettings),
        .target(name: "VigilCore", dependencies: ["VigilKernels"], swiftSettings: strictSettings),
        .target(
            name: "VigilFormats",
            dependencies: [
                "VigilCore", "ONNXProto", "CPNG", "CJPEG",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "VigilGuardrails", dependencies: ["VigilCore", "VigilKernels"], swiftSettings: strictSettings),
        .target(
            name: "VigilEngine",
            dependencies: [
                "VigilCore", "VigilFormats", "VigilGuardrails", "VigilKernels",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "VigilEngine",
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
        .testTarget(
            name: "VigilGuardrailsTests",
            dependencies: ["VigilGuardrails", "VigilCore", "VigilFormats", "VigilEngine", "VigilTesting"],
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
        .testTarget(name: "CLITests", dependencies: ["VigilTesting", "vigil"], swiftSettings: strictSettings),
    ]
)
