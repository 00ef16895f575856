import Foundation
import Testing
@testable import vigil
import VigilTesting

/// What a first-time user meets: a bare model whose features have no real names, an unknown
/// label column, a CSV without the id column, a manifest given as the model, progress.
struct FirstUseTests {
    /// A LightGBM model trained on a numpy matrix: its features are `Column_0 ... Column_4`.
    static let bare = "Tests/Fixtures/lightgbm/missing_nan/model.txt"
    static let input = Fixtures.url("lightgbm/missing_nan/input.csv")

    /// The fixture's input with its header replaced (same rows).
    func renamedInput(_ dir: TemporaryDirectory, header: String, extraColumn: Bool = false) throws -> URL {
        let lines = try String(contentsOf: Self.input, encoding: .utf8).split(separator: "\n").map(String.init)
        let body = lines.dropFirst().map { extraColumn ? $0 + ",zzz" : $0 }
        return try dir.write("renamed.csv", ([header] + body).joined(separator: "\n") + "\n")
    }

    /// Scores and returns stdout's lines; expects success.
    func score(_ args: [String]) throws -> [Substring] {
        let r = try CLI.run(["score", "--model", Self.bare] + args)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n")
    }

    @Test func aBareModelScoresACSVWithTheRealNamesThroughFeatureNames() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let reference = try score(["--input", Self.input.path])
        #expect(reference.count == 241)
        let renamed = try renamedInput(dir, header: "id,a,b,c,d,e")

        // Without help: the error says which flags fix it.
        let refused = try CLI.run(["score", "--model", Self.bare, "--input", renamed.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--feature-names") && refused.stderr.contains("--positional"), "\(refused.stderr)")
        #expect(refused.stderr.contains("'Column_0'"), "names the model's own names: \(refused.stderr)")

        // --feature-names: the same risks as the original header.
        let named = try score(["--input", renamed.path, "--feature-names", "a,b,c,d,e"])
        #expect(named.dropFirst() == reference.dropFirst())
        let file = try dir.write("names.txt", "a\nb\nc\nd\ne\n")
        #expect(try score(["--input", renamed.path, "--feature-names-file", file.path]).dropFirst() == reference.dropFirst())
        // --explain all names the contributions by the given names.
        let explained = try score(["--input", renamed.path, "--feature-names", "a,b,c,d,e", "--explain", "all"])
        #expect(explained.first?.contains("contrib_a,contrib_b") == true, "\(explained.first ?? "")")

        // Wrong count, both flags: refused with a usage error.
        let short = try CLI.run(["score", "--model", Self.bare, "--input", renamed.path, "--feature-names", "a,b"])
        #expect(short.status == 2 && short.stderr.contains("2 names for a model of 5 features"), "\(short.stderr)")
        let both = try CLI.run(["score", "--model", Self.bare, "--input", renamed.path, "--feature-names", "a,b,c,d,e", "--positional"])
        #expect(both.status == 2, "\(both.stderr)")
    }

    @Test func positionalTakesTheFirstColumnsBesidesTheID() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let reference = try score(["--input", Self.input.path])
        let renamed = try renamedInput(dir, header: "id,v1,v2,v3,v4,v5,notes", extraColumn: true)
        let r = try CLI.run(["score", "--model", Self.bare, "--input", renamed.path, "--positional"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").dropFirst() == reference.dropFirst())
        #expect(r.stderr.contains("--positional: features v1, v2, v3, v4, v5"), "\(r.stderr)")
        // Too few columns for the model: refused, listing the columns.
        let narrow = try dir.write("narrow.csv", "id,v1,v2\n1,0,0\n")
        let n = try CLI.run(["score", "--model", Self.bare, "--input", narrow.path, "--positional"])
        #expect(n.status == 1 && n.stderr.contains("needs 5 feature columns") && n.stderr.contains("'v2'"), "\(n.stderr)")
    }

    @Test func anUnknownLabelColumnListsTheColumns() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run(["audit", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--label", "outcome", "--group", "race", "--bootstrap", "0", "--json", dir.file("audit.json").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("column 'outcome' is not in the header (columns: 'encounter_id', 'age_years'"), "\(r.stderr)")
        #expect(r.stderr.contains("more)"), "a long header is cut: \(r.stderr)")
    }

    @Test func aCSVWithoutTheIDColumnIsNumberedWithAWarningOnce() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lines = try String(contentsOf: Self.input, encoding: .utf8).split(separator: "\n")
        let noID = lines.map { $0.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)[1] }
        let file = try dir.write("noid.csv", noID.joined(separator: "\n") + "\n")
        let r = try CLI.run(["score", "--model", Self.bare, "--input", file.path, "--batch-size", "50"])
        #expect(r.status == 0, "\(r.stderr)")
        let warning = "no 'id' column in the input: records are numbered by row"
        #expect(r.stderr.components(separatedBy: warning).count == 2, "warned once: \(r.stderr)")
        let out = r.stdout.split(separator: "\n")
        #expect(out.count == 241)
        #expect(out[1].hasPrefix("1,") && out[240].hasPrefix("240,"))
        // With the id column: no such warning.
        #expect(!(try CLI.run(["score", "--model", Self.bare, "--input", Self.input.path])).stderr.contains(warning))
    }

    @Test(arguments: ["manifest.json", "policy.json"])
    func aPackageFileGivenAsTheModelAsksForTheFolder(file: String) throws {
        let r = try CLI.run(["score", "--model", "models/readmission/\(file)", "--input", "models/readmission/test_cohort.csv"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("give the package folder") && r.stderr.contains("models/readmission"), "\(r.stderr)")
    }

    @Test func progressShowsRateAndTimeLeftWhenTheSizeIsKnown() {
        #expect(vigil.Progress.line(rows: 1000, bytes: 250, total: 1000, elapsed: 10) == "scoring: 1000 rows (25%), 100 rows/s, ETA 0:30")
        #expect(vigil.Progress.line(rows: 50, bytes: 1, total: 7200, elapsed: 1) == "scoring: 50 rows (0%), 50 rows/s, ETA 1:59:59")
        // Unknown size (a pipe): rows and rate only.
        #expect(vigil.Progress.line(rows: 500, bytes: 400, total: 0, elapsed: 2) == "scoring: 500 rows, 250 rows/s")
        // Nothing read yet: no ETA.
        #expect(vigil.Progress.line(rows: 0, bytes: 0, total: 100, elapsed: 1) == "scoring: 0 rows (0%), 0 rows/s")
        #expect(vigil.Progress.duration(3725) == "1:02:05")
    }
}
