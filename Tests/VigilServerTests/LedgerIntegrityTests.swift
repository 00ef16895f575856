import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting
#if canImport(Glibc)
import Glibc
#endif

/// The keyed ledger (issue 13): an HMAC-SHA256 chain and Ed25519-signed checkpoints catch a
/// forger who recomputes every plain hash, appends, deletes, reorders or truncates; plain
/// verify passes the same forgeries (the threat model in docs/SERVER.md); malformed numbers in
/// a ledger are refused by name, never a trap; the ledger is created 0600 whatever the umask.
struct LedgerIntegrityTests {
    // MARK: - Fixtures

    /// A folder holding an HMAC key (0600), a signing key pair, and a keyed ledger of
    /// `predictions` predictions written with a checkpoint every 4 entries.
    struct KeyedLedger {
        let dir: TemporaryDirectory
        let path: String
        let keyFile: String
        let publicKeyFile: String
        let privateKeyFile: String
        let lines: [String]

        init(predictions: Int = 10, hmac: Bool = true, signing: Bool = true, keySeed: UInt64 = 77) throws {
            dir = try TemporaryDirectory("vigil-ledger-keys")
            keyFile = dir.file("ledger.key").path
            var bytes = [UInt8](repeating: 0, count: 32)
            var g = SplitMix64(seed: keySeed)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: g.next()) }
            FileManager.default.createFile(atPath: keyFile, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
            let made = try LedgerSigningKey.generate(into: dir.url.path)
            privateKeyFile = made.privateFile
            publicKeyFile = made.publicFile
            path = dir.file("ledger.jsonl").path
            var keys = AuditLedger.Keys()
            if hmac { keys.hmac = try LedgerHMACKey(file: keyFile) }
            if signing { keys.signing = try LedgerSigningKey(file: privateKeyFile) }
            keys.checkpointEvery = 4
            let ledger = try AuditLedger(path: path, sync: false, keys: keys)
            for i in 0..<predictions {
                _ = try ledger.append(count: 1) { first in [Self.prediction(id: "toy-\(first)", record: "r\(i)", risk: 0.5)] }
            }
            ledger.close()
            lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        }

        static func prediction(id: String, record: String, risk: Double) -> String {
            "\"kind\":\"prediction\",\"model\":\"toy\",\"model_version\":\"1\",\"model_sha256\":\"\(String(repeating: "a", count: 64))\",\"policy_version\":\"p1\",\"prediction_id\":\"\(id)\",\"record_id\":\"\(record)\",\"input_sha256\":\"\(String(repeating: "b", count: 64))\",\"outputs\":[\(risk)],\"threshold\":0.5,\"threshold_source\":\"group\",\"decision\":\(risk >= 0.5),\"group\":[\"F\"],\"buckets\":[0,1]"
        }

        func options(hmac: Bool = true, publicKey: Bool = true) throws -> AuditLedger.VerifyOptions {
            var o = AuditLedger.VerifyOptions()
            if hmac { o.hmacKey = try LedgerHMACKey(file: keyFile) }
            if publicKey { o.publicKey = try LedgerPublicKey(file: publicKeyFile) }
            return o
        }

