import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting
import VigilJSON

/// The retinopathy CNN served over the Unix socket: base64 images on the native route, an FP32
/// [N, C, H, W] tensor (JSON and binary) and BYTES PNG files (binary and base64 JSON) on OIP, all
/// equal to the engine `vigil score` runs on the same files, with ledger entries hashing the
/// image bytes; malformed images and tensors refused by name.
struct ImageServingTests {
    static let package = Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy").path
    static let folder = Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy/test_images")

    /// Eight committed test images: names, bytes, and the engine's risks on them as one batch.
    static func reference() throws -> (names: [String], files: [Data], tensors: [Float], risks: [Double]) {
        let model = try VigilModel.load(path: package)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") }.sorted().prefix(8)
        try #require(names.count == 8)
        let dir = try TemporaryDirectory("vigil-img")
        defer { dir.remove() }
        for n in names { try FileManager.default.copyItem(at: folder.appendingPathComponent(n), to: dir.file(n)) }
        let reader = try ImageCohortReader(url: dir.url, model: model)
        let batch = try #require(try reader.nextBatch(maxImages: 8))
        let records = try model.score(batch, threads: 1)
        let byID = Dictionary(uniqueKeysWithValues: zip(batch.ids, records.map { $0.outputs[0] }))
        let tensorsByID = Dictionary(uniqueKeysWithValues: batch.ids.enumerated().map { i, id in (id, Array(batch.tensors[(i * 2352)..<((i + 1) * 2352)])) })
        let ordered = Array(names)
        return (ordered, try ordered.map { try Data(contentsOf: folder.appendingPathComponent($0)) },
                ordered.flatMap { tensorsByID[$0]! }, ordered.map { byID[$0]! })
    }

    static func json(_ data: Data) throws -> Any { try JSONSerialization.jsonObject(with: data) }

    /// Numbers read exactly (Foundation's JSONSerialization on Linux can be an ulp off on long
    /// decimals): the records' `risk`s, or the first OIP output's data.
    static func risks(_ data: Data) throws -> [Double] {
        func num(_ v: JSONValue?) -> Double? { if case .number(let d)? = v { return d }; return nil }
        switch try JSONValue.parse(data) {
        case .array(let records): return records.compactMap { if case .object(let o) = $0 { return num(o["risk"]) }; return nil }
        case .object(let o):
            if let r = num(o["risk"]) { return [r] }
            guard case .array(let outs)? = o["outputs"], case .object(let first)? = outs.first, case .array(let d)? = first["data"] else { return [] }
            return d.compactMap(num)
        default: return []
        }
    }

