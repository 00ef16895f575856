import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// Replicas (issue 20): each replica's ledger carries its replica id in every entry, covered by
/// the hash chain, the HMAC and the signed checkpoints; ledgers written before replica ids still
/// verify and are extended; a ledger of another replica is refused; the id shows in /v1/models,
/// /v1/ledger/head and /metrics; `vigil ledger verify A B C` prints every head and fails when two
/// ledgers claim one replica id.
struct ReplicaLedgerTests {
    typealias KeyedLedger = LedgerIntegrityTests.KeyedLedger

    static func keys(_ k: KeyedLedger) throws -> AuditLedger.Keys {
        var keys = AuditLedger.Keys()
        keys.hmac = try LedgerHMACKey(file: k.keyFile)
        keys.signing = try LedgerSigningKey(file: k.privateKeyFile)
        keys.checkpointEvery = 4
        return keys
    }

    /// A keyed, signed ledger of `predictions` entries written by replica `replica`.
    static func write(_ path: String, replica: String?, predictions: Int, keys: AuditLedger.Keys = AuditLedger.Keys()) throws {
        let ledger = try AuditLedger(path: path, sync: false, keys: keys, replicaID: replica)
        for i in 0..<predictions {
            _ = try ledger.append(count: 1) { first in [KeyedLedger.prediction(id: "toy-\(first)", record: "r\(i)", risk: 0.5)] }
        }
        ledger.close()
    }

    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func everyEntryNamesTheReplicaAndTheKeysCoverIt() throws {
        let k = try KeyedLedger(predictions: 0)
        let path = k.dir.file("replica.jsonl").path
        try Self.write(path, replica: "vigil-0", predictions: 6, keys: Self.keys(k))
        let lines = try Self.lines(path)
        // header, checkpoint at start, 4 predictions, checkpoint, 2 predictions, checkpoint at close.
        #expect(lines.count == 10, "\(lines.count)")
        #expect(lines.allSatisfy { $0.contains(#"Z","replica":"vigil-0","kind":""#) }, "every entry, chain header and checkpoints too")
        let ok = k.verify(lines, try k.options())
        #expect(ok.problems.isEmpty && ok.replicaIDs == ["vigil-0"], "\(ok.problems) \(ok.replicaIDs)")
        // Renaming the replica of one prediction and recomputing every later plain hash passes
        // the plain check but neither the HMAC nor the checkpoints' signatures.
        var edited = lines
        edited[4] = edited[4].replacingOccurrences(of: "\"replica\":\"vigil-0\"", with: "\"replica\":\"vigil-1\"")
        let forged = LedgerIntegrityTests.recover(edited, original: lines)
        let keyed = k.verify(forged, try k.options(publicKey: false))
        #expect(keyed.found.first?.seq == 5, "the HMAC names the edited entry: \(keyed.problems)")
        let signed = k.verify(forged, try k.options(hmac: false))
        #expect(signed.problems.contains { $0.contains("signature does not verify") }, "\(signed.problems)")
        // And the ledger now names two replicas: verify says so even without keys.
        let plain = k.verify(forged, AuditLedger.VerifyOptions())
        #expect(plain.problems.contains { $0.contains("written by replica 'vigil-1' but earlier entries by replica 'vigil-0'") }, "\(plain.problems)")
    }

