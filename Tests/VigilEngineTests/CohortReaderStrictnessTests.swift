import Foundation
import Testing
@testable import VigilEngine
import VigilTesting

/// The CSV and JSON Lines faults of issue 13, each refused naming the line and the field: text
/// after a closing quote, unclosed and stray quotes, bare carriage returns, NUL bytes, invalid
/// UTF-8, duplicate header names, field and record limits (failing fast on a runaway quote), and
/// values cut in errors. Uses the heart-disease LightGBM fixture (13 features, bare file).
struct CohortReaderStrictnessTests {
    static let model = CohortReaderTests.model
    static let names = model.schema.names
    static let header = "id," + names.joined(separator: ",")
    static let ones = Array(repeating: "1", count: 13).joined(separator: ",")

    func error(_ bytes: [UInt8], name: String = "in.csv", limits: CohortReader.Limits = .init()) throws -> VigilError? {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.url.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        do {
            let reader = try CohortReader(url: url, model: Self.model, limits: limits)
            while try reader.nextBatch() != nil {}
            return nil
        } catch let e as VigilError {
            return e
        }
    }

    func error(_ text: String, name: String = "in.csv", limits: CohortReader.Limits = .init()) throws -> VigilError? {
        try error(Array(text.utf8), name: name, limits: limits)
    }

