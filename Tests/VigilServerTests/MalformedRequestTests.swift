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
