import Foundation
import Testing
import VigilCore
import VigilEngine
import VigilFormats
import VigilTesting

/// Seeded mutations of every shipped model file, manifest and policy, each loaded in-process by
/// its loader: no mutant may crash the test process (the process surviving is the assertion),
/// and every refusal is a `VigilError` with a non-empty message shorter than 1000 bytes.
/// Mutations: byte flips, truncations at every k-th offset, number tokens replaced by 0, -1,
/// 1e300, 2^63-1, NaN and huge counts, deleted, duplicated and swapped lines (text formats),
/// and huge varints spliced into protobuf (ONNX). The counts are printed.
struct ModelMutationTests {
    enum Kind: String, CaseIterable {
        case lightgbm = "LightGBM text", xgboost = "XGBoost JSON", onnxLinear = "ONNX linear", onnxCNN = "ONNX CNN"
        case linearJSON = "linear JSON", manifest = "manifest.json", policy = "policy.json"
    }

    /// The files mutated, by kind, relative to the repository root.
    static let files: [(Kind, String)] = [
        (.lightgbm, "models/sepsis/model.txt"),
        (.xgboost, "models/readmission-xgb/model.json"),
        (.onnxLinear, "models/readmission/model.onnx"),
        (.onnxCNN, "models/retinopathy/model.onnx"),
        (.lightgbm, "Tests/Fixtures/lightgbm/stumps/model.txt"),
        (.lightgbm, "Tests/Fixtures/lightgbm/categorical_bitset/model.txt"),
        (.lightgbm, "Tests/Fixtures/lightgbm/multiclass/model.txt"),
        (.lightgbm, "Tests/Fixtures/lightgbm/rf/model.txt"),
        (.xgboost, "Tests/Fixtures/xgboost/v2_format/model.json"),
        (.lightgbm, "Tests/Fixtures/lightgbm/single_leaf/model.txt"),
        (.xgboost, "Tests/Fixtures/xgboost/default_left/model.json"),
        (.xgboost, "Tests/Fixtures/xgboost/categorical/model.json"),
        (.xgboost, "Tests/Fixtures/xgboost/v1_format/model.json"),
        (.xgboost, "Tests/Fixtures/xgboost/multiclass/model.json"),
        (.onnxLinear, "Tests/Fixtures/linear/sklearn_onnx_float/model.onnx"),
        (.onnxLinear, "Tests/Fixtures/linear/matmul_sigmoid_double/model.onnx"),
        (.onnxCNN, "Tests/Fixtures/cnn/mlp_softmax/model.onnx"),
        (.linearJSON, "Tests/Fixtures/linear/json/model.linear.json"),
        (.manifest, "models/sepsis/manifest.json"),
        (.manifest, "models/readmission/manifest.json"),
        (.manifest, "models/retinopathy/manifest.json"),
        (.manifest, "Tests/Fixtures/cnn/deep_resnet/manifest.json"),
        (.policy, "models/sepsis/policy.json"),
        (.policy, "models/readmission/policy.json"),
        (.policy, "models/readmission-xgb/policy.json"),
    ]

    /// Fewest mutants each kind must get, so that the test cannot pass on nothing.
    static let minimumMutants = 70

    /// Bytes loaded per file in all (mutants x size): LightGBM's text loader is the slowest
    /// per byte in a debug build, so it gets fewer.
    static func bytesPerFile(_ kind: Kind) -> Int {
        switch kind {
        case .lightgbm: return 500_000
        case .xgboost: return 1_200_000
        default: return 800_000
        }
    }

    /// Number tokens put in place of a file's numbers.
    static let hostileNumbers = ["0", "-1", "1e300", "-1e300", "9223372036854775807", "-9223372036854775808", "NaN",
                                 "4294967296", "1099511627776", "0.5", "1e-320", "18446744073709551616"]

