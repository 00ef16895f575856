import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// Every endpoint, over the Unix socket and over loopback TCP.
struct EndpointTests {
    @Test func healthAndMetadataOnBothListeners() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        for client in [s.unixClient(), s.tcpClient()] {
            #expect(try await client.send("GET", "/v2/health/live").status == 200)
            let ready = try await client.send("GET", "/v2/health/ready")
            #expect(ready.status == 200)
            #expect(ready.object["ready"] as? Bool == true)
            let root = try await client.send("GET", "/v2")
            #expect(root.object["name"] as? String == "vigil")
            #expect(root.object["models"] as? [String] == ["toy"])
            let meta = try await client.send("GET", "/v2/models/toy")
            #expect(meta.status == 200)
            let inputs = try #require(meta.object["inputs"] as? [[String: Any]])
            #expect(inputs.map { $0["name"] as? String } == ["age", "lactate", "sex"])
            #expect(inputs.last?["datatype"] as? String == "BYTES")
            #expect(try await client.send("GET", "/v2/models/toy/ready").object["ready"] as? Bool == true)
        }
        try await s.stop()
    }

    @Test func nativeScoreReturnsFullRecords() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        let one = try await c.send("POST", "/v1/models/toy/score", json: toyRecord())
        #expect(one.status == 200, "\(one.text)")
        let r = one.object
        #expect(r["id"] as? String == "e1")
        #expect(r["risk"] as? Double == 0.5)
        #expect(r["group"] as? [String: String] == ["sex": "Female", "age_band": "<65"])
        #expect(r["threshold"] as? Double == 0.5)
        #expect(r["threshold_source"] as? String == "group:Female")
        #expect(r["decision"] as? Bool == true)
        #expect((r["policy"] as? [String: Any])?["version"] as? String == "7")
        #expect((r["prediction_id"] as? String)?.hasPrefix("toy-") == true)
        #expect(r["warnings"] as? [String] == [])

        // An array of records; "Other" was fitted on 10 rows (< 50): fallback with a warning;
        // age 120 is outside [18, 100].
        let many = try await c.send("POST", "/v1/models/toy/score", json: "[\(toyRecord(id: "a", sex: "M")),\(toyRecord(id: "b", age: 120, sex: "X"))]")
        #expect(many.status == 200, "\(many.text)")
        let recs = many.array
        #expect(recs.count == 2)
        #expect(recs[0]["threshold"] as? Double == 0.4)
        #expect(recs[1]["threshold_source"] as? String == "fallback")
        #expect(recs[1]["threshold"] as? Double == 0.45)
        let warnings = recs[1]["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("age=120 is outside the valid range") })
        #expect(warnings.contains { $0.contains("fallback threshold 0.45") })

        // ?explain=all: the record carries linear SHAP contributions summing to logit(risk).
        let explained = try await c.send("POST", "/v1/models/toy/score?explain=all", json: toyRecord(id: "x", lactate: 3))
        #expect(explained.status == 200, "\(explained.text)")
        let er = explained.object
        let attribution = try #require(er["attribution"] as? [String: Any])
        #expect(attribution["method"] as? String == "linear-shap")
        let contributions = try #require(attribution["contributions"] as? [[String: Any]])
        let total = contributions.compactMap { $0["contribution"] as? Double }.reduce(0, +) + (attribution["base"] as? Double ?? .nan)
        let risk = try #require(er["risk"] as? Double)
        #expect(abs(total - log(risk / (1 - risk))) < 1e-9)
        let bad = try await c.send("POST", "/v1/models/toy/score?explain=nope", json: toyRecord())
        #expect(bad.status == 400)
        #expect(bad.error.contains("explain"))
        try await s.stop()
    }

    /// The server's record has the keys `vigil score` writes in JSON Lines, plus prediction_id
    /// and audit_seq.
    @Test func recordShapeMatchesTheCLI() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        try pkg.dir.write("in.jsonl", toyRecord() + "\n")
        let cli = try CLI.run(["score", "--model", pkg.path, "--input", pkg.dir.file("in.jsonl").path, "--output", pkg.dir.file("out.jsonl").path, "--quiet"])
        #expect(cli.status == 0, "\(cli.stderr)")
        let cliText = try String(contentsOf: pkg.dir.file("out.jsonl"), encoding: .utf8)
        let cliRecord = try #require(try JSONSerialization.jsonObject(with: Data(cliText.split(separator: "\n")[0].utf8)) as? [String: Any])
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let server = try await s.unixClient().send("POST", "/v1/models/toy/score", json: toyRecord()).object
        #expect(Set(server.keys) == Set(cliRecord.keys).union(["prediction_id", "audit_seq"]))
        #expect(server["risk"] as? Double == cliRecord["risk"] as? Double)
        try await s.stop()
    }

    @Test func openInferenceProtocolInfer() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.tcpClient()
        // One tensor [N, F] in manifest order, FP64, nested data; BYTES group field.
        let matrix = """
            {"id": "req-1", "inputs": [
              {"name": "features", "shape": [2, 2], "datatype": "FP64", "data": [[60, 2], [80, 0]]},
              {"name": "sex", "shape": [2], "datatype": "BYTES", "data": ["F", "M"]}]}
            """
        let r = try await c.send("POST", "/v2/models/toy/infer", json: matrix)
        #expect(r.status == 200, "\(r.text)")
        #expect(r.object["model_name"] as? String == "toy")
        #expect(r.object["id"] as? String == "req-1")
        let outs = try #require(r.object["outputs"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: outs.map { ($0["name"] as! String, $0) })
        let risk = try #require(byName["risk"]?["data"] as? [Double])
        #expect(risk[0] == 0.5)
        #expect(abs(risk[1] - 1 / (1 + exp(-(0.05 * 80 - 5)))) < 1e-12)
        #expect(byName["decision"]?["data"] as? [Bool] == [true, false])  // 0.269 < Male 0.4
        #expect(byName["threshold"]?["data"] as? [Double] == [0.5, 0.4])
        #expect((byName["prediction_id"]?["data"] as? [String])?.count == 2)

        // One tensor per feature, FP32, with an outputs filter.
        let perFeature = """
            {"inputs": [
              {"name": "age", "shape": [1], "datatype": "FP32", "data": [60]},
              {"name": "lactate", "shape": [1, 1], "datatype": "FP32", "data": [2]}],
             "outputs": [{"name": "risk"}]}
            """
        let p = try await c.send("POST", "/v2/models/toy/infer", json: perFeature)
        #expect(p.status == 200, "\(p.text)")
        let pOuts = try #require(p.object["outputs"] as? [[String: Any]])
        #expect(pOuts.map { $0["name"] as? String } == ["risk"])

        // Attribution on request: [N, F + 1] (contributions then base), summing to the margin.
        let a = try await c.send("POST", "/v2/models/toy/infer", json: """
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [60, 2]}], "parameters": {"attribution": true}}
            """)
        #expect(a.status == 200, "\(a.text)")
        let aOuts = try #require(a.object["outputs"] as? [[String: Any]])
        let attribution = try #require(aOuts.first { $0["name"] as? String == "attribution" })
        #expect(attribution["shape"] as? [Int] == [1, 3])
        let values = try #require(attribution["data"] as? [Double])
        let aRisk = try #require(aOuts.first { $0["name"] as? String == "risk" }?["data"] as? [Double])
        #expect(abs(values.reduce(0, +) - log(aRisk[0] / (1 - aRisk[0]))) < 1e-9)
        try await s.stop()
    }

    @Test func metricsExposition() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        _ = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "patient-secret-123"))
        let m = try await c.send("GET", "/metrics")
        #expect(m.status == 200)
        #expect(m.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(m.text.contains(#"vigil_predictions_total{model="toy",sex="Female",age_band="<65",decision="positive"} 1"#), "\(m.text)")
        #expect(m.text.contains("vigil_request_duration_seconds_bucket"))
        #expect(m.text.contains("vigil_risk_bucket"))
        #expect(!m.text.contains("patient-secret-123"))
        try await s.stop()
    }

    @Test func outcomesAndMonitor() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        let a = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "a", lactate: 3)).object  // 0.73 >= 0.5: positive
        let b = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "b", lactate: 0)).object  // 0.12: negative
        let idA = try #require(a["prediction_id"] as? String), idB = try #require(b["prediction_id"] as? String)
        let rec = try await c.send("POST", "/v1/models/toy/outcomes", json: #"[{"prediction_id": "\#(idA)", "label": 1}, {"prediction_id": "\#(idB)", "label": true}]"#)
        #expect(rec.status == 200, "\(rec.text)")
        #expect((rec.object["recorded"] as? [Any])?.count == 2)
        let again = try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(idA)", "label": 0}"#)
        #expect(again.status == 409)
        let unknown = try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "toy-999999", "label": 0}"#)
        #expect(unknown.status == 404)
        #expect(unknown.error.contains("'toy-999999' is not a prediction"))
        let badLabel = try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(idB)", "label": 2}"#)
        #expect(badLabel.status == 400)
        #expect(badLabel.error.contains("field 'label'"))

        let mon = try await c.send("GET", "/v1/models/toy/monitor")
        #expect(mon.status == 200, "\(mon.text)")
        let overall = try #require(mon.object["overall"] as? [String: Any])
        #expect(overall["predictions"] as? Int == 2)
        #expect(overall["positive_decisions"] as? Int == 1)
        #expect(overall["tp"] as? Int == 1)
        #expect(overall["fn"] as? Int == 1)
        let rates = try #require(overall["rates"] as? [String: Any])
        let sel = try #require(rates["selection_rate"] as? [String: Double])
        #expect(sel["value"] == 0.5)
        #expect(sel["low"]! < 0.5 && sel["high"]! > 0.5)
        let female = ((mon.object["by_group"] as? [String: Any])?["sex"] as? [String: Any])?["Female"] as? [String: Any]
        #expect(female?["predictions"] as? Int == 2)
        let drift = try #require(mon.object["drift"] as? [String: Any])
        #expect((drift["features"] as? [String: Any])?["age"] != nil)
        #expect((drift["score"] as? [String: Any])?["psi"] != nil)
        #expect((mon.object["alerts"] as? [Any])?.isEmpty == true)
        try await s.stop()
    }

    /// Alerts fire on groups of at least alert_min_group_size rows and never on smaller ones.
    @Test func alertsIgnoreSmallGroups() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.alertMinGroupSize = 20
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        // 5 "Other" rows all positive and 60 Male rows all negative: Other is too small (the
        // policy's min_group_size, 50, is above the server's 20 here).
        let other = (0..<5).map { toyRecord(id: "o\($0)", lactate: 5, sex: "X") }
        let male = (0..<60).map { toyRecord(id: "m\($0)", lactate: 0, sex: "M") }
        #expect(try await c.send("POST", "/v1/models/toy/score", json: "[\((other + male).joined(separator: ","))]").status == 200)
        var alerts = try await c.send("GET", "/v1/models/toy/monitor").object["alerts"] as? [[String: Any]] ?? []
        #expect(alerts.isEmpty, "\(alerts)")
        // 60 Female rows all positive: Female vs Male selection rates differ beyond their CIs.
        let female = (0..<60).map { toyRecord(id: "f\($0)", lactate: 5, sex: "F") }
        #expect(try await c.send("POST", "/v1/models/toy/score", json: "[\(female.joined(separator: ","))]").status == 200)
        let mon = try await c.send("GET", "/v1/models/toy/monitor").object
        alerts = mon["alerts"] as? [[String: Any]] ?? []
        let gap = alerts.first { $0["kind"] as? String == "gap" && $0["metric"] as? String == "selection_rate" }
        #expect(gap?["groups"] as? [String] == ["Male", "Female"], "\(alerts)")
        #expect(!alerts.contains { ($0["groups"] as? [String])?.contains("Other") == true })
        try await s.stop()
    }

    /// Requests arriving while the scoring thread is busy are scored in one call.
    @Test func concurrentRequestsAreMicroBatched() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let results = try await s.heldRequests(model: "toy", count: 8) { i in ("/v1/models/toy/score", toyRecord(id: "c\(i)")) }
            .sorted { $0.key < $1.key }.map(\.value.status)
        #expect(results == [Int](repeating: 200, count: 8))
        let metrics = try await s.unixClient().send("GET", "/metrics").text
        // 8 rows in fewer than 8 scoring calls.
        let count = metrics.split(separator: "\n").first { $0.hasPrefix("vigil_batch_rows_count") }.flatMap { Double($0.split(separator: " ").last!) }
        #expect(count != nil && count! < 8, "\(metrics)")
        try await s.stop()
    }

    @Test func fullQueueAnswers503WithRetryAfter() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.batching.queueLimitRows = 1
        let s = try await RunningServer(options: o)
        let served = try #require(s.server.models["toy"])
        served.hold(true)
        let path = s.socketPath
        let first = Task { try await offPool { try LoopbackHTTPClient(.unix(path)).request("POST", "/v1/models/toy/score", json: toyRecord()).status } }
        // Wait until the first row is queued (a fixed sleep raced on a loaded machine).
        for _ in 0..<200 where served.queuedRows == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(served.queuedRows == 1)
        let second = try await s.unixClient().send("POST", "/v1/models/toy/score", json: toyRecord())
        #expect(second.status == 503)
        #expect(second.headers["retry-after"] == "1")
        #expect(second.error.contains("queued"))
        served.hold(false)
        #expect(try await first.value == 200)
        try await s.stop()
    }

    @Test func secondServerCannotTakeTheSocket() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        #expect(throws: VigilError.self) { _ = try VigilServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir)) }
        #expect(try await s.unixClient().send("GET", "/v2/health/live").status == 200)
        try await s.stop()
    }

    @Test func servesTheShippedModels() async throws {
        let root = Fixtures.repositoryRoot.appendingPathComponent("models")
        try #require(FileManager.default.fileExists(atPath: root.appendingPathComponent("sepsis/manifest.json").path), "the shipped models are in models/")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let s = try await RunningServer(options: RunningServer.options(
            models: [root.appendingPathComponent("sepsis").path, root.appendingPathComponent("readmission").path], dir: dir))
        let c = s.unixClient()
        // The first rows of each test cohort as JSON records, compared with the training
        // library's own score.
        for name in ["sepsis", "readmission"] {
            let table = try FixtureTable(contentsOf: root.appendingPathComponent("\(name)/test_cohort.csv"))
            let model = try VigilModel.load(path: root.appendingPathComponent(name).path)
            for row in table.rows.prefix(5) {
                var obj: [String: Any] = [:]
                for (i, h) in table.header.enumerated() where h != "label" && h != "reference_risk" && h != "patient_id" {
                    if model.schema.index(of: h) != nil { obj[h] = row[i].isEmpty ? NSNull() : (Double(row[i]) ?? NSNull()) } else { obj[h] = row[i] }
                }
                let body = String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self)
                let r = try await c.send("POST", "/v1/models/\(name)/score", json: body)
                #expect(r.status == 200, "\(r.text)")
                let expected = Double(row[table.column("reference_risk")!])!
                #expect(abs((r.object["risk"] as? Double ?? -1) - expected) < 1e-6)
            }
        }
        try await s.stop()
    }
}
