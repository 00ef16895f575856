import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// A seeded, bounded fuzz of the server's request handling: malformed request lines, headers,
/// chunk sizes, truncated bodies, random bytes and mutated OIP / native JSON bodies against a
/// real server on a temporary Unix socket. Every answer is a non-5xx status with a JSON body,
/// and the server still answers /v2/health/live afterwards.
struct RequestFuzzTests {
    static let requests = 5000
    static let seed: UInt64 = 13

    /// Classes that trapped (crashed the process) in RequestParsing/JSONValue when this test
    /// was written, fixed on another branch (issue 13): huge shapes whose product overflows,
    /// duplicate feature tensors, duplicate JSON keys, "1e999" strings. They stay in the
    /// generator and are sent like every other mutation; they must be refused with a 4xx.
    static let knownTrapBodies: [String] = [
        #"{"inputs": [{"name": "x", "shape": [999999999, 999999999, 999999999], "datatype": "FP64", "data": [1]}]}"#,
        #"{"inputs": [{"name": "x", "shape": [4611686018427387904, 4], "datatype": "FP64", "data": [1]}]}"#,
        #"{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [60]}, {"name": "age", "shape": [1], "datatype": "FP64", "data": [61]}, {"name": "lactate", "shape": [1], "datatype": "FP64", "data": [2]}]}"#,
        #"{"age": 60, "age": 61, "lactate": 2}"#,
        #"{"age": "1e999", "lactate": 2}"#,
    ]