    @Test func aCNNServedOverTheSocketEqualsVigilScore() async throws {
        let ref = try Self.reference()
        let dir = try TemporaryDirectory("vigil-img")
        defer { dir.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [Self.package], dir: dir, ledger: true))
        let c = s.unixClient()
        func post(_ path: String, _ body: Data, _ headers: [String: String] = ["Content-Type": "application/json"]) async throws -> LoopbackHTTPClient.Response {
            try await offPool { try c.request("POST", path, body: body, headers: headers) }
        }
        // Native: base64 files, ids passed through.
        let records = zip(ref.names, ref.files).map { #"{"id": "\#($0)", "image": "\#($1.base64EncodedString())", "site": "A"}"# }
        let native = try await post("/v1/models/retinopathy/score", Data("[\(records.joined(separator: ","))]".utf8))
        #expect(native.status == 200, "\(native.text)")
        let out = try #require(try Self.json(native.body) as? [[String: Any]])
        #expect(out.map { $0["id"] as? String } == ref.names)
        #expect(try Self.risks(native.body) == ref.risks, "native vs vigil score")

        // OIP: the preprocessed FP32 tensor as JSON, and as binary data.
        let flat = ref.tensors.map { "\($0)" }.joined(separator: ",")
        let oip = #"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [8, 3, 28, 28], "data": [\#(flat)]}]}"#
        let r1 = try await post("/v2/models/retinopathy/infer", Data(oip.utf8))
        #expect(r1.status == 200, "\(r1.text)")
        #expect(try Self.risks(r1.body) == ref.risks, "OIP FP32 JSON vs vigil score")
        let tensorBytes = ref.tensors.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
        let head = Data(#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [8, 3, 28, 28], "parameters": {"binary_data_size": \#(tensorBytes.count)}}]}"#.utf8)
        let r2 = try await post("/v2/models/retinopathy/infer", head + Data(tensorBytes), ["Inference-Header-Content-Length": String(head.count), "Content-Type": "application/octet-stream"])
        #expect(r2.status == 200, "\(r2.text)")
        #expect(try Self.risks(r2.body) == ref.risks, "OIP FP32 binary vs vigil score")

        // OIP: BYTES PNG files, binary (length-prefixed) and JSON (base64), with a group tensor.
        let filesBytes = ref.files.flatMap { f in withUnsafeBytes(of: UInt32(f.count).littleEndian) { Array($0) } + Array(f) }
        let site = ref.names.map { _ in "B" }.flatMap { s in withUnsafeBytes(of: UInt32(1).littleEndian) { Array($0) } + Array(s.utf8) }
        let head3 = Data(#"{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [8], "parameters": {"binary_data_size": \#(filesBytes.count)}}, {"name": "site", "datatype": "BYTES", "shape": [8], "parameters": {"binary_data_size": \#(site.count)}}]}"#.utf8)
        let r3 = try await post("/v2/models/retinopathy/infer", head3 + Data(filesBytes) + Data(site), ["Inference-Header-Content-Length": String(head3.count), "Content-Type": "application/octet-stream"])
        #expect(r3.status == 200, "\(r3.text)")
        let body3 = try #require(try Self.json(r3.body) as? [String: Any])
        #expect(try Self.risks(r3.body) == ref.risks, "OIP BYTES files vs vigil score")
        #expect(((body3["parameters"] as? [String: Any])?["group"] as? [String])?.first == "site=B")
        let b64 = ref.files.map { "\"\($0.base64EncodedString())\"" }.joined(separator: ",")
        let r4 = try await post("/v2/models/retinopathy/infer", Data(#"{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [8], "data": [\#(b64)]}]}"#.utf8))
        #expect(try Self.risks(r4.body) == ref.risks, "OIP BYTES base64 vs vigil score")

        // Metadata names the image input; the ledger hashes each image's file bytes.
        let meta = try await offPool { try c.request("GET", "/v2/models/retinopathy") }
        #expect(meta.text.contains(#""shape":[-1,3,28,28]"#), "\(meta.text)")
        let ledger = try String(contentsOfFile: dir.file("ledger.jsonl").path, encoding: .utf8)
        let first = try #require(ledger.split(separator: "\n").first { $0.contains(#""kind":"prediction""#) })
        let want = AuditLedger.sha256Hex("\(SHA256Digest.hex(of: ref.files[0]))|A|\(ref.names[0])".utf8)
        #expect(first.contains(#""input_sha256":"\#(want)""#), "\(first.prefix(400))")

        // One image at a time (another batch composition): equal within float rounding.
        let single = try await post("/v1/models/retinopathy/score", Data(records[3].utf8))
        let one = try Self.risks(single.body)
        #expect(one.count == 1 && abs(one[0] - ref.risks[3]) < 1e-6)
    }

    @Test func malformedImagesAndTensorsAreRefusedByName() async throws {
        let ref = try Self.reference()
        let dir = try TemporaryDirectory("vigil-img")
        defer { dir.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [Self.package], dir: dir))
        let c = s.unixClient()
        let truncated = ref.files[0].prefix(60).base64EncodedString()
        let cases: [(String, String, String)] = [
            ("/v1/models/retinopathy/score", #"{"image": "%%%"}"#, "not base64"),
            ("/v1/models/retinopathy/score", #"{"image": "\#(truncated)"}"#, "record, field 'image':"),
            ("/v1/models/retinopathy/score", #"{"image": "\#(ref.files[0].base64EncodedString())", "age": 3}"#, "field 'age': unknown"),
            ("/v1/models/retinopathy/score", #"{"id": "x"}"#, "field 'image': required"),
            ("/v2/models/retinopathy/infer", #"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 28, 27], "data": [0]}]}"#, "must be [N, 3, 28, 28]"),
            ("/v2/models/retinopathy/infer", #"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 28, 28], "data": [0, 1]}]}"#, "2 values where shape"),
            ("/v2/models/retinopathy/infer", #"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 28, 28], "data": [null]}]}"#, "finite numbers"),
            ("/v2/models/retinopathy/infer", #"{"inputs": [{"name": "input", "datatype": "INT8", "shape": [1], "data": [0]}]}"#, "is not taken here"),
            ("/v2/models/retinopathy/infer", #"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [100000, 3, 28, 28], "data": []}]}"#, "more than the limit of 256"),
            ("/v2/models/retinopathy/infer", #"{"inputs": [{"name": "camera", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}"#, "no image"),
        ]
        for (path, body, rule) in cases {
            let r = try await offPool { try c.request("POST", path, body: Data(body.utf8), headers: ["Content-Type": "application/json"]) }
            #expect((400..<500).contains(r.status) && r.text.contains(rule), "\(rule): \(r.status) \(r.text.prefix(300))")
        }
    }

    /// `?explain=K` on images: integrated gradients off the scoring thread, in the records when
    /// they finish within --image-explain-timeout-ms, else left out with a warning.
    @Test func imageExplanationsRunWithinATimeLimit() async throws {
        let ref = try Self.reference()
        let records = zip(ref.names.prefix(2), ref.files.prefix(2)).map { #"{"id": "\#($0)", "image": "\#($1.base64EncodedString())"}"# }
        let body = Data("[\(records.joined(separator: ","))]".utf8)
        for timeout in [60_000, 1] {
            let dir = try TemporaryDirectory("vigil-img")
            defer { dir.remove() }
            var o = RunningServer.options(models: [Self.package], dir: dir)
            o.imageExplainTimeoutMillis = timeout
            let s = try await RunningServer(options: o)
            let c = s.unixClient()
            let r = try await offPool { try c.request("POST", "/v1/models/retinopathy/score?explain=3", body: body, headers: [:]) }
            #expect(r.status == 200, "\(r.text.prefix(300))")
            let out = try #require(try Self.json(r.body) as? [[String: Any]])
            #expect(try Self.risks(r.body) == Array(ref.risks.prefix(2)) || timeout == 1)
            if timeout > 1 {
                let a = try #require(out.first?["attribution"] as? [String: Any])
                #expect(a["method"] as? String == "integrated-gradients" && (a["top"] as? [Any])?.count == 3, "\(a.keys)")
            } else {
                #expect(out.allSatisfy { ($0["warnings"] as? [String])?.contains { $0.contains("took longer than 1 ms") } == true }, "\(r.text.prefix(400))")
            }
        }
    }
}
