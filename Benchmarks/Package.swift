// swift-tools-version: 6.1
// Benchmarks for Vigil, kept in their own package so that `swift test` of the main package
// neither builds nor runs them. Run from this folder:
//     swift package --disable-sandbox benchmark --no-progress
import PackageDescription

// A path dependency's identity is the name of its folder, which depends on where the repository
// was cloned (`main`, `vigil`, ...): derive it instead of spelling it.
let vigilPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "main").lowercased()

let package = Package(
    name: "VigilBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // The MallocInterposer trait backs .mallocCountTotal; resolution fails without naming it.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "VigilBenchmarks",
            dependencies: [
                .product(name: "VigilEngine", package: vigilPackage),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/VigilBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