    @Test(arguments: [
        // (second row's id field, message)
        (#""80"5"#, #"in.csv: line 3, field 1 'id': text after the closing quote of a quoted field ("80"5)"#),
        (#""80" "#, "line 3, field 1 'id': text after the closing quote"),
        (#"8"0"#, "line 3, field 1 'id': a quote inside an unquoted field"),
        ("a\rb", "line 3, field 1 'id': a carriage return outside quotes that does not end the line"),
        ("a\u{0}b", "line 3, field 1 'id': a NUL byte in the field"),
        ("\"a\u{0}b\"", "line 3, field 1 'id': a NUL byte in the field"),
    ])
    func malformedFieldsAreRefusedNamingLineAndField(id: String, message: String) throws {
        let text = "\(Self.header)\nr1,\(Self.ones)\n\(id),\(Self.ones)\n"
        let e = try error(text)
        #expect(e?.message.contains(message) == true, "\(String(describing: e))")
    }

    @Test func aQuotedFieldMayHoldCommasQuotesAndLineEnds() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = try dir.write("in.csv", "\(Self.header)\n\"a,\"\"b\"\"\r\nc\",\(Self.ones)\n\"\",\(Self.ones)\n")
        let b = try #require(try CohortReader(url: url, model: Self.model).nextBatch())
        #expect(b.ids == ["a,\"b\"\r\nc", "2"])
    }

    @Test func aQuotedFieldInANumericColumnIsStillRead() throws {
        let text = "\(Self.header)\nr1,\"80\",\(Array(repeating: "1", count: 12).joined(separator: ","))\n"
        #expect(try error(text) == nil)
        let bad = "\(Self.header)\nr1,\"80\"5,\(Array(repeating: "1", count: 12).joined(separator: ","))\n"
        #expect(try error(bad)?.message.contains("line 2, field 2 'age': text after the closing quote") == true)
    }

    @Test func anUnclosedQuoteAtTheEndOfTheFileIsRefused() throws {
        let e = try error("\(Self.header)\nr1,\(Self.ones)\n\"r2,\(Self.ones)\n")
        #expect(e?.message.contains("line 3, field 1 'id': a quoted field is not closed") == true, "\(String(describing: e))")
    }

    @Test func invalidUTF8InATextFieldIsNamed() throws {
        var bytes = Array("\(Self.header)\nr1,\(Self.ones)\n".utf8)
        bytes += [UInt8(ascii: "r"), 0xFF, 0xFE, UInt8(ascii: ",")] + Array("\(Self.ones)\n".utf8)
        let e = try error(bytes)
        #expect(e?.message.contains("line 3, field 1 'id': invalid UTF-8") == true, "\(String(describing: e))")
    }

    @Test func aDuplicateHeaderNameIsRefused() throws {
        let e = try error("id,\(Self.names.joined(separator: ",")),age\n")
        #expect(e?.message.contains("line 1: column 'age' appears twice (columns 2 and 15)") == true, "\(String(describing: e))")
        let long = String(repeating: "h", count: 200_000)
        let e2 = try error("\(long),\(Self.names.joined(separator: ",")),\(long)\n")
        #expect(e2?.message.contains("appears twice") == true)
        #expect((e2?.message.utf8.count ?? .max) < 300, "\(String(describing: e2).prefix(300))")
    }

    @Test func moreOrFewerFieldsThanTheHeaderAreRefused() throws {
        #expect(try error("\(Self.header)\nr1,\(Self.ones),1\n")?.message.contains("line 2: 15 fields where the header has 14") == true)
        #expect(try error("\(Self.header)\nr1,\(Self.ones)\nr2,1\n")?.message.contains("line 3: 2 fields where the header has 14") == true)
    }

    @Test func aFieldOverTheLimitIsRefusedNamingLineFieldAndLimit() throws {
        let big = String(repeating: "x", count: 2000)
        let limits = CohortReader.Limits(maxFieldBytes: 1024, maxRecordBytes: 1 << 20)
        let e = try error("\(Self.header)\nr1,\(Self.ones)\n\(big),\(Self.ones)\n", limits: limits)
        #expect(e?.message.contains("line 3, field 1 'id': the field is longer than the limit of 1024 bytes") == true, "\(String(describing: e))")
        let quoted = try error("\(Self.header)\n\"\(big)\",\(Self.ones)\n", limits: limits)
        #expect(quoted?.message.contains("line 2, field 1 'id': the field is longer than the limit of 1024 bytes") == true)
        // At the limit it is read.
        #expect(try error("\(Self.header)\n\(String(big.prefix(1024))),\(Self.ones)\n", limits: limits) == nil)
    }

    @Test func limitsMustBePositive() throws {
        let e = try error("\(Self.header)\n", limits: .init(maxFieldBytes: 0))
        #expect(e?.message.contains("limits must be positive") == true)
    }

    /// A stray quote at line 3 of a 200,000-row CSV (about 13 MB): the reader fails at line 3
    /// after reading at most the record limit plus one read (1 MiB) beyond it, instead of
    /// buffering the rest of the file.
    @Test func aStrayQuoteFailsFastAtItsLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let rowText = "12.5," + Array(repeating: "12.5", count: 12).joined(separator: ",")
        var text = "\(Self.header)\nr1,\(rowText)\n\"r2,\(rowText)\n"
        text.reserveCapacity(200_000 * 70)
        for i in 3..<200_000 { text += "r\(i),\(rowText)\n" }
        let url = try dir.write("big.csv", text)
        let limits = CohortReader.Limits()
        let reader = try CohortReader(url: url, model: Self.model, limits: limits)
        #expect(reader.totalBytes > 12_000_000)
        let e = #expect(throws: VigilError.self) { while try reader.nextBatch() != nil {} }
        #expect(e?.message.contains("big.csv: line 3: the record starting here is longer than the limit of \(limits.maxRecordBytes) bytes (a quote opened in it is not closed)") == true, "\(String(describing: e))")
        #expect(reader.bytesRead <= limits.maxRecordBytes + (1 << 20) + 4096, "read \(reader.bytesRead) bytes")
        #expect(reader.bytesRead < reader.totalBytes / 2)
        // A lower limit stops sooner.
        let small = try CohortReader(url: url, model: Self.model, limits: .init(maxFieldBytes: 1024, maxRecordBytes: 64 << 10))
        let e2 = #expect(throws: VigilError.self) { while try small.nextBatch() != nil {} }
        #expect(e2?.message.contains("line 3: the record starting here is longer than the limit of 65536 bytes") == true)
        #expect(small.bytesRead <= (64 << 10) + (1 << 20) + 4096)
    }

    /// A 10 MB field: the error stays short whichever rule refuses it.
    @Test func aTenMegabyteFieldGivesAShortError() throws {
        let big = String(repeating: "x", count: 10_000_000)
        let row12 = Array(repeating: "1", count: 12).joined(separator: ",")
        // Default limits: the record limit.
        let e1 = try error("\(Self.header)\nr1,\(big),\(row12)\n")
        #expect(e1?.message.contains("line 2: the record starting here is longer than the limit") == true, "\(String(describing: e1).prefix(300))")
        #expect((e1?.message.utf8.count ?? .max) < 300)
        // Limits raised: the number rule, with the value cut.
        let wide = CohortReader.Limits(maxFieldBytes: 16 << 20, maxRecordBytes: 32 << 20)
        let e2 = try error("\(Self.header)\nr1,\(big),\(row12)\n", limits: wide)
        #expect(e2?.message.contains("line 2, field 'age': value 'xxxx") == true, "\(String(describing: e2).prefix(300))")
        #expect(e2?.message.contains("(10000000 bytes)") == true)
        #expect((e2?.message.utf8.count ?? .max) < 300)
        let digits = String(repeating: "7", count: 10_000_000)
        let e3 = try error("\(Self.header)\nr1,\(digits),\(row12)\n", limits: wide)
        #expect(e3?.message.contains("longer than the limit of 63") == true, "\(String(describing: e3).prefix(300))")
        #expect((e3?.message.utf8.count ?? .max) < 300)
        // JSON Lines: a 10 MB string value.
        var obj = Self.names.map { "\"\($0)\": 1" }
        obj[0] = "\"age\": \"\(big)\""
        let e4 = try error("{\(obj.joined(separator: ", "))}\n", name: "in.jsonl", limits: wide)
        #expect(e4?.message.contains("field 'age': value 'xxx") == true, "\(String(describing: e4).prefix(300))")
        #expect((e4?.message.utf8.count ?? .max) < 300)
    }

    @Test func jsonLinesRefuseDuplicateKeysAndNameTheParseError() throws {
        let obj = Self.names.map { "\"\($0)\": 1" }.joined(separator: ", ")
        let e = try error("{\(obj)}\n{\(obj), \"age\": 2}\n", name: "in.jsonl")
        #expect(e?.message.contains("in.jsonl: line 2: not valid JSON (duplicate key 'age'") == true, "\(String(describing: e))")
        let e2 = try error("{\(obj.replacingOccurrences(of: "\"age\": 1", with: "\"age\": 1e999"))}\n", name: "in.jsonl")
        #expect(e2?.message.contains("line 1: not valid JSON (number 1e999 is not representable") == true, "\(String(describing: e2))")
        let e3 = try error("{\(obj.replacingOccurrences(of: "\"age\": 1", with: "\"age\": \"1e999\""))}\n", name: "in.jsonl")
        #expect(e3?.message.contains("line 1, field 'age': value '1e999' is not a number Vigil accepts") == true, "\(String(describing: e3))")
    }
}
