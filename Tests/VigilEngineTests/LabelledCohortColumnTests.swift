import Foundation
import Testing
@testable import VigilEngine
import VigilTesting

/// `LabelledCohort` without a model (`--scores-column`) reads through the same record scanner as
/// `CohortReader`: the same CSV refusals and the same field and record limits (its own splitter,
/// before issue 14, ignored both and read the whole file into memory), and JSON Lines values
/// turned into text the way `CohortReader` turns them.
struct LabelledCohortColumnTests {
    func load(_ text: String, name: String = "in.csv", groups: [String] = ["sex"], limits: CohortReader.Limits = .init()) throws -> LabelledCohort {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = try dir.write(name, text)
        return try LabelledCohort.load(url: url, model: nil, labelColumn: "y", scoresColumn: "p", groupFields: groups, limits: limits)
    }

    func refusal(_ text: String, name: String = "in.csv", limits: CohortReader.Limits = .init()) -> String? {
        do {
            _ = try load(text, name: name, limits: limits)
            return nil
        } catch let e as VigilError {
            return e.message
        } catch {
            return "\(error)"
        }
    }

    @Test func csvColumnsAreRead() throws {
        let c = try load("y,p,sex\n1,0.9,F\n0,0.2,\n\"1\",\"0.5\",\"M, unknown\"\n")
        #expect(c.count == 3)
        #expect(c.labels == [true, false, true])
        #expect(c.risks == [0.9, 0.2, 0.5])
        #expect(c.groupLabels == [["F", "Unknown", "M, unknown"]])
        #expect(c.ids == ["1", "2", "3"])
    }

    @Test(arguments: [
        ("y,p,sex\n1,0.9,\"F\"x\n", "in.csv: line 2, field 3 'sex': text after the closing quote"),
        ("y,p,sex\n1,0.9,F\"\n", "in.csv: line 2, field 3 'sex': a quote inside an unquoted field"),
        ("y,p,sex,sex\n1,0.9,F,F\n", "column 'sex' appears twice"),
        ("y,p,sex\n1,0.9\n", "in.csv: line 2: 2 fields where the header has 3"),
        ("y,p\n1,0.9\n", "line 1: column 'sex' is not in the header (columns: 'y', 'p')"),
        ("y,p,sex\n1,1.5,F\n", "in.csv: line 2, field 'p': value '1.5' is not a risk in [0, 1]"),
        ("y,p,sex\n2,0.5,F\n", "in.csv: line 2, field 'y': value '2' is not a binary label"),
        ("", "the file is empty"),
    ])
    func csvFaultsAreRefusedLikeCohortReader(text: String, message: String) {
        let m = refusal(text)
        #expect(m?.contains(message) == true, "\(String(describing: m))")
    }

    /// A stray quote at line 3 of a 100,000-row file: refused at line 3 once the record limit is
    /// passed, as `CohortReader` refuses it; the old splitter read the whole file and failed at
    /// its end (or read every later line as one field).
    @Test func aStrayQuoteHitsTheRecordLimitAtItsLine() throws {
        var text = "y,p,sex\n1,0.5,F\n\"0,0.5,F\n"
        text.reserveCapacity(100_000 * 10)
        for _ in 3..<100_000 { text += "1,0.5,M\n" }
        let m = refusal(text, limits: .init(maxFieldBytes: 1024, maxRecordBytes: 64 << 10))
        #expect(m?.contains("in.csv: line 3: the record starting here is longer than the limit of 65536 bytes (a quote opened in it is not closed)") == true, "\(String(describing: m))")
        let f = refusal("y,p,sex\n1,0.5,\(String(repeating: "F", count: 2000))\n", limits: .init(maxFieldBytes: 1024, maxRecordBytes: 64 << 10))
        #expect(f?.contains("line 2, field 3 'sex': the field is longer than the limit of 1024 bytes") == true, "\(String(describing: f))")
    }

    @Test func jsonLinesValuesBecomeTextLikeCohortReader() throws {
        let text = """
        {"y": 1, "p": 0.25, "sex": "F"}
        {"y": true, "p": 1, "sex": 1.0}
        {"y": false, "p": 0, "sex": true}

        {"y": "0", "p": "0.75", "sex": null}
        """
        let c = try load(text, name: "in.jsonl")
        #expect(c.count == 4)
        #expect(c.labels == [true, true, false, false])
        #expect(c.risks == [0.25, 1, 0, 0.75])
        // Numbers in canonical form and booleans as true/false, as CohortReader gives group fields.
        #expect(c.groupLabels == [["F", "1", "true", "Unknown"]])
        #expect(refusal("{\"y\": 1, \"p\": 0.5, \"p\": 0.6}\n", name: "in.jsonl")?.contains("in.jsonl: line 1: not valid JSON (duplicate key 'p'") == true)
        #expect(refusal("[1, 0.5]\n", name: "in.jsonl")?.contains("in.jsonl: line 1: not a JSON object") == true)
    }
}
