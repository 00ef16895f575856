import ArgumentParser
import Foundation
import VigilEngine
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command body; a `VigilError` becomes `error: <message>` on standard error and exit
/// code 1 (2 for usage errors), never a trap.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as VigilError {
        FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
        throw ExitCode(e.kind == .usage ? 2 : 1)
    }
}

/// Messages on standard error.
struct StandardError {
    let quiet: Bool
    var isTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    func line(_ s: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }

    func overwrite(_ s: String) {
        guard !quiet, isTerminal else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
    }
}

/// Progress on a terminal: rows, percent of the input read, rows per second; at most 4 updates
/// a second. Silent when standard error is not a terminal.
final class Progress {
    let total: Int
    let log: StandardError
    let start = Date()
    var last = Date.distantPast

    init(total: Int, log: StandardError) {
        self.total = total
        self.log = log
    }

    func update(rows: Int, bytes: Int) {
        let now = Date()
        guard log.isTerminal, now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        let elapsed = max(now.timeIntervalSince(start), 1e-9)
        let percent = total > 0 ? " (\(min(100, bytes * 100 / total))%)" : ""
        log.overwrite("scoring: \(rows) rows\(percent), \(Int(Double(rows) / elapsed)) rows/s")
    }

    func finish(rows: Int) {
        let elapsed = max(Date().timeIntervalSince(start), 1e-9)
        if log.isTerminal { log.overwrite("") }
        log.line(String(format: "%d rows in %.2f s (%.0f rows/s)", rows, elapsed, Double(rows) / elapsed))
    }
}

/// Counts of a scoring run and its closing summary line, shared by tabular and image scoring.
struct ScoreTally {
    var rows = 0
    var warned = 0
    var positives = 0

    mutating func add(_ records: [PredictionRecord]) {
        rows += records.count
        warned += records.reduce(0) { $0 + ($1.warnings.isEmpty ? 0 : 1) }
        positives += records.reduce(0) { $0 + ($1.decision == true ? 1 : 0) }
    }

    /// `scored N <unit> with <model> <version> (<format>, sha256 …); P positive decisions; W <unit> with warnings`.
    func summary(_ model: VigilModel, unit: String, format: String) -> String {
        var line = "scored \(rows) \(unit) with \(model.name) \(model.version) (\(format), sha256 \(model.sha256.prefix(12)))"
        if model.makesDecisions { line += "; \(positives) positive decisions" }
        return line + "; \(warned) \(unit) with warnings"
    }
}
