import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// One reading of a feature value for every input path (issue 14): a token in a CSV field, in a
/// JSON Lines string, and in a request body's string must give the same number or be refused by
/// all three. Each path runs through its real entry point (CohortReader on a file,
/// RequestParser.parseJSON + nativeRows on a body), so the test fails if one of them diverges.
struct RowNumberParityTests {
    static let model = try! VigilModel.load(path: Fixtures.url("lightgbm/heart_binary/model.txt").path)

    static let accepted: [(String, Double?)] = [
        ("1", 1), ("-2.5", -2.5), ("+3", 3), (".5", 0.5), ("5.", 5), ("1e3", 1000), ("1E-3", 0.001), ("-0", -0.0),
        (" 2.5 ", 2.5), ("\t7\t", 7), ("0.10834496142409487", 0.10834496142409487), ("1e-999", 0), ("1.7976931348623157e308", 1.7976931348623157e308),
        ("", nil), ("NaN", nil), ("nan", nil), ("NAN", nil), ("NA", nil), ("?", nil), (" NA ", nil), ("007", 7),
    ]
    static let refused: [String] = [
        "inf", "-inf", "+inf", "Infinity", "-Infinity", "INF", "1e999", "-1e999", "1e309", "0x1p3", "0x10", "-0x1", "1.2.3", "12abc",
        "abc", "1e", "e5", "+", "-", ".", "1e+", "--1", "1_000", "na", "N/A", "null", "true", "1 2", "١", "１", "1e3.5", "0b1",
        "nan1", "NaNa", String(repeating: "9", count: 64),
    ]

    enum Outcome: Equatable {
        case value(UInt64)  // bit pattern; NaN (missing) canonical
        case refused
        init(_ d: Double?) { self = d.map { .value($0.isNaN ? Double.nan.bitPattern : $0.bitPattern) } ?? .refused }
    }

    func viaCSV(_ token: String, column k: Int) throws -> Outcome {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var cells = Array(repeating: "1", count: 13)
        cells[k] = token
        let url = try dir.write("in.csv", Self.model.schema.names.joined(separator: ",") + "\n" + cells.joined(separator: ",") + "\n")
        do { return Outcome(try CohortReader(url: url, model: Self.model).nextBatch()?.features[k]) } catch is VigilError { return .refused }
    }

    func jsonObject(_ token: String, column k: Int) throws -> String {
        var o: [String: Any] = Dictionary(uniqueKeysWithValues: Self.model.schema.names.map { ($0, 1) })
        o[Self.model.schema.names[k]] = token
        return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
    }

    func viaJSONLines(_ token: String, column k: Int) throws -> Outcome {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = try dir.write("in.jsonl", try jsonObject(token, column: k) + "\n")
        do { return Outcome(try CohortReader(url: url, model: Self.model).nextBatch()?.features[k]) } catch is VigilError { return .refused }
    }

    func viaRequest(_ token: String, column k: Int) throws -> Outcome {
        let parser = RequestParser(model: Self.model)
        do {
            let body = try RequestParser.parseJSON(Data(try jsonObject(token, column: k).utf8))
            return Outcome(try parser.nativeRows(body, maxRows: 10).features[k])
        } catch let e as ServerError {
            #expect(e.status == 400)
            #expect(e.message.contains("field '\(Self.model.schema.names[k])'"), "\(e.message)")
            return .refused
        }
    }

    @Test func everyPathReadsEveryTokenAlike() throws {
        var compared = 0
        for (i, (token, expected)) in Self.accepted.enumerated() {
            let k = i % 13
            let want = Outcome(expected ?? .nan)
            let csv = try viaCSV(token, column: k), jsonl = try viaJSONLines(token, column: k), request = try viaRequest(token, column: k)
            #expect(csv == want, "CSV '\(token)': \(csv)")
            #expect(jsonl == want, "JSON Lines '\(token)': \(jsonl)")
            #expect(request == want, "request '\(token)': \(request)")
            compared += 1
        }
        for (i, token) in Self.refused.enumerated() {
            let k = i % 13
            let csv = try viaCSV(token, column: k), jsonl = try viaJSONLines(token, column: k), request = try viaRequest(token, column: k)
            #expect(csv == .refused, "CSV '\(token)': \(csv)")
            #expect(jsonl == .refused, "JSON Lines '\(token)': \(jsonl)")
            #expect(request == .refused, "request '\(token)': \(request)")
            compared += 1
        }
        #expect(compared == 21 + 35)
        #expect(Self.accepted.count == 21 && Self.refused.count == 35)
    }

    /// The engine's reading itself, for the rule texts the three paths share.
    @Test func refusalsNameTheirRule() {
        #expect(RowNumber.read("1e999") == .refused("is not a number Vigil accepts: it overflows a double (beyond ±1.8e308) and would read as infinity; a value must be finite"))
        guard case .refused(let inf) = RowNumber.read("-Infinity") else { Issue.record("-Infinity accepted"); return }
        #expect(inf.contains("infinity is refused"))
        guard case .refused(let hex) = RowNumber.read("0x1p3") else { Issue.record("0x1p3 accepted"); return }
        #expect(hex.contains("hexadecimal is refused"))
        #expect(RowNumber.read(.number(2.5)) == .value(2.5))
        #expect(RowNumber.read(.bool(true)) == .value(1))
        #expect(RowNumber.read(.array([])) == .refused("is a JSON array, not a number"))
    }
}
