import Foundation
import Testing
import VigilKernels
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
        let graph = try #require(obj["graph"] as? [[String: Any]])
        #expect(graph.count == 8)
        // Each convolution names its kernel: the hand AVX2 kernels where the CPU has AVX2/FMA
        // (3 input channels: direct loops; 16 and 32: Winograd), im2col + sgemm elsewhere.
        let kernels = graph.filter { ($0["operator"] as? String)?.hasPrefix("Conv") == true }.map { $0["kernel"] as? String ?? "" }
        if CPU.supportsAVX2Kernels {
            #expect(kernels == ["direct loops, AVX2", "Winograd F(4x4, 3x3), AVX2", "Winograd F(4x4, 3x3), AVX2"])
        } else {
            #expect(kernels == ["im2col + sgemm", "im2col + sgemm", "im2col + sgemm"])
        }
        #expect(graph.filter { ($0["operator"] as? String)?.hasPrefix("Conv") != true }.allSatisfy { ($0["kernel"] as? String) == "" })
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
            "--single-calls", "20", "--images", "64", "--image-batch", "16", "--threads", "2", "--explain",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(obj["images"] as? Int == 100)
        #expect((obj["imagesPerSecond"] as? Double ?? 0) > 0)
        #expect(obj["decodePreprocess"] != nil)
        let ig = try #require(obj["integratedGradients"] as? [String: Any])
        #expect(ig["images"] as? Int == 32)
        #expect((ig["meanSteps"] as? Double ?? 0) >= 64)
        #expect((ig["worstRelativeCompletenessError"] as? Double ?? 1) <= 0.01)
    }

    @Test func explainWritesIntegratedGradientsAndHeatMaps() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for name in ["1.png", "12.png", "4.png"] {
            try FileManager.default.copyItem(
                at: Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy/test_images/\(name)"), to: dir.file(name))
        }
        let maps = dir.file("maps")
        let r = try CLI.run([
            "score", "--model", "models/retinopathy", "--input", dir.url.path, "--explain", "2", "--heatmaps", maps.path,
            "--output-format", "jsonl",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        for line in lines {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let a = try #require(obj["attribution"] as? [String: Any])
            #expect(a["method"] as? String == "integrated-gradients" && a["baseline"] as? String == "black image")
            #expect((a["relative_completeness_error"] as? Double ?? 1) <= 0.01)
            let top = try #require(a["top"] as? [[String: Any]])
            #expect(top.count == 2)
            // Named channel_row_column.
            #expect(top.allSatisfy { ($0["feature"] as? String)?.split(separator: "_").count == 3 })
        }
        for name in ["1.png", "12.png", "4.png"] {
            #expect(FileManager.default.fileExists(atPath: maps.appendingPathComponent(name + ".png").path), "heat-map for \(name)")
        }
        #expect(r.stderr.contains("integrated gradients: worst completeness error"))

        // CSV: the steps and completeness error columns follow the contributions.
        let csv = try CLI.run(["score", "--model", "models/retinopathy", "--input", dir.url.path, "--explain", "1", "--ig-steps", "8", "--quiet"])
        #expect(csv.status == 0, "\(csv.stderr)")
        #expect(csv.stdout.hasPrefix("id,risk,group,threshold,threshold_source,decision,warnings,top_contributions,attribution_steps,completeness_error\n"))

        let bad = try CLI.run(["score", "--model", "models/retinopathy", "--input", dir.url.path, "--explain", "1", "--ig-steps", "1"])
        #expect(bad.status == 2 && bad.stderr.contains("--ig-steps"))
        let tabular = try CLI.run(["score", "--model", "models/sepsis", "--input", "models/sepsis/test_cohort.csv", "--heatmaps", maps.path])
        #expect(tabular.status == 2 && tabular.stderr.contains("--heatmaps is for image models"))
    }
}