    @Test func aLedgerWrittenBeforeReplicaIDsIsExtendedAndStillVerifies() throws {
        let dir = try TemporaryDirectory("vigil-replica-old")
        defer { dir.remove() }
        let path = dir.file("ledger.jsonl").path
        try Self.write(path, replica: nil, predictions: 3)
        #expect(try Self.lines(path).allSatisfy { !$0.contains("\"replica\"") })
        let old = try AuditLedger.verify(path: path)
        #expect(old.problems.isEmpty && old.replicaIDs.isEmpty)
        try Self.write(path, replica: "site-a-1", predictions: 2)
        let lines = try Self.lines(path)
        #expect(lines.count == 5)
        #expect(lines.prefix(3).allSatisfy { !$0.contains("\"replica\"") } && lines.suffix(2).allSatisfy { $0.contains("\"replica\":\"site-a-1\"") })
        let r = try AuditLedger.verify(path: path)
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.replicaIDs == ["site-a-1"] && r.headSeq == 5)
        // Another replica may not extend it.
        let e = #expect(throws: VigilError.self) { _ = try AuditLedger(path: path, sync: false, replicaID: "site-a-2") }
        #expect(e?.message.contains("belongs to replica 'site-a-1' but this server is replica 'site-a-2'") == true, "\(e?.message ?? "")")
        #expect(throws: VigilError.self) { _ = try AuditLedger(path: dir.file("new.jsonl").path, sync: false, replicaID: "bad id") }
    }

    static let hostileReplicas: [(name: String, value: String)] = [
        ("a number", "123"), ("empty", "\"\""), ("a space", "\"a b\""), ("64 bytes", "\"\(String(repeating: "r", count: 64))\""),
        ("a slash", "\"a/b\""), ("a quote", "\"a\\\"b\""), ("a newline", "\"a\\nb\""), ("non-ASCII", "\"r\u{e9}plica\""), ("null", "null"),
    ]

    @Test func aMalformedReplicaFieldIsRefusedByNameNeverATrap() throws {
        #expect(Self.hostileReplicas.count == 9)
        for c in Self.hostileReplicas {
            let body = "\"replica\":\(c.value),\(KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5))"
            let r = AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([body]).utf8), file: "hostile.jsonl")
            #expect(r.problems.contains { $0.contains("field 'replica'") && $0.contains("line 1") }, "\(c.name): \(r.problems)")
        }
        let good = "\"replica\":\"ok-1\",\(KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5))"
        #expect(AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([good]).utf8), file: "good.jsonl").problems.isEmpty)
    }

    @Test func theServerShowsItsReplicaAndRefusesABadOne() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true)
        for bad in ["", "a b", "vigil/0", String(repeating: "x", count: 64), "naïve"] {
            o.replicaID = bad
            let e = #expect(throws: VigilError.self, "\(bad)") { _ = try VigilServer(options: o) }
            #expect(e?.message.hasPrefix("--replica-id:") == true && e?.kind == .usage, "\(e?.message ?? "")")
        }
        o.replicaID = nil
        do {
            let byHost = try VigilServer(options: o)
            #expect(ReplicaID.isValid(byHost.replicaID), "the host name is the default: \(byHost.replicaID)")
            byHost.ledger?.close(checkpoint: false)
        }
        o.replicaID = "vigil-2"
        try? FileManager.default.removeItem(atPath: o.ledger!)
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        #expect(try await c.send("POST", "/v1/models/toy/score", json: "[\(toyRecord(id: "a")),\(toyRecord(id: "b"))]").status == 200)
        let models = try await c.send("GET", "/v1/models").object
        #expect(models["replica"] as? String == "vigil-2", "\(models)")
        let head = try await c.send("GET", "/v1/ledger/head").object
        #expect(head["replica"] as? String == "vigil-2" && head["seq"] as? Int == 2, "\(head)")
        let metrics = try await c.send("GET", "/metrics").text
        #expect(metrics.contains("vigil_replica_info{replica=\"vigil-2\",version=\"\(VigilVersion.current)\"} 1"), "\(metrics)")
        try await s.stop()
        let lines = try Self.lines(o.ledger!)
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains("\"replica\":\"vigil-2\"") })
    }

    @Test func verifyingASetOfLedgersPrintsEveryHeadAndRefusesADuplicatedReplica() throws {
        let dir = try TemporaryDirectory("vigil-replica-set")
        defer { dir.remove() }
        let a = dir.file("a.jsonl").path, b = dir.file("b.jsonl").path, c = dir.file("c.jsonl").path, old = dir.file("old.jsonl").path
        try Self.write(a, replica: "vigil-0", predictions: 3)
        try Self.write(b, replica: "vigil-1", predictions: 5)
        try Self.write(c, replica: "vigil-2", predictions: 1)
        try Self.write(old, replica: nil, predictions: 2)
        let ok = try CLI.run(["ledger", "verify", a, b, c, old])
        #expect(ok.status == 0, "\(ok.stderr)")
        let heads = try [a, b, c, old].map { try AuditLedger.verify(path: $0) }
        for (replica, (path, h)) in zip(["vigil-0", "vigil-1", "vigil-2", "-"], zip([a, b, c, old], heads)) {
            let row = ok.stdout.split(separator: "\n").first { $0.contains(path) }.map(String.init) ?? ""
            #expect(row.hasPrefix(replica + " ") && row.contains(h.headHash) && row.trimmingCharacters(in: .whitespaces).hasSuffix(" ok"), "\(row)")
        }
        #expect(ok.stdout.contains("4 ledgers: 4 ok, 0 failed; 3 distinct replica ids"), "\(ok.stdout)")
        // A copy of one replica's ledger (restored from a backup, say) claims the same replica.
        let copy = dir.file("a-copy.jsonl").path
        try FileManager.default.copyItem(atPath: a, toPath: copy)
        let dup = try CLI.run(["ledger", "verify", a, b, copy])
        #expect(dup.status == 1)
        #expect(dup.stderr.contains("\(copy): replica id 'vigil-0' is also claimed by \(a)"), "\(dup.stderr)")
        #expect(dup.stdout.contains("DUPLICATE"), "\(dup.stdout)")
        // A broken ledger in the set fails the set and is named.
        var lines = try Self.lines(b)
        lines[1] = lines[1].replacingOccurrences(of: "\"r1\"", with: "\"r9\"")
        try lines.map { $0 + "\n" }.joined().write(toFile: b, atomically: true, encoding: .utf8)
        let broken = try CLI.run(["ledger", "verify", a, b, c])
        #expect(broken.status == 1 && broken.stderr.contains("\(b): first bad entry: line 2 (seq 2)"), "\(broken.stderr)")
        // A single ledger keeps its output, with its replica.
        let one = try CLI.run(["ledger", "verify", "--ledger", a])
        #expect(one.status == 0 && one.stdout.contains("ok: 3 entries") && one.stdout.contains("replica: vigil-0"), "\(one.stdout)")
        let refused = try CLI.run(["ledger", "verify", a, c, "--expect-head", "1:00"])
        #expect(refused.status == 2 && refused.stderr.contains("give a single ledger"), "\(refused.stderr)")
    }
}
