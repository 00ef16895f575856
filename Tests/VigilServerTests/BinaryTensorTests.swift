import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// The OIP binary tensor data extension (what the stock tritonclient sends by default; the
/// client itself is run by scripts/check_oip_client.py): binary inputs after the JSON header,
/// binary outputs when asked, NaN as missing, and every size checked before it is used.
struct BinaryTensorTests {
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func fp64(_ xs: [Double]) -> [UInt8] { xs.flatMap { le($0.bitPattern) } }
    static func bytes(_ xs: [String]) -> [UInt8] { xs.flatMap { le(UInt32($0.utf8.count)) + Array($0.utf8) } }

    /// A request: its JSON header, then the binary parts in order.
    static func body(_ json: String, _ parts: [[UInt8]]) -> (Data, [String: String]) {
        let header = Data(json.utf8)
        return (header + Data(parts.joined()), ["Inference-Header-Content-Length": String(header.count), "Content-Type": "application/octet-stream"])
    }

    static let features = fp64([60, 2, 80, 0])  // [2, 2]: age, lactate
    static let sex = bytes(["F", "M"])

    @Test func binaryInputsAndOutputsRoundTrip() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        let json = """
            {"inputs": [{"name": "features", "shape": [2, 2], "datatype": "FP64", "parameters": {"binary_data_size": \(Self.features.count)}},
                        {"name": "sex", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": \(Self.sex.count)}}],
             "outputs": [{"name": "risk", "parameters": {"binary_data": true}}, {"name": "decision"}, {"name": "prediction_id", "parameters": {"binary_data": true}}]}
            """
        let (body, headers) = Self.body(json, [Self.features, Self.sex])
        let r = try await offPool { try c.request("POST", "/v2/models/toy/infer", body: body, headers: headers) }
        #expect(r.status == 200, "\(r.text)")
        let n = try #require(r.headers["inference-header-content-length"].flatMap { Int($0) }, "\(r.headers)")
        let head = try #require(try JSONSerialization.jsonObject(with: r.body.prefix(n)) as? [String: Any])
        let outs = try #require(head["outputs"] as? [[String: Any]])
        #expect(outs.map { $0["name"] as? String } == ["risk", "decision", "prediction_id"])
        let riskSize = try #require((outs[0]["parameters"] as? [String: Any])?["binary_data_size"] as? Int)
        #expect(riskSize == 16 && outs[0]["data"] == nil)
        #expect(outs[1]["data"] as? [Bool] == [true, false], "decision stays JSON: \(outs[1])")
        let tail = [UInt8](r.body.dropFirst(n))
        let risks = (0..<2).map { i in Double(bitPattern: tail[(i * 8)..<(i * 8 + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) }) }
        #expect(risks[0] == 0.5 && abs(risks[1] - 1 / (1 + exp(-(0.05 * 80 - 5)))) < 1e-12, "\(risks)")
        let idSize = try #require((outs[2]["parameters"] as? [String: Any])?["binary_data_size"] as? Int)
        #expect(tail.count == riskSize + idSize)
        // The whole response as binary, asked once for the request.
        let all = json.replacingOccurrences(of: #""outputs": [{"name": "risk", "parameters": {"binary_data": true}}, {"name": "decision"}, {"name": "prediction_id", "parameters": {"binary_data": true}}]"#,
                                            with: #""parameters": {"binary_data_output": true}"#)
        #expect(all != json)
        let (b2, h2) = Self.body(all, [Self.features, Self.sex])
        let r2 = try await offPool { try c.request("POST", "/v2/models/toy/infer", body: b2, headers: h2) }
        let n2 = try #require(r2.headers["inference-header-content-length"].flatMap { Int($0) })
        let outs2 = try #require((try JSONSerialization.jsonObject(with: r2.body.prefix(n2)) as? [String: Any])?["outputs"] as? [[String: Any]])
        let sizes = outs2.compactMap { ($0["parameters"] as? [String: Any])?["binary_data_size"] as? Int }
        #expect(sizes.count == outs2.count && sizes.reduce(0, +) == r2.body.count - n2, "\(outs2)")
        // Server metadata announces the extension.
        let meta = try await c.send("GET", "/v2").object
        #expect((meta["extensions"] as? [String])?.contains("binary_tensor_data") == true)
        try await s.stop()
    }

    @Test(arguments: [
        ("header longer than the body", "999999", 0, "Inference-Header-Content-Length"),
        ("a binary_data_size past the end", nil, 8, "only"),
        ("bytes after the last tensor", nil, -3, "after the last tensor"),
        ("a size that is not a whole number of elements", nil, -100, "whole number"),
        ("an infinity", nil, -200, "not a number"),
        ("a cut BYTES length", nil, -300, "cut off"),
        ("a NaN: missing, which this linear model refuses by name", nil, -400, "is missing"),
    ] as [(String, String?, Int, String)])
    func everySizeIsCheckedAndBadDataRefusedByName(_ what: String, _ header: String?, _ edit: Int, _ says: String) async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        var features = Self.features, sex = Self.sex
        var featureSize = features.count, sexSize = sex.count
        var trailing: [UInt8] = []
        switch edit {
        case 8: featureSize += 8
        case -3: trailing = [1, 2, 3]
        case -100: featureSize -= 3; features.removeLast(3)
        case -200: features = Self.fp64([60, .infinity, 80, 1])
        case -300: sex = Array(sex.prefix(2)); sexSize = 2
        case -400: features = Self.fp64([60, 2, 80, .nan])
        default: break
        }
        let json = """
            {"inputs": [{"name": "features", "shape": [2, 2], "datatype": "FP64", "parameters": {"binary_data_size": \(featureSize)}},
                        {"name": "sex", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": \(sexSize)}}]}
            """
        var (built, h) = Self.body(json, [features, sex, trailing])
        if let header { h["Inference-Header-Content-Length"] = header }
        let (body, headers) = (built, h)
        let r = try await offPool { try s.unixClient().request("POST", "/v2/models/toy/infer", body: body, headers: headers) }
        #expect(r.status == 400 && r.error.contains(says), "\(what): \(r.status) \(r.text)")
        try await s.stop()
    }
}
