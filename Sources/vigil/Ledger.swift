import ArgumentParser
import Foundation
import VigilEngine
import VigilServer

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
                """)

        @Option(name: .long, help: "The ledger file.")
        var ledger: String

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
            abstract: "Write an Ed25519 key pair for signing ledger checkpoints.",
            discussion: """
                Writes DIR/ledger-signing.key (the private key, mode 0600: give it to vigil serve \
                --ledger-signing-key) and DIR/ledger-signing.pub (mode 0644: give it to auditors for \
                vigil ledger verify --public-key). Refuses to overwrite either file.
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