    static let validBodies: [(path: String, body: String)] = [
        ("/v1/models/toy/score", #"{"encounter_id": "e1", "age": 60, "lactate": 2, "sex": "F"}"#),
        ("/v1/models/toy/score", #"[{"age": 70, "lactate": 1.5}, {"age": 40, "lactate": 3, "sex": "M"}]"#),
        ("/v2/models/toy/infer", #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [60, 2]}]}"#),
        ("/v2/models/toy/infer", #"{"id": "r1", "inputs": [{"name": "age", "shape": [2], "datatype": "FP64", "data": [60, 70]}, {"name": "lactate", "shape": [2], "datatype": "FP32", "data": [2, 1]}]}"#),
        ("/v1/models/toy/outcomes", #"{"prediction_id": "nope", "label": 1}"#),
    ]

    /// One generated request: its bytes and whether the client half-closes after sending.
    static func generate(_ rng: inout SplitMix64, knownTraps: Bool) -> ([UInt8], Bool) {
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        func post(_ path: String, _ body: [UInt8], extra: String = "") -> [UInt8] {
            Array("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\(extra)\r\n".utf8) + body
        }
        let (path, body) = pick(validBodies)
        switch rng.next() % 10 {
        case 0: // bad request lines
            let line = pick(["GET", "G\u{0}T /", "GET /v2 HTTP/1.1 extra", "/v2 HTTP/1.1", "GET  HTTP/1.1", "GET /%zz HTTP/1.1",
                             "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1", "GET /v2 HTTP/2.0", "\u{7f}\u{1}"])
            return (Array("\(line)\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8), true)
        case 1: // bad headers
            let h = pick(["Host localhost", ": empty", "Content-Length: -1", "Content-Length: 1e3", "Content-Length: 99999999999999999999",
                          "Transfer-Encoding: gzip", "X: \u{0}", "Bad Name: v", String(repeating: "X", count: 100_000) + ": v"])
            return (Array("POST \(path) HTTP/1.1\r\n\(h)\r\nConnection: close\r\n\r\n{}".utf8), true)
        case 2: // bad chunk sizes and chunk framing
            let c = pick(["zz\r\n{}\r\n0\r\n\r\n", "-1\r\n{}\r\n0\r\n\r\n", "ffffffffffffffffff\r\n{}", "2\r\n{}0\r\n\r\n", "2;ext\r\n{}\r\n0\r\n\r\n", "1\r\n{\r\n"])
            return (Array("POST \(path) HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\(c)".utf8), true)
        case 3: // truncated body, then EOF
            let bytes = Array(body.utf8)
            let cut = Int(rng.next() % UInt64(bytes.count))
            return (Array(post(path, bytes).dropLast(bytes.count - cut)), true)
        case 4: // random bytes
            let n = Int(rng.next() % 200) + 1
            return ((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, true)
        case 5: // deep nesting and huge numbers
            let depth = Int(rng.next() % 5000) + 1
            let b = pick([String(repeating: "[", count: depth) + String(repeating: "]", count: depth),
                          String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth),
                          #"{"age": 1e308, "lactate": -1e308}"#, #"{"age": 123456789012345678901234567890, "lactate": 2}"#,
                          #"{"inputs": [{"name": "x", "shape": [-1, 2], "datatype": "FP64", "data": [60, 2]}]}"#,
                          #"{"inputs": [{"name": "x", "shape": [0, 2], "datatype": "FP64", "data": []}]}"#])
            return (post(path, Array(b.utf8)), false)
        case 6 where knownTraps:
            return (post(pick(["/v2/models/toy/infer", "/v1/models/toy/score"]), Array(pick(knownTrapBodies).utf8)), false)
        default: // mutated valid bodies: flip, insert or delete bytes
            var bytes = Array(body.utf8)
            for _ in 0..<(Int(rng.next() % 4) + 1) where !bytes.isEmpty {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = pick(Array("{}[]\",:0123456789-.eE ntfa\\".utf8))
                case 1: bytes.insert(pick(Array("{}[]\",:9e-\u{0}".utf8)), at: i)
                default: bytes.remove(at: i)
                }
            }
            return (post(path, bytes), false)
        }
    }

    @Test func malformedRequestsNeverCrashOrAnswer5xx() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let knownTraps = true
        let socket = s.socketPath
        let (byStatus, closed, notJSON, fiveXX) = try await offPool { () -> ([Int: Int], Int, [String], [String]) in
            var rng = SplitMix64(seed: Self.seed)
            var byStatus: [Int: Int] = [:]
            var closed = 0
            var notJSON: [String] = [], fiveXX: [String] = []
            let c = LoopbackHTTPClient(.unix(socket))
            for _ in 0..<Self.requests {
                let (bytes, endWrite) = Self.generate(&rng, knownTraps: knownTraps)
                let shown = String(decoding: bytes.prefix(160), as: UTF8.self)
                do {
                    let r = try c.raw(bytes, endWrite: endWrite)
                    byStatus[r.status, default: 0] += 1
                    if r.status >= 500 { fiveXX.append("\(r.status) \(r.text) <- \(shown)") }
                    if !(r.json() is [String: Any] || r.json() is [Any]) { notJSON.append("\(r.status) '\(r.text)' <- \(shown)") }
                } catch let e as LoopbackHTTPClient.Failure where e.description.hasPrefix("closed") {
                    // The client gave up (EOF) before a complete request: no answer is due.
                    closed += 1
                }
            }
            return (byStatus, closed, notJSON, fiveXX)
        }
        let answered = byStatus.values.reduce(0, +)
        print("RequestFuzzTests: \(Self.requests) requests (seed \(Self.seed), known traps \(knownTraps ? "sent" : "excluded")): "
              + byStatus.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
              + ", closed without an answer: \(closed)")
        #expect(answered + closed == Self.requests)
        #expect(answered > Self.requests / 2, "most requests are complete and must be answered")
        #expect(fiveXX.isEmpty, "\(fiveXX.count) 5xx, first: \(fiveXX.prefix(3))")
        #expect(notJSON.isEmpty, "\(notJSON.count) without a JSON body, first: \(notJSON.prefix(3))")
        #expect(try await s.unixClient().send("GET", "/v2/health/live").status == 200)
        try await s.stop()
    }
}
