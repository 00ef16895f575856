import Testing
@testable import VigilCore

struct UntrustedTests {
    @Test func controlCharacters() {
        #expect(!Untrusted.containsControlCharacter("Jane Doe, Ärztin"))
        #expect(Untrusted.containsControlCharacter("a\u{7}b") && Untrusted.containsControlCharacter("a\u{7F}") && Untrusted.containsControlCharacter("a\tb"))
        #expect(Untrusted.containsControlCharacter("a\nb"))
        #expect(!Untrusted.containsControlCharacter("a\nb", allowingNewline: true))
        #expect(Untrusted.containsControlCharacter("a\n\rb", allowingNewline: true))
    }

    @Test func lowercaseHexIsExactlyThat() {
        let d = String(repeating: "0123456789abcdef", count: 4)
        #expect(Untrusted.isLowercaseHex(d, count: 64))
        #expect(!Untrusted.isLowercaseHex(d.uppercased(), count: 64))
        #expect(!Untrusted.isLowercaseHex(String(d.dropLast()), count: 64))
        #expect(!Untrusted.isLowercaseHex(d + "0", count: 64))
        #expect(!Untrusted.isLowercaseHex(String(d.dropLast()) + "g", count: 64))
        #expect(!Untrusted.isLowercaseHex(String(d.dropLast()) + "\u{FF10}", count: 64), "a full-width digit is not hex")
        #expect(Untrusted.isLowercaseHex("", count: 0))
    }

    @Test func quoteCutsLongValuesAndEscapesControls() {
        #expect(Untrusted.quote("abc") == "abc")
        let long = String(repeating: "x", count: 10_000_000)
        let q = Untrusted.quote(long)
        #expect(q.utf8.count < 120)
        #expect(q.hasSuffix("... (10000000 bytes)"))
        #expect(Untrusted.quote("a\r\nb") == "a\\r\\nb")
        #expect(Untrusted.quote("\u{0}") == "\\u{0}")
        // A cut never splits a character: 40 two-byte letters fill 80 bytes exactly.
        #expect(Untrusted.quote(String(repeating: "é", count: 41)).hasPrefix(String(repeating: "é", count: 40) + "..."))
    }

    @Test func productReportsOverflowAndLimits() throws {
        #expect(try Untrusted.product([2, 3, 4], limit: 100, place: "p") == 24)
        #expect(throws: VigilError.self) { try Untrusted.product([999_999_999, 999_999_999, 999_999_999], limit: Int.max, place: "shape") }
        #expect(throws: VigilError.self) { try Untrusted.product([10, 11], limit: 100, place: "shape") }
        #expect(throws: VigilError.self) { try Untrusted.product([-1, 2], limit: 100, place: "shape") }
        #expect(try Untrusted.product([0, Int.max], limit: 10, place: "p") == 0)
    }

    @Test func integerNeverTraps() {
        #expect(Untrusted.integer(7) == 7)
        #expect(Untrusted.integer(7.5) == nil)
        #expect(Untrusted.integer(1e300) == nil)
        #expect(Untrusted.integer(-1e300) == nil)
        #expect(Untrusted.integer(.nan) == nil)
        #expect(Untrusted.integer(.infinity) == nil)
        #expect(Untrusted.integer(9.223372036854775807e18) == nil)
        #expect(Untrusted.integer(5, in: 0...4) == nil)
        #expect(Untrusted.integer(-9.2e18) == -9_200_000_000_000_000_000)
    }
}
