package import Foundation

/// The record scanner every cohort reader shares: reads a CSV or JSON Lines file in blocks and
/// hands out the byte ranges of whole records (a CSV record may span lines inside quotes), with
/// their first line numbers, never buffering more than the record limit plus one read past a
/// record's start. `CohortReader` (model features) and `LabelledCohort` (named columns) both
/// read through it, so both keep the same limits and refusals.
package final class CohortScanner {
    package let url: URL
    package let format: CohortFormat
    package let limits: CohortReader.Limits
    /// Bytes of the file consumed so far, and its size (for progress).
    package private(set) var bytesRead = 0
    package let totalBytes: Int
    /// The bytes read and not yet dropped; ranges from `nextRecords` index into it.
    package private(set) var buffer: [UInt8] = []

    private let handle: FileHandle
    private var bufferStart = 0
    private var eof = false
    private var lineNumber = 0
    private static let readSize = 1 << 20

    package init(url: URL, format: CohortFormat, limits: CohortReader.Limits) throws {
        guard limits.maxFieldBytes > 0, limits.maxRecordBytes > 0 else {
            throw VigilError(.usage, "cohort limits: field and record limits must be positive (got \(limits.maxFieldBytes) and \(limits.maxRecordBytes) bytes)")
        }
        guard let h = try? FileHandle(forReadingFrom: url) else {
            throw VigilError(.io, "\(url.path): cannot open the input file")
        }
        self.url = url
        self.format = format
        self.limits = limits
        handle = h
        totalBytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    }

    deinit { try? handle.close() }

    /// Ensures the buffer holds at least one complete record from `start`, reading more if
    /// needed. Returns the end of the next record (index of its `\n` or buffer end at EOF), plus
    /// how many newlines it spans.
    private func nextRecordEnd(from start: Int) throws -> (end: Int, newlines: Int)? {
        var i = start
        var inQuotes = false
        var newlines = 0
        while true {
            while i < buffer.count {
                let b = buffer[i]
                if b == UInt8(ascii: "\"") && format == .csv {
                    inQuotes.toggle()
                } else if b == UInt8(ascii: "\n") {
                    newlines += 1
                    if !inQuotes {
                        guard i - start <= limits.maxRecordBytes else { throw recordTooLong(inQuotes: false) }
                        return (i, newlines)
                    }
                }
                i += 1
            }
            if eof {
                guard buffer.count - start <= limits.maxRecordBytes else { throw recordTooLong(inQuotes: inQuotes) }
                return start < buffer.count ? (buffer.count, newlines) : nil
            }
            // Checked once a read: at most the limit plus one read is buffered past the record's start.
            guard buffer.count - start <= limits.maxRecordBytes else { throw recordTooLong(inQuotes: inQuotes) }
            let chunk = try handle.read(upToCount: Self.readSize) ?? Data()
            if chunk.isEmpty { eof = true } else {
                bytesRead += chunk.count
                buffer.append(contentsOf: chunk)
            }
        }
    }

    private func recordTooLong(inQuotes: Bool) -> VigilError {
        VigilError(.input, "\(url.lastPathComponent): line \(lineNumber + 1): the record starting here is longer than the limit of \(limits.maxRecordBytes) bytes (\(inQuotes ? "a quote opened in it is not closed" : "one line")); raise --max-record-bytes if such records are real")
    }

    /// The next records' byte ranges in `buffer` (without line ends, blank lines skipped), up to
    /// `maxRows`. The ranges stay valid until the next call.
    package func nextRecords(maxRows: Int) throws -> [(range: Range<Int>, line: Int)] {
        var out: [(Range<Int>, Int)] = []
        // Drop consumed bytes only here: the ranges returned stay valid until the next call.
        if bufferStart > 0 {
            buffer.removeFirst(bufferStart)
            bufferStart = 0
        }
        while out.count < maxRows {
            guard let (end, newlines) = try nextRecordEnd(from: bufferStart) else { break }
            var hi = end
            if hi > bufferStart, buffer[hi - 1] == UInt8(ascii: "\r") { hi -= 1 }
            let line = lineNumber + 1
            lineNumber += max(newlines, 1)
            if hi > bufferStart { out.append((bufferStart..<hi, line)) }
            bufferStart = min(end + 1, buffer.count)
        }
        return out
    }

    /// A CSV file's header: its column names, trimmed, a leading byte-order mark dropped. Refused:
    /// an empty file (`emptyRule` says what the header must name) and a name given twice.
    package func readHeader(emptyRule: String) throws -> [String] {
        guard let first = try nextRecords(maxRows: 1).first else {
            throw VigilError(.input, "\(url.path): the file is empty; \(emptyRule)")
        }
        let place = "\(url.lastPathComponent): line 1"
        var names = try buffer.withUnsafeBufferPointer { buf in
            try CohortReader.splitCSV(buf, first.range, at: place, limits: limits).map {
                try CohortReader.text(buf, $0, at: "\(place), header").trimmingCharacters(in: .whitespaces)
            }
        }
        if names.first?.hasPrefix("\u{FEFF}") == true { names[0].removeFirst() }
        var seen: [String: Int] = [:]
        for (c, name) in names.enumerated() {
            if let prev = seen[name] {
                throw VigilError(.input, "\(url.path): line 1: column '\(Untrusted.quote(name))' appears twice (columns \(prev + 1) and \(c + 1)); column names must be unique")
            }
            seen[name] = c
        }
        return names
    }
}
