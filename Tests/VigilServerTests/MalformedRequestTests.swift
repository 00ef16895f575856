import Foundation
import Testing
import VigilServer
import VigilTesting

/// Bad requests get 4xx with {"error": "..."} naming the field and the rule, and the server
/// keeps serving.
struct MalformedRequestTests {
    @Test func badRequestsAreNamedAndTheServerKeepsServing() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.maxBodyBytes = 4096
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let score = "/v1/models/toy/score", infer = "/v2/models/toy/infer"
        let cases: [(String, String, String?, Int, String)] = [
            ("POST", "/v1/models/nope/score", toyRecord(), 404, "model 'nope': not served here"),
            ("GET", "/v2/models/nope", nil, 404, "model 'nope'"),
            ("GET", "/v2/nothing/here", nil, 404, "no such endpoint"),
            ("POST", score, "{\"age\": 60,", 400, "body: not valid JSON"),
            ("POST", score, "42", 400, "body: must be a JSON object"),
            ("POST", score, "[]", 400, "empty array"),
            ("POST", score, #"{"age": 60, "sex": "F"}"#, 400, "field 'lactate': is not given"),
            ("POST", score, toyRecord(lactate: "high"), 400, "field 'lactate': value 'high' is not a number"),
            ("POST", score, toyRecord(lactate: [1, 2]), 400, "field 'lactate': value is a JSON array"),
            ("POST", score, #"{"age": 60, "lactate": 2, "bmi": 31}"#, 400, "field 'bmi': is not a feature"),
            ("POST", score, #"[{"age": 60, "lactate": 2}, 7]"#, 400, "record 1: must be a JSON object"),
            // A linear model cannot score a missing value: the engine's rule, named.
            ("POST", score, toyRecord(lactate: NSNull()), 400, "field 'lactate': value '' is missing"),
            ("POST", score, "[" + Array(repeating: toyRecord(), count: 100).joined(separator: ",") + "]", 413, "larger than the limit of 4096 bytes"),
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}"#, 400, "shape: [1, 3] but model 'toy' takes [N, 2]"),
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}"#, 400, "shape [2, 2] holds 4 values but data has 3"),
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]}"#, 400, "datatype: INT64 but features are FP32 or FP64"),
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, "a"]}]}"#, 400, "(feature 'lactate'): value is a JSON string"),
            ("POST", infer, #"{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [60]}]}"#, 400, "missing feature tensor(s) 'lactate'"),
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [60, 2]}, {"name": "sex", "shape": [1], "datatype": "FP32", "data": [1]}]}"#, 400, "'sex'.datatype: FP32 but a group field is BYTES"),
            ("POST", infer, #"{"inputs": []}"#, 400, "inputs: empty"),
            // Python's json writes a missing float as NaN: read as missing, which this linear model refuses.
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [60, NaN]}]}"#, 400, "field 'lactate': value '' is missing"),
            ("POST", infer, #"{"input": []}"#, 400, "body.input: unknown key"),
            ("POST", infer, #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [60, 2]}], "outputs": [{"name": "shap"}]}"#, 400, "outputs: 'shap' is not an output"),
        ]
        for (method, path, body, status, message) in cases {
            let r = try await c.send(method, path, body: body.map { Data($0.utf8) })
            #expect(r.status == status, "\(method) \(path) \(body ?? ""): \(r.status) \(r.text)")
            #expect(r.error.contains(message), "\(method) \(path): expected '\(message)' in \(r.text)")
            #expect(r.headers["content-type"] == "application/json")
            // Still serving, on a fresh connection too (a 413 may close the connection).
            c.disconnect()
            #expect(try await c.send("POST", score, json: toyRecord()).status == 200)
        }
        // Errors are counted, without patient data.
        let metrics = try await c.send("GET", "/metrics").text
        #expect(metrics.contains(#"vigil_request_errors_total{route="v1/models/{name}/score",status="400"}"#), "\(metrics)")
        try await s.stop()
    }
}

