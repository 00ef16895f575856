import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Parsing cohorts: missing tokens, quoting, ids, extra columns, JSON Lines, and the errors for
/// bad rows. Uses the heart-disease LightGBM fixture (13 features, bare file).
struct CohortReaderTests {
    static let model = try! VigilModel.load(path: Fixtures.url("lightgbm/heart_binary/model.txt").path)
    static let names = model.schema.names

    func read(_ text: String, name: String = "in.csv", maxRows: Int = 100) throws -> RowBatch? {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = try dir.write(name, text)
        return try CohortReader(url: url, model: Self.model).nextBatch(maxRows: maxRows)
    }

    func row(_ values: [String]) -> String { values.joined(separator: ",") }

    @Test func missingTokensAreNaNAndIdsPassThrough() throws {
        let header = "id,extra," + Self.names.joined(separator: ",")
        var cells = Array(repeating: "1", count: 13)
        cells[0] = ""; cells[1] = "NaN"; cells[2] = "NA"; cells[3] = "?"; cells[4] = "nan"; cells[5] = " 2.5 "
        cells[7] = "-1.5e2"; cells[8] = "+3"
        let text = "\(header)\n\"p,1\",ignored,\(row(cells))\r\n"
        let b = try #require(try read(text))
        #expect(b.count == 1)
        #expect(b.ids == ["p,1"])
        #expect(b.features[0..<5].allSatisfy { $0.isNaN })
        #expect(b.features[5] == 2.5 && b.features[6] == 1)
        #expect(b.features[7] == -150 && b.features[8] == 3)
    }

    /// `-inf` and `Infinity` were read as infinities (strtod) before issue 14; they are refused now,
    /// as in requests.
    @Test(arguments: ["-inf", "Infinity", "inf", "+INF", "1e999"])
    func infinitiesAreRefusedNamingLineAndField(token: String) throws {
        var cells = Array(repeating: "1", count: 13)
        cells[7] = token
        let error = #expect(throws: VigilError.self) { _ = try read(Self.names.joined(separator: ",") + "\n" + row(cells) + "\n") }
        #expect(error?.message.contains("line 2, field '\(Self.names[7])': value '\(token)' is not a number Vigil accepts") == true, "\(String(describing: error))")
    }

    @Test func columnsMayComeInAnyOrder() throws {
        let header = Self.names.reversed().joined(separator: ",")
        let values = (0..<13).map { String($0) }
        let b = try #require(try read("\(header)\n\(values.joined(separator: ","))\n"))
        #expect(b.features == (0..<13).map { Double(12 - $0) })
        #expect(b.ids == ["1"])  // no id column: the row number
    }

    @Test func anAbsentFeatureColumnIsNamed() throws {
        let header = Self.names.dropFirst().joined(separator: ",")
        let error = #expect(throws: VigilError.self) { _ = try read("\(header)\n") }
        #expect(error?.message.contains("model feature 'age' is not in the header") == true)
    }

    @Test func textInANumericColumnNamesLineFieldAndValue() throws {
        var cells = Array(repeating: "1", count: 13)
        cells[4] = "abc"
        let text = Self.names.joined(separator: ",") + "\n" + row(Array(repeating: "1", count: 13)) + "\n" + row(cells) + "\n"
        let error = #expect(throws: VigilError.self) { _ = try read(text) }
        #expect(error?.message.contains("line 3, field 'chol': value 'abc' is not a number") == true)
    }

    @Test func aRowWithTooFewFieldsIsRefused() throws {
        let text = Self.names.joined(separator: ",") + "\n1,2,3\n"
        let error = #expect(throws: VigilError.self) { _ = try read(text) }
        #expect(error?.message.contains("line 2: 3 fields where the header has 13") == true)
    }

    @Test func batchesStreamInOrderAcrossReads() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text = "id," + Self.names.joined(separator: ",") + "\n"
        let n = 30_000  // about 1.3 MB: more than one read of the file
        for i in 0..<n { text += "r\(i)," + row((0..<13).map { String(i % 7 + $0) }) + "\n" }
        let reader = try CohortReader(url: try dir.write("big.csv", text), model: Self.model)
        var ids: [String] = []
        while let b = try reader.nextBatch(maxRows: 4096) {
            ids += b.ids
            #expect(b.features[0] == Double(Int(b.ids[0].dropFirst())! % 7))
        }
        #expect(ids == (0..<n).map { "r\($0)" })
    }

    @Test func jsonLinesReadsNumbersNullsAndIds() throws {
        var obj = Dictionary(uniqueKeysWithValues: Self.names.map { ($0, "1") })
        obj["age"] = "null"; obj["sex"] = "\"0.5\""; obj["chol"] = "0.10834496142409487"
        let line = "{\"id\": \"x1\", " + obj.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        let b = try #require(try read(line + "\n", name: "in.jsonl"))
        #expect(b.ids == ["x1"])
        #expect(b.features[0].isNaN && b.features[1] == 0.5)
        #expect(b.features[4] == 0.10834496142409487)  // exact, not via NSDecimalNumber
    }

    @Test func jsonLinesNamesAnAbsentFeature() throws {
        let error = #expect(throws: VigilError.self) { _ = try read("{\"id\": 1}\n", name: "in.jsonl") }
        #expect(error?.message.contains("field 'age'") == true)
    }
}