    /// One test per format (they run in parallel); each file gets mutants in inverse
    /// proportion to its size (`bytesPerFile`), at least 4.
    @Test(arguments: Kind.allCases)
    func everyMutantLoadsOrIsRefusedWithANamedError(_ kind: Kind) throws {
        var rng = SplitMix64(seed: 0x5EED_1313 &+ UInt64(Kind.allCases.firstIndex(of: kind) ?? 0))
        var mutants = 0, refused = 0, loaded = 0
        var bad: [String] = []
        let files = Self.files.filter { $0.0 == kind }.map(\.1)
        #expect(!files.isEmpty)
        for path in files {
            let url = Fixtures.repositoryRoot.appendingPathComponent(path)
            let original = try Data(contentsOf: url)
            #expect(try load(kind, original, path) == true, "\(path): the unmutated file must load")
            let budget = min(150, max(4, Self.bytesPerFile(kind) / max(1, original.count)))
            for mutant in self.mutants(of: original, kind: kind, count: budget, rng: &rng) {
                mutants += 1
                do {
                    if try load(kind, mutant.data, path) { loaded += 1 } else { refused += 1 }
                } catch let e as VigilError {
                    refused += 1
                    let n = e.message.utf8.count
                    if n == 0 || n >= 1000 { bad.append("\(path) [\(mutant.how)]: message of \(n) bytes: \(e.message.prefix(200))") }
                } catch {
                    refused += 1
                    bad.append("\(path) [\(mutant.how)]: not a VigilError: \(type(of: error)) \(String(describing: error).prefix(200))")
                }
            }
        }
        print("mutation \(kind.rawValue): \(files.count) files, \(mutants) mutants, \(refused) refused, \(loaded) loaded, 0 crashed")
        #expect(mutants >= Self.minimumMutants, "\(kind.rawValue): only \(mutants) mutants")
        #expect(refused > 0, "\(kind.rawValue): no mutant was refused")
        #expect(bad.isEmpty, "\(bad.count) bad refusals:\n\(bad.prefix(20).joined(separator: "\n"))")
    }

    /// Loads `data` as `kind`: true when it loaded; a refusal throws.
    func load(_ kind: Kind, _ data: Data, _ path: String) throws -> Bool {
        let name = (path as NSString).lastPathComponent
        switch kind {
        case .lightgbm, .xgboost, .onnxLinear, .onnxCNN, .linearJSON:
            _ = try ModelFileLoader.load(data: data, fileName: name)
        case .manifest:
            _ = try Manifest(data: data, file: name)
        case .policy:
            _ = try GuardrailPolicy.load(data: data, file: name)
        }
        return true
    }

    struct Mutant {
        let data: Data
        let how: String
    }

