import Foundation
import Testing
import VigilTesting

/// `vigil score`, `inspect` and `bench` on a CNN package, as a user runs them.
struct ImageCommandTests {
    @Test func scoresAFolderOfImagesWithFileNamesAsIds() throws {
        let r = try CLI.run(["score", "--model", "models/retinopathy", "--input", "models/retinopathy/test_images"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first == "id,risk,group,threshold,threshold_source,decision,warnings")
        #expect(lines.count == 101)
        #expect(lines[1].hasPrefix("1.png,"))
        #expect(r.stderr.contains("scored 100 images with retinopathy"))
    }

    @Test func scoresACSVOfImagePathsKeepingItsIds() throws {
        let r = try CLI.run(["score", "--model", "models/retinopathy", "--input", "models/retinopathy/test_cohort.csv", "--output-format", "jsonl", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let first = try #require(r.stdout.split(separator: "\n").first)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        #expect(obj["id"] as? String == "1")
        #expect(abs((obj["risk"] as? Double ?? 0) - 0.5126124024391174) <= 1e-5)
    }

    @Test func inspectShowsTheGraph() throws {
        let r = try CLI.run(["inspect", "--model", "models/retinopathy"])
        #expect(r.status == 0, "\(r.stderr)")
        for s in ["Conv+BatchNormalization+Relu", "GlobalAveragePool", "[N, 16, 28, 28]", "parameters", "23649", "RGB 28x28"] {
            #expect(r.stdout.contains(s), "inspect shows \(s)")
        }
        let json = try CLI.run(["inspect", "--model", "models/retinopathy", "--json"])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((obj["graph"] as? [[String: Any]])?.count == 8)
    }

    @Test func aCorruptImageFailsNamingIt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let png = try Data(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy/test_images/1.png"))
        try png.prefix(png.count - 20).write(to: dir.file("cut.png"))
        let r = try CLI.run(["score", "--model", "models/retinopathy", "--input", dir.url.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: ") && r.stderr.contains("cut.png"), "\(r.stderr)")
    }

    @Test func benchMeasuresAnImageModel() throws {
        let r = try CLI.run([
            "bench", "--model", "models/retinopathy", "--input", "models/retinopathy/test_images", "--json",
            "--single-calls", "20", "--images", "64", "--image-batch", "16", "--threads", "2",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(obj["images"] as? Int == 100)
        #expect((obj["imagesPerSecond"] as? Double ?? 0) > 0)
        #expect(obj["decodePreprocess"] != nil)
    }
}
