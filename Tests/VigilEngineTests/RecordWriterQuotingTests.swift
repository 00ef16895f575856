import Foundation
import Testing
@testable import VigilEngine
import VigilTesting

/// CSV output quoting decided on UTF-8 bytes (issue 13): ids holding `\r\n`, a comma followed by
/// a combining mark (one Swift Character that is not a comma), quotes or edge spaces must come
/// back as one field of one row, through Vigil's reader and through Python's csv module.
struct RecordWriterQuotingTests {
    static let model = CohortReaderTests.model
    static let hostile = [
        "a\r\nb", "a,\u{301}b", ",\u{301}", "\r\n", "\n", "\r", "x\"y", "\"", "\"\"", " lead", "trail ", "\tt", "é,中",
        "a\u{301}\"", "plain", "semi;colon", "", "\u{FEFF}bom", "\"a,\r\nb\"", "e\u{301},\r\n\u{20DD}",
    ]

    @Test func fieldsAreQuotedOnBytes() {
        #expect(RecordWriter.csvField("a,\u{301}b") == "\"a,\u{301}b\"")
        #expect(RecordWriter.csvField("a\r\nb") == "\"a\r\nb\"")
        #expect(RecordWriter.csvField("x\"y") == "\"x\"\"y\"")
        #expect(RecordWriter.csvField(" lead") == "\" lead\"")
        #expect(RecordWriter.csvField("plain") == "plain")
        #expect(RecordWriter.csvField("é中") == "é中")
    }

    @Test func hostileIdsRoundTripThroughTheReader() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text = "id," + Self.model.schema.names.joined(separator: ",") + "\n"
        let ones = Array(repeating: "1", count: 13).joined(separator: ",")
        for id in Self.hostile { text += RecordWriter.csvField(id) + "," + ones + "\n" }
        let b = try #require(try CohortReader(url: try dir.write("ids.csv", text), model: Self.model).nextBatch())
        #expect(b.count == Self.hostile.count)
        // An empty id reads as the row number, as documented.
        let expected = Self.hostile.enumerated().map { $1.isEmpty ? String($0 + 1) : $1 }
        #expect(b.ids == expected)
        #expect(Self.hostile.count == 20)
    }

    /// `vigil score`'s path: JSON Lines in (ids hold anything), CSV records out, read back by
    /// Python's csv module: one row per input, the same column count on every row, ids equal.
    @Test func scoredCSVOutputReadsBackInPython() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var lines = ""
        for id in Self.hostile {
            var o: [String: Any] = Dictionary(uniqueKeysWithValues: Self.model.schema.names.map { ($0, 1) })
            o["id"] = id
            lines += String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self) + "\n"
        }
        let reader = try CohortReader(url: try dir.write("in.jsonl", lines), model: Self.model)
        let out = dir.url.appendingPathComponent("out.csv")
        do {
            let writer = try RecordWriter(model: Self.model, output: out, format: .csv)
            while let batch = try reader.nextBatch() { try writer.write(try Self.model.score(batch)) }
        }
        let script = """
            import csv, json, sys
            with open(sys.argv[1], newline='', encoding='utf-8') as f:
                rows = list(csv.reader(f))
            print(json.dumps({"widths": sorted(set(len(r) for r in rows)), "ids": [r[0] for r in rows[1:]]}))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, out.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((result["widths"] as? [Int])?.count == 1, "rows of different widths: \(result["widths"] ?? "")")
        let expected = Self.hostile.enumerated().map { $1.isEmpty ? String($0 + 1) : $1 }
        #expect(result["ids"] as? [String] == expected)
    }
}