    /// `count` seeded mutants of `data` (about a quarter each: byte flips, truncations, number
    /// tokens or varints, line edits).
    func mutants(of data: Data, kind: Kind, count: Int, rng: inout SplitMix64) -> [Mutant] {
        let bytes = [UInt8](data)
        var out: [Mutant] = []
        let isText = kind != .onnxLinear && kind != .onnxCNN
        func random(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }
        // Byte flips.
        for _ in 0..<(count / 4) {
            var b = bytes
            let at = random(b.count)
            b[at] ^= UInt8(1 + random(255))
            out.append(Mutant(data: Data(b), how: "flip byte \(at)"))
        }
        // Truncations at every k-th offset.
        let step = max(1, bytes.count / max(1, count / 4))
        for cut in stride(from: 0, to: bytes.count, by: step) {
            out.append(Mutant(data: Data(bytes[0..<cut]), how: "truncate at \(cut)"))
        }
        if isText {
            // Number tokens replaced.
            let tokens = numberTokens(bytes)
            for _ in 0..<(count / 4) where !tokens.isEmpty {
                let t = tokens[random(tokens.count)]
                let v = Self.hostileNumbers[random(Self.hostileNumbers.count)]
                var b = Array(bytes[0..<t.lowerBound])
                b += Array(v.utf8)
                b += bytes[t.upperBound...]
                out.append(Mutant(data: Data(b), how: "number at \(t.lowerBound) -> \(v)"))
            }
            // Lines deleted, duplicated, swapped.
            var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
            if lines.count > 2 {
                for i in 0..<(count / 4) {
                    var l = lines
                    let a = random(l.count), b = random(l.count)
                    let how: String
                    switch i % 3 {
                    case 0: l.remove(at: a); how = "delete line \(a + 1)"
                    case 1: l.insert(l[a], at: b); how = "duplicate line \(a + 1) at \(b + 1)"
                    default: l.swapAt(a, b); how = "swap lines \(a + 1) and \(b + 1)"
                    }
                    out.append(Mutant(data: Data(l.joined(separator: [UInt8(ascii: "\n")])), how: how))
                }
            }
            lines.removeAll()
        } else {
            // Protobuf: a huge varint (a length or an integer field) spliced in, or a byte set
            // to a length prefix's maximum.
            for i in 0..<(count / 2) {
                var b = bytes
                let at = random(b.count)
                if i % 2 == 0 {
                    b.replaceSubrange(at..<min(b.count, at + 1), with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
                } else {
                    b[at] = 0xFF
                }
                out.append(Mutant(data: Data(b), how: i % 2 == 0 ? "varint at \(at)" : "0xFF at \(at)"))
            }
        }
        return out
    }

    /// The byte ranges of number tokens (`-12`, `3.5e-7`) in a text.
    func numberTokens(_ b: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        while i < b.count {
            if digit(b[i]) || (b[i] == UInt8(ascii: "-") && i + 1 < b.count && digit(b[i + 1])) {
                let start = i
                i += 1
                while i < b.count, digit(b[i]) || b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")
                    || ((b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+")) && (b[i - 1] == UInt8(ascii: "e") || b[i - 1] == UInt8(ascii: "E"))) {
                    i += 1
                }
                out.append(start..<i)
            } else {
                i += 1
            }
        }
        return out
    }

    // MARK: - Regression cases from issue 13

    @Test func aHugeNumCatIsRefusedNotATrap() throws {
        var text = try String(contentsOf: Fixtures.url("lightgbm/categorical_bitset/model.txt"), encoding: .utf8)
        let range = try #require(text.range(of: #"num_cat=\d+"#, options: .regularExpression))
        text.replaceSubrange(range, with: "num_cat=9223372036854775807")
        let error = #expect(throws: VigilError.self) { _ = try LightGBMTextLoader().load(text: text) }
        #expect(error?.message.contains("num_cat") == true, "\(error?.message ?? "")")
    }

    @Test func hugeLightGBMCountsAreRefusedBeforeAllocating() throws {
        let text = try String(contentsOf: Fixtures.url("lightgbm/stumps/model.txt"), encoding: .utf8)
        for (pattern, value, says) in [
            (#"num_leaves=\d+"#, "num_leaves=1099511627776", "num_leaves"),
            (#"max_feature_idx=\d+"#, "max_feature_idx=9223372036854775807", "max_feature_idx"),
            (#"num_class=\d+"#, "num_class=1099511627776", "num_class"),
        ] {
            var t = text
            guard let r = t.range(of: pattern, options: .regularExpression) else { Issue.record("\(pattern) not in the fixture"); continue }
            t.replaceSubrange(r, with: value)
            let error = #expect(throws: VigilError.self) { _ = try LightGBMTextLoader().load(text: t) }
            #expect(error?.message.contains(says) == true, "\(error?.message ?? "")")
        }
    }

    @Test func xgboostIntegerColumnsOf1e300AreRefused() throws {
        let text = try String(contentsOf: Fixtures.url("xgboost/default_left/model.json"), encoding: .utf8)
        let r = try #require(text.range(of: #""right_children":\s*\[\s*-?\d+"#, options: .regularExpression))
        var t = text
        let head = t[r].prefix { $0 != "[" }
        t.replaceSubrange(r, with: head + "[1e300")
        let error = #expect(throws: VigilError.self) { _ = try XGBoostJSONLoader().load(data: Data(t.utf8)) }
        #expect(error?.message.contains("not an integer") == true, "\(error?.message ?? "")")
    }
}