/// Hostile request bodies (issue 13): sizes that overflow, tensors given twice, nesting that does
/// not follow the shape, numbers beyond a double, duplicate JSON keys. Each is a named 4xx and
/// the server keeps serving.
struct HostileRequestTests {
    static func tensor(_ name: String, _ shape: String, _ dt: String = "FP64", _ data: String) -> String {
        #"{"name": "\#(name)", "shape": \#(shape), "datatype": "\#(dt)", "data": \#(data)}"#
    }
    static func infer(_ tensors: String...) -> String { #"{"inputs": [\#(tensors.joined(separator: ", "))]}"# }

    @Test func hostileRequestsAreNamed4xxAndTheServerKeepsServing() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        let score = "/v1/models/toy/score", infer = "/v2/models/toy/infer"
        let t = Self.tensor
        let longName = String(repeating: "n", count: 5000)
        let cases: [(String, String, Int, String)] = [
            // Shapes: the product overflows Int, or is beyond rows x features; entries not sizes.
            (infer, Self.infer(t("x", "[999999999, 999999999, 999999999]", "FP64", "[1]")), 413, "inputs[0] 'x'.shape: [999999999, 999999999, 999999999] holds more than the limit of 20000 elements"),
            (infer, Self.infer(t("x", "[4611686018427387904, 4]", "FP64", "[1]")), 413, "holds more than the limit of 20000 elements (10000 rows per request x 2 features)"),
            (infer, Self.infer(t("x", "[10001, 2]", "FP64", "[1]")), 413, "'x'.shape: [10001, 2] holds more than the limit"),
            (infer, Self.infer(t("x", "[1e300, 2]", "FP64", "[1]")), 400, "'x'.shape[0]: 1e+300 is not a size"),
            (infer, Self.infer(t("x", "[-1, 2]", "FP64", "[1]")), 400, "'x'.shape[0]: -1.0 is not a size"),
            (infer, Self.infer(t("x", "[1.5, 2]", "FP64", "[1]")), 400, "'x'.shape[0]: 1.5 is not a size"),
            (infer, Self.infer(t("x", #"["1", 2]"#, "FP64", "[1]")), 400, "'x'.shape[0]: a JSON string is not a size"),
            (infer, Self.infer(t("x", "[1,1,1,1,1,1,1,1,1]", "FP64", "[1]")), 400, "'x'.shape: 9 dimensions"),
            // data nested other than the shape.
            (infer, Self.infer(t("x", "[2, 2]", "FP64", "[[60, 2], [61]]")), 400, "'x'.data[1]: 1 items where the shape [2, 2] has 2 at level 2"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[[60, [2]]]")), 400, "'x'.data[0][1]: nested deeper than the shape [1, 2]"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[[[60, 2]]]")), 400, "'x'.data[0]: 1 items where the shape [1, 2] has 2 at level 2"),
            (infer, Self.infer(t("x", "[2, 2]", "FP64", "[[60, 2], 61, 3]")), 400, "'x'.data: 3 items where the shape [2, 2] has 2 at level 1"),
            (infer, Self.infer(t("x", "[2, 1, 2]", "FP64", "[[60], [61]]")), 400, "'x'.data[0][0]: a value where the shape [2, 1, 2] needs an array at level 3"),
            (infer, Self.infer(t("x", "[2, 1, 2]", "FP64", "[[60, 2], [61, 3]]")), 400, "'x'.data[0]: 2 items where the shape [2, 1, 2] has 1 at level 2"),
            // A name given twice (a feature twice and another omitted; a group; the whole tensor).
            (infer, Self.infer(t("age", "[1]", "FP64", "[60]"), t("age", "[1]", "FP64", "[61]")), 400, "inputs[1] 'age': the input name is given twice (inputs[0] and inputs[1])"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[60, 2]"), t("x", "[1, 2]", "FP64", "[60, 2]")), 400, "inputs[1] 'x': the input name is given twice"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[60, 2]"), t("sex", "[1]", "BYTES", #"["F"]"#), t("sex", "[1]", "BYTES", #"["M"]"#)), 400, "inputs[2] 'sex': the input name is given twice"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[60, 2]"), t("encounter_id", "[1]", "BYTES", #"["a"]"#), t("id", "[1]", "BYTES", #"["b"]"#)), 400, "a second id tensor"),
            (infer, Self.infer(t("age", "[2]", "FP64", "[60, 61]"), t("lactate", "[1]", "FP64", "[2]")), 400, "'lactate'.shape: [1] but a feature tensor is [N] or [N, 1] with the same N (2)"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[60, 2]"), t("encounter_id", "[2]", "BYTES", #"["a", "b"]"#)), 400, "the id tensor is [N] or [N, 1] with N = 1"),
            (infer, Self.infer(t("x", "[1, 2]", "FP32", "[60, 1e300]")), 400, "value 1e+300 is beyond the FP32 range"),
            // Values echoed in errors are cut.
            (infer, Self.infer(t(longName, "[1, 2]", "FP64", "[60, 2]"), t(longName, "[1, 2]", "FP64", "[60, 2]")), 400, "the input name is given twice"),
            // Numbers: the token 1e999 is not JSON we accept; the string "1e999" is not a value.
            (score, #"{"encounter_id": "e1", "age": 60, "lactate": 1e999, "sex": "F"}"#, 400, "number 1e999 is not representable as a finite double"),
            (score, toyRecord(lactate: "1e999"), 400, "field 'lactate': value '1e999' is not a number Vigil accepts: it overflows a double"),
            (score, toyRecord(lactate: "inf"), 400, "field 'lactate': value 'inf' is not a number Vigil accepts: infinity is refused"),
            (score, toyRecord(lactate: "0x1p3"), 400, "field 'lactate': value '0x1p3' is not a number Vigil accepts: hexadecimal is refused"),
            (score, toyRecord(lactate: "2 mmol"), 400, "field 'lactate': value '2 mmol' is not a number"),
            (infer, Self.infer(t("x", "[1, 2]", "FP64", "[60, -1e999]")), 400, "number -1e999 is not representable"),
            // Duplicate JSON keys, named with their path.
            (score, #"{"encounter_id": "e1", "age": 60, "lactate": 2, "lactate": 3}"#, 400, "duplicate key 'lactate' in an object; each key may appear once at byte 48 ($.lactate)"),
            (infer, #"{"inputs": [{"name": "x", "name": "age", "shape": [1, 2], "datatype": "FP64", "data": [60, 2]}]}"#, 400, "duplicate key 'name' in an object; each key may appear once at byte 26 ($.inputs[0].name)"),
        ]
        for (path, body, status, message) in cases {
            let r = try await c.send("POST", path, body: Data(body.utf8))
            #expect(r.status == status, "\(body.prefix(200)): \(r.status) \(r.text.prefix(400))")
            #expect(r.error.contains(message), "expected '\(message)' in \(r.text.prefix(400))")
            #expect(r.error.utf8.count < 400, "error of \(r.error.utf8.count) bytes: \(r.error.prefix(200))")
            c.disconnect()
            #expect(try await c.send("POST", score, json: toyRecord()).status == 200)
        }
        #expect(cases.count == 30)
        // A well-formed nested request and a flat one still score alike.
        let flat = try await c.send("POST", infer, body: Data(Self.infer(t("x", "[2, 2]", "FP64", "[60, 2, 70, 1]")).utf8))
        let nested = try await c.send("POST", infer, body: Data(Self.infer(t("x", "[2, 2]", "FP64", "[[60, 2], [70, 1]]")).utf8))
        #expect(flat.status == 200 && nested.status == 200, "\(flat.text) \(nested.text)")
        let noIDs = { (s: String) in s.replacingOccurrences(of: #""toy-\d+""#, with: "ID", options: .regularExpression) }
        #expect(noIDs(flat.text) == noIDs(nested.text))
        #expect(flat.text.contains("0.3775406687981454"))
        try await s.stop()
    }
}
