import Foundation
import Testing
@testable import VigilJSON
import VigilCore

/// The hand-written JSON parser behind every JSON model file, request body and ledger line:
/// values as RFC 8259 defines them, numbers rounded exactly as `Double(_:)` rounds them, and
/// every malformed document refused with an error naming the byte offset, never a crash.
struct JSONValueTests {
    func parse(_ s: String) throws -> JSONValue { try JSONValue.parse(Data(s.utf8)) }

    func failure(_ s: String) -> JSONValue.ParseError? {
        do {
            _ = try parse(s)
            return nil
        } catch let e as JSONValue.ParseError {
            return e
        } catch {
            return nil
        }
    }

    @Test func valuesOfEveryKind() throws {
        let v = try parse(#" { "a" : [1, -2.5e3, true, false, null, "x"], "b": {}, "c": [] , "d": {"e": [[0]]} } "#)
        #expect(v == .object([
            "a": .array([.number(1), .number(-2500), .bool(true), .bool(false), .null, .string("x")]),
            "b": .object([:]), "c": .array([]), "d": .object(["e": .array([.array([.number(0)])])]),
        ]))
        #expect(try parse("42") == .number(42))
        #expect(try parse("\"\"") == .string(""))
        // A repeated key is refused (it kept its last value before issue 13): see below.
        #expect(failure(#"{"k": 1, "k": 2}"#)?.reason.contains("duplicate key 'k'") == true, "a repeated key is refused")
    }

    @Test(arguments: [
        (#"{"k": 1, "k": 2}"#, "k", 9, "$.k"),
        (#"{"a": [{"x": 1}, {"b": 1, "b": {}}]}"#, "b", 26, "$.a[1].b"),
        (#"{"inputs": [{"name": "x", "shape": [1], "name": "y"}]}"#, "name", 40, "$.inputs[0].name"),
        (#"{"k": {"k": 1}, "j": {"k": 1, "k": 1}}"#, "k", 30, "$.j.k"),
        (#"{"\u006b": 1, "k": 2}"#, "k", 14, "$.k"),  // an escaped spelling of the same key
    ])
    func duplicateKeysAreRefusedNamingKeyPathAndOffset(document: String, key: String, offset: Int, path: String) {
        let e = failure(document)
        #expect(e?.reason == "duplicate key '\(key)' in an object; each key may appear once", "\(document): \(String(describing: e))")
        #expect(e?.offset == offset, "\(document): \(String(describing: e))")
        #expect(e?.path == path, "\(document): \(String(describing: e))")
        #expect(e?.description.contains(path) == true)
    }

    @Test func aDuplicateKeyInAModelFileIsNamedWithItsPath() {
        let error = #expect(throws: VigilError.self) {
            _ = try JSONNode.parse(Data(#"{"learner": {"objective": 1, "objective": 2}}"#.utf8), file: "m.json")
        }
        #expect(error?.message.contains("$.learner.objective") == true, "\(String(describing: error))")
        #expect(error?.message.contains("duplicate key 'objective'") == true)
    }

    @Test func numbersBeyondADoubleAreRefusedNotInfinity() throws {
        for token in ["1e999", "-1e999", "1e309", "[1, 2e400]", #"{"a": {"b": -9e99999}}"#] {
            let e = failure(token)
            #expect(e?.reason.contains("is not representable as a finite double") == true, "\(token): \(String(describing: e))")
        }
        #expect(failure(#"{"a": [0, 1e999]}"#)?.path == "$.a[1]")
        // Underflow is not overflow: it rounds to zero, as Double(_:) does.
        #expect(try parse("1e-999") == .number(0))
        // A long number token is cut in the error.
        let long = "1" + String(repeating: "0", count: 100_000)
        let e = failure(long)
        #expect(e != nil && e!.description.utf8.count < 300, "\(String(describing: e).prefix(300))")
    }

    @Test func errorPathsStayShortInDeepDocuments() {
        let deep = String(repeating: #"{"aaaaaaaaaa": "#, count: 300) + "1e999" + String(repeating: "}", count: 300)
        let e = failure(deep)
        #expect(e?.reason.contains("finite double") == true)
        #expect((e?.description.utf8.count ?? .max) < 600, "\(String(describing: e).prefix(700))")
    }

    @Test(arguments: [
        "0.1", "-0", "1e-300", "4.9406564584124654e-324", "1.7976931348623157e308", "0.30000000000000004",
        "123456789012345678901234567890", "2.2250738585072011e-308", "9007199254740993", "-1.5E+10", "1e0",
        "0.000000000000000000000000000000000000000000001",
    ])
    func numbersRoundExactlyAsTheStandardLibrary(token: String) throws {
        guard case .number(let d) = try parse(token) else {
            Issue.record("\(token): not a number")
            return
        }
        #expect(d.bitPattern == Double(token)!.bitPattern, "\(token)")
    }

    @Test func escapesAndUnicode() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u00e9\u4E2D\ud83d\ude00""#) == .string("é中😀"))
        #expect(try parse("\"é中😀\"") == .string("é中😀"), "raw UTF-8 passes through")
    }

    @Test(arguments: [
        ("", "unexpected end of data"),
        ("[1, 2", "unexpected end of data in an array"),
        ("{\"a\": 1", "unexpected end of data in an object"),
        ("{\"a\" 1}", "expected ':'"),
        ("{a: 1}", "expected a string key"),
        ("[1 2]", "expected ',' or ']'"),
        ("[1,]", "expected a value"),
        ("\"abc", "unexpected end of data in a string"),
        ("\"a\u{01}b\"", "unescaped control character"),
        (#""\x""#, "invalid escape"),
        (#""\u12zz""#, "invalid hex digit"),
        (#""\u12""#, "unexpected end of data in a \\u escape"),
        (#""\ud83d""#, "unpaired UTF-16 surrogate"),
        (#""\ude00""#, "unpaired UTF-16 surrogate"),
        ("01", "unexpected data after the JSON value"),
        ("1.", "expected a digit after '.'"),
        ("1e", "expected a digit in the exponent"),
        ("-", "expected a digit"),
        ("1e400", "not representable as a finite double"),
        ("NaN", "unexpected character 'N'"),
        ("tru", "invalid literal"),
        ("{} {}", "unexpected data after the JSON value"),
    ])
    func malformedDocumentsAreRefusedWithTheirPlace(document: String, reason: String) {
        let e = failure(document)
        #expect(e != nil, "'\(document)' must be refused")
        #expect(e?.reason.contains(reason) == true, "'\(document)': \(String(describing: e))")
        #expect((e?.offset ?? -1) <= document.utf8.count)
    }

    @Test func nanIsNullOnlyWhenAskedAndOnlyOutsideStrings() throws {
        let doc = Data(#"{"data": [60, NaN], "s": "NaN"}"#.utf8)
        #expect(try JSONValue.parse(doc, nanAsNull: true) == .object(["data": .array([.number(60), .null]), "s": .string("NaN")]))
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(doc) }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data("[NaNx]".utf8), nanAsNull: true) }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data("[-NaN]".utf8), nanAsNull: true) }
    }

    @Test func invalidUTF8IsRefused() {
        var bytes = Array("\"ab".utf8)
        bytes += [0xFF, 0xFE, UInt8(ascii: "\"")]
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data(bytes)) }
    }

    @Test func deepNestingIsAnErrorNotAStackOverflow() throws {
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(throws: Never.self) { try parse(ok) }
        let deep = String(repeating: "[", count: 100_000)
        let e = failure(deep)
        #expect(e?.reason.contains("nesting deeper than \(JSONValue.maxDepth)") == true)
    }
}
