import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// The server's record for a row is `vigil score`'s JSON Lines line for the same row, byte for
/// byte, with `prediction_id` and `audit_seq` appended (docs/SERVER.md), under a randomized
/// policy (whose `threshold_randomized` the server's own JSON used to drop), with and without
/// attributions.
struct RecordParityTests {
    static let randomizedPolicy = """
        {"schema": "vigil.policy/1", "version": "r7", "constraint": {"kind": "tpr_parity"}, "objective": {"kind": "balanced_accuracy"},
         "rule": "randomized test policy", "group_fields": ["sex"], "min_group_size": 50, "randomized": {"seed": 5},
         "groups": {"Female": {"threshold": 0.5, "n": 400, "mixture": {"threshold": 0.3, "probability": 0.5}},
                    "Male": {"threshold": 0.4, "n": 500}},
         "fallback": {"threshold": 0.45}, "fitted_on": {"rows": 900}}
        """

    /// Rows: Female rows with several ids (both mixture thresholds get drawn), a Male row, a
    /// fallback row with a range warning, an id that needs escaping.
    static let rows: [String] = (0..<8).map { toyRecord(id: "f\($0)", age: 50 + $0 * 3, sex: "F") }
        + [toyRecord(id: "m1", age: 70, sex: "M"), toyRecord(id: "x1", age: 120, sex: "X"),
           toyRecord(id: "q\"1", lactate: 1.5, sex: "F")]

    @Test(arguments: [nil, "all", "1"])
    func theServerRecordIsTheCLIRecordPlusTwoFields(explain: String?) async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        try pkg.dir.write("policy.json", Self.randomizedPolicy)
        try pkg.dir.write("in.jsonl", Self.rows.joined(separator: "\n") + "\n")
        var args = ["score", "--model", pkg.path, "--input", pkg.dir.file("in.jsonl").path, "--output", pkg.dir.file("out.jsonl").path, "--quiet"]
        if let explain { args += ["--explain", explain] }
        let cli = try CLI.run(args)
        #expect(cli.status == 0, "\(cli.stderr)")
        let lines = try String(contentsOf: pkg.dir.file("out.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == Self.rows.count)
        #expect(lines.allSatisfy { $0.contains("\"threshold_randomized\":") })
        #expect(lines.contains { $0.contains("\"threshold\":0.3,") } && lines.contains { $0.contains("\"threshold\":0.5,") })

        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        let path = "/v1/models/toy/score" + (explain.map { "?explain=\($0)" } ?? "")
        for (row, line) in zip(Self.rows, lines) {
            let r = try await c.send("POST", path, json: row)
            #expect(r.status == 200, "\(r.text)")
            let id = try #require(r.object["prediction_id"] as? String)
            let expected = line.dropLast() + ",\"prediction_id\":\(JSON.string(id)),\"audit_seq\":null}"
            #expect(r.text == expected, "server:\n\(r.text)\ncli:\n\(line)")
        }
        try await s.stop()
    }

    /// Requests with and without `?explain=` queued together: one batch job scores both kinds
    /// (the explained ones with attributions, in the engine's call), and each answer is the
    /// record its own request asked for.
    @Test func explainedAndPlainRequestsShareABatchJob() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let answers = try await s.heldRequests(model: "toy", count: 6) { i in
            ("/v1/models/toy/score\(i % 2 == 0 ? "?explain=all" : "")", toyRecord(id: "r\(i)", lactate: Double(i)))
        }.mapValues(\.text)
        #expect(answers.count == 6)
        for (i, text) in answers {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
            #expect(o["id"] as? String == "r\(i)")
            if i % 2 == 0 {
                let a = try #require(o["attribution"] as? [String: Any], "\(text)")
                let contributions = try #require(a["contributions"] as? [[String: Any]])
                let total = contributions.compactMap { $0["contribution"] as? Double }.reduce(0, +) + (a["base"] as? Double ?? .nan)
                let risk = try #require(o["risk"] as? Double)
                #expect(abs(total - log(risk / (1 - risk))) < 1e-9)
            } else {
                #expect(o["attribution"] == nil, "\(text)")
            }
        }
        try await s.stop()
    }
}
