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

/// Writes a report (HTML) atomically; a failure is an I/O error naming the path.
func writeReport(_ text: String, to path: String) throws {
    do {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw VigilError(.io, "\(path): cannot write the report (\(error.localizedDescription))")
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

/// Progress on a terminal: rows, percent of the input read, rows per second and, when the
/// input's size is known, the time left at the rate so far; at most 4 updates a second. Silent
/// when standard error is not a terminal.
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
        log.overwrite(Self.line(rows: rows, bytes: bytes, total: total, elapsed: now.timeIntervalSince(start)))
    }

    /// `scoring: 120000 rows (40%), 81234 rows/s, ETA 0:03`: the percent and ETA from the bytes
    /// read of `total` (omitted when the size is unknown, 0), the ETA at the byte rate so far.
    static func line(rows: Int, bytes: Int, total: Int, elapsed: Double) -> String {
        let elapsed = max(elapsed, 1e-9)
        var s = "scoring: \(rows) rows"
        if total > 0 {
            let done = min(max(bytes, 0), total)
            s += " (\(Int(Double(done) * 100 / Double(total)))%)"
            s += ", \(Int(Double(rows) / elapsed)) rows/s"
            if done > 0 { s += ", ETA \(duration(elapsed * Double(total - done) / Double(done)))" }
        } else {
            s += ", \(Int(Double(rows) / elapsed)) rows/s"
        }
        return s
    }

    /// `m:ss`, or `h:mm:ss` from an hour.
    static func duration(_ seconds: Double) -> String {
        let t = Int(min(max(seconds, 0), 359_999).rounded())
        let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, sec) : String(format: "%d:%02d", m, sec)
    }

    func finish(rows: Int) {
        let elapsed = max(Date().timeIntervalSince(start), 1e-9)
        if log.isTerminal { log.overwrite("") }
        log.line(String(format: "%d rows in %.2f s (%.0f rows/s)", rows, elapsed, Double(rows) / elapsed))
    }
}

/// A table: a header and rows, columns padded to their widest cell, two spaces apart; each line
/// through `write` (standard output, or `StandardError.line` for summaries that must not mix
/// with a command's output).
func printTable(header: [String], rows: [[String]], write: (String) -> Void = { print($0) }) {
    let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
    }
    write(line(header))
    for r in rows { write(line(r)) }
}

/// A table on standard error.
func printTable(header: [String], rows: [[String]], to log: StandardError) {
    printTable(header: header, rows: rows) { log.line($0) }
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
