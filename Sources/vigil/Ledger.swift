import ArgumentParser
import Foundation
import VigilEngine
import VigilServer
import VigilJSON

struct Ledger: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the audit ledger that vigil serve writes.",
        subcommands: [Verify.self, Keygen.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the ledger's chain, and with a key its HMACs or signed checkpoints.",
            discussion: """
                Without a key, an edited, deleted, inserted or reordered entry fails, but a forger \
                who recomputes the later hashes, appends entries or removes entries from the end \
                is not caught. --key (the HMAC key of a ledger written with --ledger-key) checks \
                every entry's HMAC and names the first forged one. --public-key checks every \
                signed checkpoint and refuses entries after the last one (--allow-unsigned-tail \
                accepts them, e.g. for a live server). --expect-checkpoint or --expect-head, kept \
                from an earlier verify or GET /v1/ledger/head, catch a ledger cut back before them. \
                See docs/SERVER.md, "Ledger threat model".

                Several ledgers (one per replica: `vigil ledger verify A B C`, or --ledger \
                repeated) are each verified with the same options; then every head is printed \
                (replica id, entries, head seq, last hash), and two ledgers that claim the same \
                replica id fail (each replica's chain has one writer). Ledgers written before \
                replica ids show replica '-'. --expect-head and --expect-checkpoint need a single \
                ledger.
                """)

        @Option(name: .long, help: "A ledger file (repeat for several, or list them as arguments).")
        var ledger: [String] = []

        @Argument(help: "Ledger files (one per replica).")
        var ledgers: [String] = []

        @Option(name: .long, help: "SEQ:HASH the head must be at least at (the entry SEQ must have HASH).")
        var expectHead: String?

        @Option(name: .long, help: "HMAC key file the ledger was written with (vigil serve --ledger-key).")
        var key: String?

        @Option(name: .long, help: "Ed25519 public key file (vigil ledger keygen) that signs the checkpoints.")
        var publicKey: String?

        @Option(name: .long, help: "SEQ or SEQ:HASH of a signed checkpoint the ledger must still hold.")
        var expectCheckpoint: String?

        @Flag(name: .long, help: "With --public-key, accept entries after the last checkpoint (reported, not failed).")
        var allowUnsignedTail = false

        func run() throws {
            try runReportingErrors {
                let files = ledger + ledgers
                guard !files.isEmpty else { throw VigilError(.usage, "ledger verify: give the ledger file(s), as arguments or with --ledger") }
                if files.count > 1 {
                    guard expectHead == nil, expectCheckpoint == nil else {
                        throw VigilError(.usage, "--expect-head and --expect-checkpoint name one ledger's entries; give a single ledger with them (got \(files.count))")
                    }
                    try verifySet(files)
                    return
                }
                let ledger = files[0]
                var options = AuditLedger.VerifyOptions()
                options.hmacKey = try key.map { try LedgerHMACKey(file: $0) }
                options.publicKey = try publicKey.map { try LedgerPublicKey(file: $0) }
                options.allowUnsignedTail = allowUnsignedTail
                if let expectCheckpoint {
                    let parts = expectCheckpoint.split(separator: ":", omittingEmptySubsequences: false)
                    guard (1...2).contains(parts.count), let seq = Int(parts[0]), seq >= 1 else {
                        throw VigilError(.usage, "--expect-checkpoint: '\(Untrusted.quote(expectCheckpoint))' must be SEQ or SEQ:HASH")
                    }
                    options.expectCheckpoint = (seq, parts.count == 2 ? String(parts[1]) : nil)
                }
                let report = try AuditLedger.verify(path: ledger, options: options)
                var problems = report.problems
                if let expectHead {
                    let parts = expectHead.split(separator: ":")
                    guard parts.count == 2, let seq = Int(parts[0]) else {
                        throw VigilError(.usage, "--expect-head: '\(Untrusted.quote(expectHead))' must be SEQ:HASH")
                    }
                    if seq > report.headSeq {
                        problems.append("the ledger ends at seq \(report.headSeq) but --expect-head names seq \(seq); entries were removed from the end")
                    }
                    if seq >= 1, seq <= report.hashes.count, report.hashes[seq - 1] != parts[1] {
                        let actual = report.hashes[seq - 1]
                        problems.append("entry seq \(seq) has hash \(actual) but --expect-head says \(parts[1])")
                    }
                }
                let scheme = report.scheme == "sha256" ? "plain SHA-256 chain" : "\(report.scheme) chain, key id \(report.keyID ?? "?")"
                if problems.isEmpty {
                    print("ok: \(report.entries.count) entries, head seq \(report.headSeq) hash \(report.headHash)")
                    print("chain: \(scheme); \(report.checkpoints) checkpoints, last at seq \(report.lastCheckpointSeq)")
                    print("replica: \(report.replicaIDs.last ?? "-")")
                    for l in report.limits { print("not checked: \(l)") }
                } else {
                    if let first = report.found.first {
                        let seq = first.seq.map { "seq \($0)" } ?? "seq unreadable"
                        FileHandle.standardError.write(Data("error: \(ledger): first bad entry: line \(first.line) (\(seq))\n".utf8))
                    }
                    for p in problems { FileHandle.standardError.write(Data("error: \(ledger): \(p)\n".utf8)) }
                    for l in report.limits { FileHandle.standardError.write(Data("note: not checked: \(l)\n".utf8)) }
                    throw ExitCode(1)
                }
            }
        }
    }

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an Ed25519 key pair for signing ledger checkpoints or packages.",
            discussion: """
                Writes DIR/ledger-signing.key (the private key, mode 0600: give it to vigil serve \
                --ledger-signing-key, or to vigil sign --key) and DIR/ledger-signing.pub (mode 0644: \
                give it to auditors for vigil ledger verify --public-key, or copy it into a \
                --trusted-keys folder as NAME.pub). Refuses to overwrite either file.
                """)

        @Option(name: .long, help: "Folder to write the key files into (created if absent).")
        var out: String

        func run() throws {
            try runReportingErrors {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let made = try LedgerSigningKey.generate(into: out)
                print("wrote \(made.privateFile) (private, 0600) and \(made.publicFile) (public, 0644); key id \(made.keyID)")
            }
        }
    }
}

