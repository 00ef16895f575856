public import Foundation

/// Locates and reads the reference fixtures in `Tests/Fixtures` (made by
/// `Tests/Fixtures/make_fixtures.py` from LightGBM, XGBoost, scikit-learn and onnxruntime).
public enum Fixtures {
    /// The repository root, found from this source file's path.
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/VigilTesting/Fixtures.swift
        return url
    }()

    public static let root = repositoryRoot.appendingPathComponent("Tests/Fixtures")

    public static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// The case folders under a family (`lightgbm`, `xgboost`, `linear`), sorted. A missing or
    /// empty family folder gives one case that names the problem, so the parameterized test
    /// fails on it instead of running no case and passing (`FixtureInventoryTests` also
    /// asserts each family's count).
    public static func cases(_ family: String) -> [String] {
        let dir = root.appendingPathComponent(family)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
            return ["\(family)/\(missingMarker)-folder-not-found"]
        }
        let found = names.filter { !$0.hasPrefix(".") }.sorted().map { "\(family)/\($0)" }
        return found.isEmpty ? ["\(family)/\(missingMarker)-no-case-folders"] : found
    }

    /// Part of the name of the case `cases(_:)` gives for a lost folder (no such fixture exists).
    public static let missingMarker = "MISSING"

    /// The case counts of each family as committed; a test asserts them.
    public static let expectedCaseCounts = ["lightgbm": 15, "xgboost": 8, "linear": 5]
}

/// A small CSV table with a header (fixture files have no quoted fields).
public struct FixtureTable: Sendable {
    public let header: [String]
    public let rows: [[String]]

    public init(contentsOf url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            line.hasSuffix("\r") ? line.dropLast() : line
        }
        guard !lines.isEmpty else { throw CocoaError(.fileReadCorruptFile) }
        header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        rows = lines.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }

    /// The column's values as numbers; an empty field is NaN.
    public func doubles(_ name: String) -> [Double]? {
        guard let c = column(name) else { return nil }
        return rows.map { Double($0[c]) ?? .nan }
    }

    /// All columns except `id`, row-major, empty → NaN.
    public func featureMatrix() -> (names: [String], values: [Double]) {
        let keep = header.indices.filter { header[$0] != "id" }
        var values: [Double] = []
        values.reserveCapacity(rows.count * keep.count)
        for r in rows { for c in keep { values.append(r[c].isEmpty ? .nan : Double(r[c]) ?? .nan) } }
        return (keep.map { header[$0] }, values)
    }
}

/// Largest absolute difference between two arrays (NaN if lengths differ or a value is NaN on
/// one side only).
public func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .nan }
    var worst = 0.0
    for (x, y) in zip(a, b) {
        if x.isNaN && y.isNaN { continue }
        let d = abs(x - y)
        if d.isNaN { return .nan }
        worst = max(worst, d)
    }
    return worst
}
