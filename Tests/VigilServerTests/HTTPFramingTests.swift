import Foundation
import Testing
import VigilServer
import VigilTesting

/// Requests the HTTP/1 parser or the body reader refuses get a 4xx with `{"error": "..."}`
/// naming the rule (never a 500 or an empty 400), and the server keeps serving.
struct HTTPFramingTests {
    static let score = "POST /v1/models/toy/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"

    /// (name, raw request bytes, half-close after sending, expected statuses, text in the error).
    static let cases: [(String, String, Bool, Set<Int>, String)] = [
        ("invalid chunk size", score + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", false, [400], "chunk"),
        ("body shorter than Content-Length, then EOF", score + "Content-Length: 100\r\n\r\n{\"age\": 6", true, [400], "body"),
        ("malformed request line", "GARBAGE\r\n\r\n", false, [400], "malformed HTTP"),
        ("header without a colon", "GET /v2/health/live HTTP/1.1\r\nHost localhost\r\n\r\n", false, [400], "malformed HTTP"),
        ("control character in the path", "GET /v2/he\u{01}alth HTTP/1.1\r\nHost: localhost\r\n\r\n", false, [400], "malformed HTTP"),
        ("space in the path", "GET /v2/he alth/x HTTP/1.1\r\nHost: localhost\r\n\r\n", false, [400], "malformed HTTP"),
        ("bad HTTP version", "GET /v2/health/live HTTP/9\r\nHost: localhost\r\n\r\n", false, [400, 505], "malformed HTTP"),
        ("two Content-Lengths", score + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", false, [400], "malformed HTTP"),
        ("POST on a GET route", "POST /v2/health/live HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", false, [405], "not allowed"),
        ("unknown method", "BREW /v2/health/live HTTP/1.1\r\nHost: localhost\r\n\r\n", false, [400, 405, 501], "method"),
    ]

    @Test func refusedFramingIsAnsweredWithJSON() async throws {
        #expect(Self.cases.count == 10)
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        for (name, raw, endWrite, statuses, text) in Self.cases {
            let r = try await offPool { try c.raw(Array(raw.utf8), endWrite: endWrite) }
            #expect(statuses.contains(r.status), "\(name): \(r.status) \(r.text)")
            #expect(r.headers["content-type"] == "application/json", "\(name): \(r.headers)")
            #expect(r.object["error"] is String, "\(name): body \(r.text)")
            #expect(r.error.contains(text), "\(name): expected '\(text)' in \(r.text)")
            // Still serving on a fresh connection.
            #expect(try await c.send("GET", "/v2/health/live").status == 200, "after \(name)")
        }
        // HEAD on a GET route: its headers, no body; a known path with another method: 405 + Allow.
        let head = try await offPool { try c.raw(Array("HEAD /v2/health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)) }
        // HEAD on a GET route: the GET's status and headers, no body.
        #expect(head.status == 200 && head.text.isEmpty, "HEAD: \(head.status) \(head.text)")
        let post = try await offPool { try c.raw(Array("POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".utf8)) }
        #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD", "\(post.status) \(post.headers)")
        try await s.stop()
    }
}