        func verify(_ lines: [String], _ options: AuditLedger.VerifyOptions) -> AuditLedger.Report {
            AuditLedger.verify(data: Data((lines.map { $0 + "\n" }.joined()).utf8), file: "forged.jsonl", options: options)
        }
    }

    /// A forger without the keys: from the first line that differs from `original` on,
    /// renumbers `seq`, relinks `prev` and recomputes every hash as plain SHA-256 (what
    /// `verify` without a key checks), and sets each later checkpoint's `covers_seq` and
    /// `covers_hash` to the entry before it (keeping checkpoints in step with the rewritten
    /// chain; their signatures then fail). The lines before the change stay as they were.
    static func recover(_ lines: [String], original: [String]) -> [String] {
        let from = lines.indices.first { $0 >= original.count || lines[$0] != original[$0] } ?? lines.count
        var out = Array(lines[0..<from])
        for i in from..<lines.count {
            let prev = i == 0 ? AuditLedger.genesis : String(out[i - 1].suffix(66).prefix(64))
            var unsigned = String(lines[i].dropLast(75)) + "}"
            unsigned = unsigned.replacingOccurrences(of: #"^\{"seq":[^,]+"#, with: "{\"seq\":\(i + 1)", options: .regularExpression)
            unsigned = unsigned.replacingOccurrences(of: #""prev":"[0-9a-f]{64}"\}$"#, with: "\"prev\":\"\(prev)\"}", options: .regularExpression)
            unsigned = unsigned.replacingOccurrences(of: #""covers_seq":\d+,"covers_hash":"[0-9a-f]{64}""#, with: "\"covers_seq\":\(i),\"covers_hash\":\"\(prev)\"", options: .regularExpression)
            let hash = AuditLedger.sha256Hex(unsigned.utf8)
            out.append(String(unsigned.dropLast()) + ",\"hash\":\"\(hash)\"}")
        }
        return out
    }

    // MARK: - The layout of a keyed ledger

    @Test func aKeyedLedgerStartsWithItsChainHeaderAndCheckpointsAtStartEveryNAndAtClose() throws {
        let k = try KeyedLedger()
        // seq 1 header, 2 checkpoint at start, 3-6 predictions, 7 checkpoint, 8-11, 12 checkpoint, 13-14, 15 at close.
        #expect(k.lines.count == 15, "\(k.lines.count) lines")
        #expect(k.lines[0].contains(#""kind":"chain","chain":"hmac-sha256","key_id":""#))
        let checkpoints = k.lines.indices.filter { k.lines[$0].contains(#""kind":"checkpoint""#) }.map { $0 + 1 }
        #expect(checkpoints == [2, 7, 12, 15])
        let key = try Data(contentsOf: URL(fileURLWithPath: k.keyFile))
        #expect(!k.lines.joined().contains(key.map { String(format: "%02x", $0) }.joined()), "the key itself is never written")
        let r = k.verify(k.lines, try k.options())
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.scheme == "hmac-sha256" && r.checkpoints == 4 && r.lastCheckpointSeq == 15)
        #expect(r.limits.isEmpty, "\(r.limits)")
        // Without a key the chain's links and fields are still checked, and the limit is said.
        let plain = k.verify(k.lines, AuditLedger.VerifyOptions())
        #expect(plain.problems.isEmpty)
        #expect(plain.limits.contains { $0.contains("without --key its hashes were not checked") }, "\(plain.limits)")
    }

    // MARK: - Forgeries

    /// Each forgery: the lines, the first bad seq verify must name with the keys (nil: any),
    /// and whether --expect-checkpoint at the original last checkpoint is needed to catch it.
    @Test func everyForgeryFailsVerifyWithTheKeysAndPassesPlainVerify() throws {
        let k = try KeyedLedger()
        let L = k.lines
        func edit(_ lines: [String], _ i: Int, _ from: String, _ to: String) -> [String] {
            var l = lines
            l[i] = l[i].replacingOccurrences(of: from, with: to)
            #expect(l[i] != lines[i], "the edit changed nothing")
            return l
        }
        let forgedPrediction = "{\"seq\":0,\"time\":\"2026-12-01T00:00:00.000Z\",\(KeyedLedger.prediction(id: "toy-99", record: "forged", risk: 0.01)),\"prev\":\"\(AuditLedger.genesis)\",\"hash\":\"\(AuditLedger.genesis)\"}"
        let attacker = try KeyedLedger(predictions: 1, keySeed: 78)  // other keys
        func forge(_ lines: [String]) -> [String] { Self.recover(lines, original: L) }
        var forgeries: [(name: String, lines: [String], firstBad: Int?, needsExpected: Bool)] = [
            ("edit the risk of seq 4, recompute later hashes", forge(edit(L, 3, "\"outputs\":[0.5]", "\"outputs\":[0.1]")), 4, false),
            ("edit the decision of seq 9, recompute", forge(edit(L, 8, "\"decision\":true", "\"decision\":false")), 9, false),
            ("edit the group of seq 14, recompute", forge(edit(L, 13, "[\"F\"]", "[\"M\"]")), 14, false),
            ("edit a record id of seq 3, recompute", forge(edit(L, 2, "\"r0\"", "\"r7\"")), 3, false),
            ("append one forged prediction", forge(L + [forgedPrediction]), 16, false),
            ("append three forged predictions", forge(L + [forgedPrediction, forgedPrediction, forgedPrediction]), 16, false),
            ("insert a forged prediction after seq 5", forge(Array(L[0..<5]) + [forgedPrediction] + Array(L[5...])), 6, false),
            ("delete seq 5, renumber", forge(Array(L[0..<4]) + Array(L[5...])), 5, false),
            ("swap seq 9 and 10, renumber", forge({ var l = L; l.swapAt(8, 9); return l }()), 9, false),
            ("delete the last two entries", Array(L.dropLast(2)), 13, false),
            ("replace the signature of the checkpoint at seq 7", forge(edit(L, 6, String(L[6].split(separator: "\"signature\":\"")[1].prefix(128)), String(repeating: "ab", count: 64))), 7, false),
            ("move the checkpoint at seq 12 to the end", forge(Array(L[0..<11]) + Array(L[12...]) + [L[11]]), 12, false),
            ("drop the chain header, plain chain", forge(Array(L.dropFirst())), 1, false),
            ("change the header's key id", forge(edit(L, 0, String(L[0].split(separator: "\"key_id\":\"")[1].prefix(16)), "0123456789abcdef")), 1, false),
            ("truncate right after the checkpoint at seq 12", Array(L[0..<12]), nil, true),
            ("re-sign with the forger's own key", forge(Array(L[0..<3]) + attacker.lines.filter { $0.contains("\"kind\":\"checkpoint\"") }.prefix(1)), 4, false),
        ]
        // A forger with their own HMAC key: the header carries the forger's key id.
        forgeries.append(("the whole ledger rewritten under another HMAC key", attacker.lines, 1, false))
        // A forger holding the HMAC key (not the signing key) writes a valid HMAC chain: the
        // signatures catch it (no checkpoint covers it).
        let insider = try KeyedLedger(predictions: 3, signing: false)
        forgeries.append(("rewritten with the HMAC key but not the signing key", insider.lines, 1, false))
        #expect(forgeries.count >= 15)
        var caughtWithKeys = 0, passedPlain = 0
        for f in forgeries {
            var o = try k.options()
            if f.needsExpected {
                let passes = k.verify(f.lines, o)
                #expect(passes.problems.isEmpty, "\(f.name): caught without the expected checkpoint? \(passes.problems)")
                o.expectCheckpoint = (15, nil)
            }
            let r = k.verify(f.lines, o)
            if !r.problems.isEmpty { caughtWithKeys += 1 }
            #expect(!r.problems.isEmpty, "\(f.name): passed verify with the keys")
            if let seq = f.firstBad {
                #expect(r.found.first?.seq == seq, "\(f.name): first bad seq \(r.found.first?.seq.map(String.init) ?? "nil"), expected \(seq): \(r.problems.prefix(2))")
            }
            // Plain verify (no key) passes every one of them: what the keys are for.
            let plain = k.verify(f.lines, AuditLedger.VerifyOptions())
            if plain.problems.isEmpty { passedPlain += 1 }
            #expect(plain.problems.isEmpty, "\(f.name): plain verify caught it: \(plain.problems.prefix(2))")
        }
        print("ledger forgeries: \(forgeries.count), caught with the keys \(caughtWithKeys), passed plain verify \(passedPlain)")
        #expect(caughtWithKeys == forgeries.count)
    }

    @Test func theHMACKeyAloneNamesTheFirstForgedEntryAndTheSignatureAloneItsSpan() throws {
        let k = try KeyedLedger()
        var edited = k.lines
        edited[9] = edited[9].replacingOccurrences(of: "\"outputs\":[0.5]", with: "\"outputs\":[0.2]")
        let forged = Self.recover(edited, original: k.lines)
        let hmacOnly = k.verify(forged, try k.options(hmac: true, publicKey: false))
        #expect(hmacOnly.found.first?.seq == 10 && hmacOnly.found.first?.line == 10, "\(hmacOnly.problems.prefix(2))")
        #expect(hmacOnly.problems.first?.contains("HMAC") == true)
        let signatureOnly = k.verify(forged, try k.options(hmac: false, publicKey: true))
        // The checkpoint after the edit (seq 12) fails and names the span since the one before (7).
        #expect(signatureOnly.found.first?.seq == 12, "\(signatureOnly.problems.prefix(2))")
        #expect(signatureOnly.problems.first?.contains("seq 8...11") == true, "\(signatureOnly.problems.prefix(1))")
        // A live ledger's tail after the last checkpoint: refused unless allowed, named either way.
        let tail = Array(k.lines.dropLast())
        let strict = k.verify(tail, try k.options(hmac: false, publicKey: true))
        #expect(strict.problems.first?.contains("entries after seq 12 are not covered by a signature") == true, "\(strict.problems)")
        var allow = try k.options(hmac: false, publicKey: true)
        allow.allowUnsignedTail = true
        let lenient = k.verify(tail, allow)
        #expect(lenient.problems.isEmpty && lenient.limits.contains { $0.contains("entries after seq 12") })
    }

    @Test func aSigningOnlyLedgerIsAPlainChainWithCheckpoints() throws {
        let k = try KeyedLedger(predictions: 5, hmac: false, signing: true)
        #expect(!k.lines[0].contains("\"kind\":\"chain\""))
        #expect(k.verify(k.lines, try k.options(hmac: false, publicKey: true)).problems.isEmpty)
        // A key given for a plain chain is refused: it cannot vouch for it.
        let r = k.verify(k.lines, try k.options(hmac: true, publicKey: false))
        #expect(r.problems.first?.contains("the ledger is not keyed") == true, "\(r.problems)")
        // An old plain ledger (no keys at all) still verifies.
        let old = try KeyedLedger(predictions: 3, hmac: false, signing: false)
        #expect(old.lines.count == 3)
        #expect(old.verify(old.lines, AuditLedger.VerifyOptions()).problems.isEmpty)
    }

    // MARK: - Malformed numbers and fields

    /// One plain-chained line with `fields` in place of the usual prediction body's values.
    static func plainLedger(_ bodies: [String], seqs: [String]? = nil) -> String {
        var prev = AuditLedger.genesis
        var out = ""
        for (i, body) in bodies.enumerated() {
            let seq = seqs?[i] ?? String(i + 1)
            let unsigned = "{\"seq\":\(seq),\"time\":\"2026-12-01T00:00:00.000Z\",\(body),\"prev\":\"\(prev)\"}"
            let hash = AuditLedger.sha256Hex(unsigned.utf8)
            out += String(unsigned.dropLast()) + ",\"hash\":\"\(hash)\"}\n"
            prev = hash
        }
        return out
    }

    static let hostileLines: [(name: String, ledger: String, says: String)] = {
        let good = KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5)
        return [
            ("seq 1e300", plainLedger([good], seqs: ["1e300"]), "field 'seq'"),
            ("seq -1", plainLedger([good], seqs: ["-1"]), "field 'seq'"),
            ("seq 1.5", plainLedger([good], seqs: ["1.5"]), "field 'seq'"),
            ("seq a string", plainLedger([good], seqs: ["\"1\""]), "field 'seq'"),
            ("buckets [1e300]", plainLedger([good.replacingOccurrences(of: "\"buckets\":[0,1]", with: "\"buckets\":[1e300]")]), "field 'buckets'"),
            ("buckets [-5]", plainLedger([good.replacingOccurrences(of: "\"buckets\":[0,1]", with: "\"buckets\":[-5]")]), "field 'buckets'"),
            ("buckets [0.5]", plainLedger([good.replacingOccurrences(of: "\"buckets\":[0,1]", with: "\"buckets\":[0.5]")]), "field 'buckets'"),
            ("outputs a string", plainLedger([good.replacingOccurrences(of: "\"outputs\":[0.5]", with: "\"outputs\":\"high\"")]), "field 'outputs'"),
            ("decision a number", plainLedger([good.replacingOccurrences(of: "\"decision\":true", with: "\"decision\":1")]), "field 'decision'"),
            ("no prediction id", plainLedger([good.replacingOccurrences(of: "\"prediction_id\":\"toy-1\",", with: "")]), "field 'prediction_id'"),
            ("a 10 kB model name", plainLedger([good.replacingOccurrences(of: "\"model\":\"toy\"", with: "\"model\":\"\(String(repeating: "x", count: 10_000))\"")]), "longer than 4096 bytes"),
            ("an unknown kind", plainLedger([good.replacingOccurrences(of: "\"kind\":\"prediction\"", with: "\"kind\":\"payment\"")]), "field 'kind'"),
            ("outcome label 1e300", plainLedger([good, "\"kind\":\"outcome\",\"model\":\"toy\",\"model_version\":\"1\",\"model_sha256\":\"a\",\"policy_version\":\"p\",\"prediction_id\":\"toy-1\",\"label\":1e300,\"outputs\":[0.5],\"group\":[]"]), "field 'label'"),
            ("checkpoint covers_seq 1e300", plainLedger([good, "\"kind\":\"checkpoint\",\"covers_seq\":1e300,\"covers_hash\":\"\(String(repeating: "0", count: 64))\",\"public_key_id\":\"0123456789abcdef\",\"signature\":\"\(String(repeating: "0", count: 128))\""]), "field 'covers_seq'"),
        ]
    }()

    @Test func malformedLedgerLinesAreReportedByLineAndRuleNeverATrap() throws {
        for c in Self.hostileLines {
            let r = AuditLedger.verify(data: Data(c.ledger.utf8), file: "hostile.jsonl")
            #expect(r.problems.contains { $0.contains(c.says) && $0.contains("line ") }, "\(c.name): \(r.problems)")
            #expect(r.problems.allSatisfy { $0.utf8.count < 1000 }, "\(c.name): an unbounded message")
        }
        #expect(Self.hostileLines.count >= 14)
    }

    @Test func serverStartRefusesAMalformedLedgerWithANamedError() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true)
        o.socket = nil
        for c in Self.hostileLines {
            try c.ledger.write(toFile: o.ledger!, atomically: true, encoding: .utf8)
            let error = #expect(throws: VigilError.self, "\(c.name)") { _ = try VigilServer(options: o) }
            #expect(error?.message.contains(c.says) == true, "\(c.name): \(error?.message ?? "")")
        }
    }

    @Test func verifyThroughTheCLINamesTheFirstBadEntryAndSaysWhatItCannotSee() throws {
        let k = try KeyedLedger()
        var edited = k.lines
        edited[4] = edited[4].replacingOccurrences(of: "\"outputs\":[0.5]", with: "\"outputs\":[0.05]")
        let forged = k.dir.file("forged.jsonl").path
        try Self.recover(edited, original: k.lines).map { $0 + "\n" }.joined().write(toFile: forged, atomically: true, encoding: .utf8)
        let keyed = try CLI.run(["ledger", "verify", "--ledger", forged, "--key", k.keyFile, "--public-key", k.publicKeyFile])
        #expect(keyed.status == 1)
        #expect(keyed.stderr.contains("first bad entry: line 5 (seq 5)"), "\(keyed.stderr)")
        let plain = try CLI.run(["ledger", "verify", "--ledger", forged])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("not checked:"), "\(plain.stdout)")
        let ok = try CLI.run(["ledger", "verify", "--ledger", k.path, "--key", k.keyFile, "--public-key", k.publicKeyFile, "--expect-checkpoint", "15"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("chain: hmac-sha256 chain") && ok.stdout.contains("4 checkpoints, last at seq 15"), "\(ok.stdout)")
        // Cut back to the checkpoint at seq 12: only the expected checkpoint catches it.
        let cut = k.dir.file("cut.jsonl").path
        try k.lines.prefix(12).map { $0 + "\n" }.joined().write(toFile: cut, atomically: true, encoding: .utf8)
        let truncated = try CLI.run(["ledger", "verify", "--ledger", cut, "--key", k.keyFile, "--public-key", k.publicKeyFile, "--expect-checkpoint", "15"])
        #expect(truncated.status == 1)
        #expect(truncated.stderr.contains("before the expected checkpoint at seq 15"), "\(truncated.stderr)")
        // A 1e300 line through the CLI: exit 1 and the rule, no crash.
        let hostile = k.dir.file("hostile.jsonl").path
        try Self.hostileLines[0].ledger.write(toFile: hostile, atomically: true, encoding: .utf8)
        let h = try CLI.run(["ledger", "verify", "--ledger", hostile])
        #expect(h.status == 1 && h.stderr.contains("field 'seq'"), "\(h.status) \(h.stderr)")
        // A key file others may read is refused.
        chmod(k.keyFile, 0o644)
        let loose = try CLI.run(["ledger", "verify", "--ledger", k.path, "--key", k.keyFile])
        #expect(loose.status == 2 && loose.stderr.contains("chmod 600"), "\(loose.stderr)")
    }

    @Test func keygenWritesAPrivateKey0600AndAPublicKey0644AndRefusesToOverwrite() throws {
        let dir = try TemporaryDirectory("vigil-keygen")
        let out = dir.file("keys").path
        let r = try CLI.run(["ledger", "keygen", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        var st = stat()
        #expect(stat(out + "/ledger-signing.key", &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(stat(out + "/ledger-signing.pub", &st) == 0 && st.st_mode & 0o777 == 0o644)
        #expect(try CLI.run(["ledger", "keygen", "--out", out]).status != 0)
    }

    // MARK: - The server with keys, and file modes

    @Test func aServerWithBothKeysWritesAVerifiableLedgerAndRefusesToDropTheKey() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let k = try KeyedLedger(predictions: 0)
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true)
        o.ledgerKeyFile = k.keyFile
        o.ledgerSigningKeyFile = k.privateKeyFile
        o.checkpointEvery = 2
        var s = try await RunningServer(options: o)
        let c = s.unixClient()
        for i in 0..<3 { #expect(try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "k\(i)")).status == 200) }
        try await s.stop()
        let r = try AuditLedger.verify(path: o.ledger!, options: try k.options())
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.lastCheckpointSeq == r.headSeq, "a graceful stop ends with a checkpoint")
        // Restart with the keys: counters replayed, chain continued; without the HMAC key: refused.
        s = try await RunningServer(options: o)
        let monitor = try await s.unixClient().send("GET", "/v1/models/toy/monitor").object
        #expect((monitor["overall"] as? [String: Any])?["predictions"] as? Int == 3)
        try await s.stop()
        var noKey = o
        noKey.ledgerKeyFile = nil
        let error = #expect(throws: VigilError.self) { _ = try VigilServer(options: noKey) }
        #expect(error?.message.contains("--ledger-key") == true, "\(error?.message ?? "")")
        var st = stat()
        #expect(stat(o.ledger!, &st) == 0 && st.st_mode & 0o777 == 0o600)
    }

    @Test func theLedgerIsCreated0600UnderUmask000AndALooseOneIsTightened() throws {
        let dir = try TemporaryDirectory("vigil-ledger-mode")
        let path = dir.file("ledger.jsonl").path
        let old = umask(0)
        let ledger = try AuditLedger(path: path, sync: false)
        umask(old)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600, "mode \(String(st.st_mode & 0o777, radix: 8))")
        _ = try ledger.append(count: 1) { _ in [KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5)] }
        ledger.close()
        chmod(path, 0o644)
        let reopened = try AuditLedger(path: path, sync: false)
        #expect(reopened.notes.contains { $0.contains("had mode 644; set to 0600") }, "\(reopened.notes)")
        reopened.close()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
    }

    // MARK: - Mutations of a generated ledger

    @Test func mutatedLedgersAreRefusedOrVerifyNeverATrap() throws {
        let k = try KeyedLedger(predictions: 12)
        let text = Array(k.lines.map { $0 + "\n" }.joined().utf8)
        var g = SplitMix64(seed: 1313)
        var mutants = 0, refused = 0, passed = 0
        let numbers = ["0", "-1", "1e300", "9223372036854775807", "NaN", "1.5", "4294967296"]
        func check(_ bytes: [UInt8]) throws {
            mutants += 1
            let r = AuditLedger.verify(data: Data(bytes), file: "m.jsonl", options: try k.options())
            if r.problems.isEmpty { passed += 1 } else { refused += 1 }
            #expect(r.problems.allSatisfy { !$0.isEmpty && $0.utf8.count < 1000 })
            _ = AuditLedger.verify(data: Data(bytes), file: "m.jsonl")
        }
        for _ in 0..<150 {
            var b = text
            b[g.index(below: b.count)] ^= UInt8(1 + g.index(below: 255))
            try check(b)
        }
        for cut in stride(from: 0, to: text.count, by: max(1, text.count / 150)) { try check(Array(text[0..<cut])) }
        let digits = text.indices.filter { (0x30...0x39).contains(text[$0]) && !(0x30...0x39).contains(text[$0 - 1]) && text[$0 - 1] != UInt8(ascii: "\"") }
        for _ in 0..<150 {
            let at = digits[g.index(below: digits.count)]
            var end = at
            while end < text.count, (0x30...0x39).contains(text[end]) || text[end] == UInt8(ascii: ".") { end += 1 }
            try check(Array(text[0..<at]) + Array(numbers[g.index(below: numbers.count)].utf8) + Array(text[end...]))
        }
        for i in 0..<150 {
            var l = k.lines
            let a = g.index(below: l.count), b = g.index(below: l.count)
            switch i % 3 {
            case 0: l.remove(at: a)
            case 1: l.insert(l[a], at: b)
            default: l.swapAt(a, b)
            }
            try check(Array(l.map { $0 + "\n" }.joined().utf8))
        }
        print("ledger mutation: \(mutants) mutants, \(refused) refused, \(passed) passed verify, 0 crashed")
        #expect(mutants >= 600)
        // Only no-op mutations may pass (a swap of a line with itself, a cut at 0).
        #expect(refused >= mutants - 60, "\(passed) mutants passed verify with the keys")
    }
}
