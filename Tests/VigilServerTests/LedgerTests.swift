import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting
#if canImport(Glibc)
import Glibc
#endif

/// The audit ledger: every prediction and outcome chained; restarts keep counters; a
/// `kill -9` loses nothing acknowledged; any edit, deletion or reordering is detected.
struct LedgerTests {
    @Test func restartRebuildsCountersFromTheLedger() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true)
        var s = try await RunningServer(options: o)
        var c = s.unixClient()
        let r = try await c.send("POST", "/v1/models/toy/score", json: "[\(toyRecord(id: "a", lactate: 3)),\(toyRecord(id: "b", lactate: 0, sex: "M"))]")
        #expect(r.status == 200)
        #expect(r.array.map { $0["audit_seq"] as? Int } == [1, 2])
        let id = try #require(r.array[0]["prediction_id"] as? String)
        #expect(try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(id)", "label": 1}"#).status == 200)
        let before = try await c.send("GET", "/v1/models/toy/monitor").object
        try await s.stop()

        s = try await RunningServer(options: o)
        c = s.unixClient()
        let after = try await c.send("GET", "/v1/models/toy/monitor").object
        #expect(NSDictionary(dictionary: after["overall"] as! [String: Any]) == NSDictionary(dictionary: before["overall"] as! [String: Any]))
        #expect(NSDictionary(dictionary: after["by_group"] as! [String: Any]) == NSDictionary(dictionary: before["by_group"] as! [String: Any]))
        // The outcome is remembered: a second one is refused; new predictions continue the chain.
        #expect(try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(id)", "label": 0}"#).status == 409)
        #expect(try await c.send("POST", "/v1/models/toy/score", json: toyRecord()).object["audit_seq"] as? Int == 4)
        let metrics = try await c.send("GET", "/metrics").text
        #expect(metrics.contains(#"vigil_outcomes_total{model="toy",sex="Female",age_band="<65",outcome="tp"} 1"#), "\(metrics)")
        try await s.stop()

        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.headSeq == 4)
        let kinds = report.entries.map { e -> String in if case .string(let k)? = e["kind"] { return k } else { return "" } }
        #expect(kinds == ["prediction", "prediction", "outcome", "prediction"])
    }

    @Test func verifyDetectsEditsDeletionsAndReordering() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true)
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        for i in 0..<5 { #expect(try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "r\(i)")).status == 200) }
        try await s.stop()
        let path = o.ledger!
        let original = try String(contentsOfFile: path, encoding: .utf8)
        var lines = original.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        let ok = try CLI.run(["ledger", "verify", "--ledger", path])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("ok: 5 entries, head seq 5"))

        func check(_ text: String, _ expected: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try CLI.run(["ledger", "verify", "--ledger", path])
            #expect(r.status == 1, "tampered ledger passed: \(expected)")
            #expect(r.stderr.contains(expected), "\(r.stderr)")
        }
        // Edited: the risk of entry 3.
        var edited = lines
        edited[2] = edited[2].replacingOccurrences(of: "\"outputs\":[0.5]", with: "\"outputs\":[0.1]")
        #expect(edited[2] != lines[2])
        try check(edited.joined(separator: "\n") + "\n", "line 3 (seq 3): hash is")
        // Deleted: entry 2.
        var deleted = lines
        deleted.remove(at: 1)
        try check(deleted.joined(separator: "\n") + "\n", "seq 3 where 2 was expected")
        // Reordered: entries 4 and 5 swapped.
        lines.swapAt(3, 4)
        try check(lines.joined(separator: "\n") + "\n", "line 4: seq 5 where 4 was expected")
        // Truncated at the end: caught against the head kept elsewhere.
        try original.split(separator: "\n").prefix(3).map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        let report = try AuditLedger.verify(path: path)
        #expect(report.problems.isEmpty)
        let head = try CLI.run(["ledger", "verify", "--ledger", path, "--expect-head", "5:\(String(repeating: "0", count: 64))"])
        #expect(head.status == 1)
        #expect(head.stderr.contains("entries were removed from the end"))
        // A server refuses to append to a broken ledger.
        try edited.joined(separator: "\n").appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
    }

    /// `vigil serve` as a child process: N acknowledged predictions, SIGKILL, restart: all N are
    /// in the ledger, it verifies, the counters are intact. Then SIGTERM drains and exits 0.
    @Test func killDashNineLosesNothingAcknowledged() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let socket = pkg.dir.file("child.sock").path, ledger = pkg.dir.file("ledger.jsonl").path
        let n = 25
        var child = try ServeProcess(["serve", "--model", pkg.path, "--socket", socket, "--ledger", ledger])
        var ids: [String] = []
        let c = LoopbackHTTPClient(.unix(socket))
        for i in 0..<n {
            let r = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "k\(i)", lactate: Double(i % 5), sex: i % 2 == 0 ? "F" : "M"))
            #expect(r.status == 200)
            ids.append(r.object["prediction_id"] as? String ?? "")
        }
        let outcome = try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(ids[0])", "label": 1}"#)
        #expect(outcome.status == 200)
        let before = try await c.send("GET", "/v1/models/toy/monitor").object["overall"] as? [String: Any]
        c.disconnect()
        child.kill(SIGKILL)
        #expect(child.wait() == 128 + SIGKILL || child.wait() == -SIGKILL || child.wait() == SIGKILL)

        let report = try AuditLedger.verify(path: ledger)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.entries.count == n + 1)
        let ledgerIDs = report.entries.compactMap { e -> String? in
            if case .string("prediction")? = e["kind"], case .string(let id)? = e["prediction_id"] { return id }
            return nil
        }
        #expect(ledgerIDs == ids)

        // Restart on the same socket (the lock died with the process) and ledger.
        child = try ServeProcess(["serve", "--model", pkg.path, "--socket", socket, "--ledger", ledger])
        let c2 = LoopbackHTTPClient(.unix(socket))
        let after = try await c2.send("GET", "/v1/models/toy/monitor").object["overall"] as? [String: Any]
        #expect(after?["predictions"] as? Int == n)
        #expect((after?["tp"] as? Int ?? 0) + (after?["fn"] as? Int ?? 0) == 1)
        #expect(NSDictionary(dictionary: after ?? [:]) == NSDictionary(dictionary: before ?? [:]))
        #expect(try await c2.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(ids[1])", "label": 0}"#).status == 200)
        c2.disconnect()
        // SIGTERM: drains and exits 0, removing the socket.
        child.kill(SIGTERM)
        #expect(child.wait() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
        let verify = try CLI.run(["ledger", "verify", "--ledger", ledger])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.contains("ok: \(n + 2) entries"))
    }
}

/// A `vigil serve` child process, started and waited for until it prints its ready line;
/// killed when dropped, so a failing test leaves no server behind.
final class ServeProcess {
    let process = Process()

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    init(_ arguments: [String]) throws {
        process.executableURL = CLI.binary
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait (bounded) for "vigil serve: ready on ...".
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while !text.contains("ready on"), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard text.contains("ready on") else {
            process.terminate()
            throw LoopbackHTTPClient.Failure(description: "vigil serve did not become ready: \(text)")
        }
    }

    func kill(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}