extension Ledger.Verify {
    /// Verifies each of `files` with the same keys, prints one head per ledger and fails when a
    /// ledger fails or two claim the same replica id.
    func verifySet(_ files: [String]) throws {
        var options = AuditLedger.VerifyOptions()
        options.hmacKey = try key.map { try LedgerHMACKey(file: $0) }
        options.publicKey = try publicKey.map { try LedgerPublicKey(file: $0) }
        options.allowUnsignedTail = allowUnsignedTail
        var rows: [[String]] = []
        var failed = false
        var owner: [String: String] = [:]
        func fail(_ line: String) {
            failed = true
            FileHandle.standardError.write(Data("error: \(line)\n".utf8))
        }
        for path in files {
            let report: AuditLedger.Report
            do { report = try AuditLedger.verify(path: path, options: options) } catch let e as VigilError {
                fail(e.message)
                rows.append(["-", "-", "-", "-", "-", path, "unreadable"])
                continue
            }
            if let first = report.found.first {
                fail("\(path): first bad entry: line \(first.line) (\(first.seq.map { "seq \($0)" } ?? "seq unreadable"))")
                for p in report.problems { fail("\(path): \(p)") }
            }
            for l in report.limits { FileHandle.standardError.write(Data("note: \(path): not checked: \(l)\n".utf8)) }
            let replica = report.replicaIDs.last ?? "-"
            var status = report.found.isEmpty ? "ok" : "FAILED"
            if let r = report.replicaIDs.last {
                if let other = owner[r] {
                    status = "DUPLICATE"
                    fail("\(path): replica id '\(r)' is also claimed by \(other); each replica writes its own ledger, so two ledgers of one replica were copied, restored or split")
                }
                owner[r] = owner[r] ?? path
            }
            let prediction = report.entries.reduce(0) { n, e in if case .string("prediction")? = e["kind"] { n + 1 } else { n } }
            rows.append([replica, String(report.entries.count), String(prediction), String(report.headSeq), report.headHash, path, status])
        }
        printTable(header: ["replica", "entries", "predictions", "head_seq", "last_hash", "ledger", "status"], rows: rows)
        let ok = rows.filter { $0.last == "ok" }.count
        print("\(files.count) ledgers: \(ok) ok, \(files.count - ok) failed; \(owner.count) distinct replica ids")
        if failed { throw ExitCode(1) }
    }
}
