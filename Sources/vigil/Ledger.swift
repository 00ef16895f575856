import ArgumentParser
import Foundation
import VigilEngine
import VigilServer

struct Ledger: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the audit ledger that vigil serve writes.",
        subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the ledger's hash chain: any edited, deleted, inserted or reordered entry fails.",
            discussion: """
                Prints the head (last sequence number and hash). Entries removed from the end \
                leave a valid shorter chain: compare the head with one kept elsewhere \
                (--expect-head, or GET /v1/ledger/head from the server).
                """)

        @Option(name: .long, help: "The ledger file.")
        var ledger: String

        @Option(name: .long, help: "SEQ:HASH the head must be at least at (the entry SEQ must have HASH).")
        var expectHead: String?

        func run() throws {
            try runReportingErrors {
                let report = try AuditLedger.verify(path: ledger)
                var problems = report.problems
                if let expectHead {
                    let parts = expectHead.split(separator: ":")
                    guard parts.count == 2, let seq = Int(parts[0]) else {
                        throw VigilError(.usage, "--expect-head: '\(expectHead)' must be SEQ:HASH")
                    }
                    if seq > report.headSeq {
                        problems.append("the ledger ends at seq \(report.headSeq) but --expect-head names seq \(seq); entries were removed from the end")
                    }
                    if seq >= 1, seq <= report.hashes.count, report.hashes[seq - 1] != parts[1] {
                        let actual = report.hashes[seq - 1]
                        problems.append("entry seq \(seq) has hash \(actual) but --expect-head says \(parts[1])")
                    }
                }
                if problems.isEmpty {
                    print("ok: \(report.entries.count) entries, head seq \(report.headSeq) hash \(report.headHash)")
                } else {
                    for p in problems { FileHandle.standardError.write(Data("error: \(ledger): \(p)\n".utf8)) }
                    throw ExitCode(1)
                }
            }
        }
    }
}
