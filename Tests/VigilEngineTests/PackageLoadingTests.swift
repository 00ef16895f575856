import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Model packages: the SHA-256 check, strict manifests, feature-order checks, bare files.
struct PackageLoadingTests {
    static let readmission = Fixtures.repositoryRoot.appendingPathComponent("models/readmission")

    func copyOfReadmission() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try dir.copyContents(of: Self.readmission)
        return dir
    }

    func editManifest(_ dir: TemporaryDirectory, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.file("manifest.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
    }

    @Test func aModelFileThatDoesNotMatchItsSHA256IsRefused() throws {
        let dir = try copyOfReadmission()
        defer { dir.remove() }
        var bytes = try Data(contentsOf: dir.file("model.onnx"))
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: dir.file("model.onnx"))
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.message.contains("SHA-256") == true)
    }

    @Test func anUnknownManifestKeyIsRefused() throws {
        let dir = try copyOfReadmission()
        defer { dir.remove() }
        try editManifest(dir) { $0["thresholds"] = 0.3 }
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.message.contains("unknown key 'thresholds'") == true)
    }

    @Test func featuresOutOfTheModelsOrderAreRefused() throws {
        let dir = try copyOfReadmission()
        defer { dir.remove() }
        try editManifest(dir) { obj in
            var features = obj["features"] as! [[String: Any]]
            let last = features.removeLast()["name"] as! String
            obj["features"] = features
            var reference = obj["reference"] as! [String: Any]
            var histograms = reference["features"] as! [String: Any]
            histograms[last] = nil
            reference["features"] = histograms
            reference["ood"] = nil  // it names every feature; this test is about the model file
            obj["reference"] = reference
        }
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.message.contains("features but the model file has") == true)
    }

    @Test func aBadRangeIsRefusedWithItsPath() throws {
        let dir = try copyOfReadmission()
        defer { dir.remove() }
        try editManifest(dir) { obj in
            var features = obj["features"] as! [[String: Any]]
            features[1]["range"] = [10, 1]
            obj["features"] = features
        }
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.message.contains("features[1].range") == true)
    }

    @Test func aMissingPolicyFallsBackToOneHalfWithAWarning() throws {
        let dir = try copyOfReadmission()
        defer { dir.remove() }
        try FileManager.default.removeItem(at: dir.file("policy.json"))
        let model = try VigilModel.load(path: dir.url.path)
        #expect(model.policy.fallbackThreshold == 0.5)
        #expect(model.loadWarnings.contains { $0.contains("0.5") })
    }

    @Test func aBareModelFileLoadsWithAWarning() throws {
        let model = try VigilModel.load(path: Fixtures.url("lightgbm/heart_binary/model.txt").path)
        #expect(model.manifest == nil)
        #expect(model.loadWarnings.contains { $0.contains("no manifest") })
        #expect(model.schema.names.first == "age")
        let unnamed = try VigilModel.load(path: Fixtures.url("xgboost/default_left/model.json").path)
        #expect(unnamed.schema.names == (0..<6).map { "f\($0)" })
    }

    @Test func aMissingPathIsAnIOError() {
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: "/nonexistent/model") }
        #expect(error?.kind == .io)
    }
}
