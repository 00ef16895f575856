import Foundation
import Testing
import VigilTesting

/// `vigil score --events`: the sepsis package's raw hourly rows through its declared pipeline give
/// the records `vigil score --input` gives on the training script's feature rows, byte for byte.
struct PipelineCommandTests {
    @Test func eventsScoreAsTheTrainingFeaturesDo() throws {
        let dir = try TemporaryDirectory("vigil-events")
        defer { dir.remove() }
        let events = dir.file("events.jsonl").path, features = dir.file("features.jsonl").path
        let a = try CLI.run(["score", "--model", "models/sepsis", "--events", "--input", Fixtures.url("pipeline/sepsis_events.csv").path, "--output", events, "--explain", "3"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stderr.contains("1493 rows") || a.stderr.contains("1,493 rows"), "\(a.stderr)")
        let b = try CLI.run(["score", "--model", "models/sepsis", "--input", Fixtures.url("pipeline/sepsis_features.csv").path, "--output", features, "--explain", "3"])
        #expect(b.status == 0, "\(b.stderr)")
        let x = try String(contentsOfFile: events, encoding: .utf8), y = try String(contentsOfFile: features, encoding: .utf8)
        #expect(x.split(separator: "\n").count == 1493)
        #expect(x == y)
    }

    @Test func eventsNeedAPipelineAndCannotBeSharded() throws {
        let r = try CLI.run(["score", "--model", "models/readmission", "--events", "--input", "models/readmission/test_cohort.csv"])
        #expect(r.status != 0 && r.stderr.contains("declares no feature pipeline"), "\(r.stderr)")
        let s = try CLI.run(["score", "--model", "models/sepsis", "--events", "--input", Fixtures.url("pipeline/sepsis_events.csv").path, "--shard", "0/2"])
        #expect(s.status != 0 && s.stderr.contains("--events cannot be sharded"), "\(s.stderr)")
    }
}
