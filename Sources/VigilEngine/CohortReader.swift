public import Foundation
internal import VigilKernels
#if canImport(Glibc)
import Glibc
#endif

/// Input file formats for cohorts.
public enum CohortFormat: String, Sendable, CaseIterable {
    case csv
    case jsonl

    /// `.jsonl`, `.ndjson` and `.json` are JSON Lines; anything else is CSV.
    public static func guess(path: String) -> CohortFormat {
        let lower = path.lowercased()
        return lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || lower.hasSuffix(".json") ? .jsonl : .csv
    }
}

/// Streams a cohort file (CSV with a header naming the features, or JSON Lines) in batches, so
/// memory stays flat whatever the row count. Parsing of a batch is spread over all cores.
///
/// Rules: empty, `NaN`, `NA` and `?` are missing values; the id column (`id_field` or `id`)
/// passes through (a row number when absent); extra columns are ignored; a model feature
/// absent from the header is an error naming it; text in a numeric field is an error naming
/// the row, field and value; a row with too few or too many fields is an error.
public final class CohortReader {
    public let url: URL
    public let format: CohortFormat
    public let model: VigilModel
    /// Bytes of the file consumed so far, and its size (for progress).
    public private(set) var bytesRead = 0
    public let totalBytes: Int
    /// Notes about the input's columns (e.g. a group field absent from the header).
    public private(set) var notes: [String] = []
    /// Columns kept as raw text in `RowBatch.extra` (labels, score columns), in this order.
    public let extraColumns: [String]

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var eof = false
    private var lineNumber = 0
    private var rowNumber = 0
    private static let readSize = 1 << 20

    // CSV column mapping, from the header.
    private var columnCount = 0
    private var featureColumn: [Int] = []  // per column: feature index or -1
    private var groupColumn: [Int] = []  // per column: field-group slot or -1
    private var idColumn = -1
    private var extraColumn: [Int] = []  // per column: extra slot or -1
    private var headerNames: [String] = []

    /// The CSV header's column names, in order (empty for JSON Lines).
    public var columns: [String] { headerNames }
    /// Whether CSV columns map to the model's features by position (`positional`).
    public let positional: Bool

    /// `extraColumns`: columns to keep as text (CSV: each must be in the header). `positional`
    /// (CSV only): the first `featureCount` columns other than the id column are the model's
    /// features in order, whatever the header calls them.
    public init(url: URL, model: VigilModel, format: CohortFormat? = nil, extraColumns: [String] = [], positional: Bool = false) throws {
        self.url = url
        self.model = model
        self.extraColumns = extraColumns
        self.positional = positional
        self.format = format ?? .guess(path: url.path)
        guard let h = try? FileHandle(forReadingFrom: url) else {
            throw VigilError(.io, "\(url.path): cannot open the input file")
        }
        handle = h
        totalBytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        if positional, self.format != .csv {
            throw VigilError(.usage, "\(url.path): --positional needs a CSV input (JSON Lines rows name their fields)")
        }
        if self.format == .csv { try readHeader() }
        let fieldGroups = model.fieldGroups
        if self.format == .csv {
            for g in fieldGroups where !headerNames.contains(g.field) {
                notes.append("group field '\(g.field)' (group '\(g.name)') is not in the input: every row gets '\(g.missingLabel)'")
            }
            if idColumn < 0 {
                notes.append("no '\(model.idField)' column in the input: records are numbered by row (1, 2, ...) under '\(model.idField)'")
            }
        }
    }

    deinit { try? handle.close() }

    // MARK: - Buffering

    /// Ensures the buffer holds at least one complete record from `bufferStart`, reading more
    /// if needed. Returns the end of the next record (index of its `\n` or buffer end at EOF),
    /// plus how many newlines it spans.
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
                    if !inQuotes { return (i, newlines) }
                }
                i += 1
            }
            if eof { return start < buffer.count ? (buffer.count, newlines) : nil }
            let chunk = try handle.read(upToCount: Self.readSize) ?? Data()
            if chunk.isEmpty { eof = true } else {
                bytesRead += chunk.count
                buffer.append(contentsOf: chunk)
            }
        }
    }

    /// The next records' byte ranges (without line ends), up to `maxRows`.
    private func nextRecords(maxRows: Int) throws -> [(range: Range<Int>, line: Int)] {
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
            if hi > bufferStart || format == .csv {
                let isBlank = hi == bufferStart
                if !isBlank { out.append((bufferStart..<hi, line)) }
            }
            bufferStart = min(end + 1, buffer.count)
        }
        return out
    }

    private func readHeader() throws {
        guard let first = try nextRecords(maxRows: 1).first else {
            throw VigilError(.input, "\(url.path): the file is empty; a CSV cohort needs a header naming the features")
        }
        headerNames = try buffer.withUnsafeBufferPointer { buf in
            try Self.splitCSV(buf, first.range).map { Self.text(buf, $0).trimmingCharacters(in: .whitespaces) }
        }
        if headerNames.first?.hasPrefix("\u{FEFF}") == true { headerNames[0].removeFirst() }
        columnCount = headerNames.count
        featureColumn = Array(repeating: -1, count: columnCount)
        groupColumn = Array(repeating: -1, count: columnCount)
        extraColumn = Array(repeating: -1, count: columnCount)
        var seen: [String: Int] = [:]
        for (c, name) in headerNames.enumerated() {
            if let prev = seen[name] {
                throw VigilError(.input, "\(url.path): line 1: column '\(name)' appears twice (columns \(prev + 1) and \(c + 1))")
            }
            seen[name] = c
            if !positional, let j = model.schema.index(of: name) { featureColumn[c] = j }
            if name == model.idField { idColumn = c }
            if let slot = model.fieldGroups.firstIndex(where: { $0.field == name }) { groupColumn[c] = slot }
            if let slot = extraColumns.firstIndex(of: name) { extraColumn[c] = slot }
        }
        for name in extraColumns where seen[name] == nil {
            throw VigilError(.input, "\(url.path): line 1: column '\(name)' is not in the header (columns: \(Self.list(headerNames)))")
        }
        if positional {
            let columns = headerNames.indices.filter { $0 != idColumn }
            guard columns.count >= model.schema.count else {
                throw VigilError(.input, "\(url.path): line 1: --positional needs \(model.schema.count) feature columns besides '\(model.idField)'; the header has \(columns.count) (columns: \(Self.list(headerNames)))")
            }
            for (j, c) in columns.prefix(model.schema.count).enumerated() { featureColumn[c] = j }
            return
        }
        let missing = model.schema.names.filter { seen[$0] == nil }
        if !missing.isEmpty {
            let list = missing.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let hint = model.manifest == nil
                ? "; a bare model file names its features itself (here \(Self.list(model.schema.names))): give the columns' names in model order with --feature-names a,b,c, or --positional to take the first \(model.schema.count) columns besides '\(model.idField)' in order"
                : ""
            throw VigilError(.input, "\(url.path): line 1: model feature \(list)\(missing.count > 5 ? " and \(missing.count - 5) more" : "") \(missing.count == 1 ? "is" : "are") not in the header; the header must name every feature of the model\(hint)")
        }
    }

    /// Names for a message: the first 8 quoted, then how many more.
    static func list(_ names: [String]) -> String {
        names.prefix(8).map { "'\(String($0.prefix(40)))'" }.joined(separator: ", ") + (names.count > 8 ? " and \(names.count - 8) more" : "")
    }

    // MARK: - Batches

    /// The next batch of at most `maxRows` rows, or nil at the end of the file.
    public func nextBatch(maxRows: Int = 8192) throws -> RowBatch? {
        let records = try nextRecords(maxRows: maxRows)
        guard !records.isEmpty else { return nil }
        let n = records.count
        let f = model.schema.count
        let g = model.fieldGroups.count
        var features = [Double](repeating: .nan, count: n * f)
        var groupRaw = [String?](repeating: nil, count: n * g)
        var ids = [String](repeating: "", count: n)
        let e = extraColumns.count
        var extra = [String?](repeating: nil, count: n * e)
        let firstRow = rowNumber
        rowNumber += n
        var firstError: (Int, VigilError)?
        let lock = NSLock()
        let format = self.format
        buffer.withUnsafeBufferPointer { buf in
            features.withUnsafeMutableBufferPointer { fp in
                groupRaw.withUnsafeMutableBufferPointer { gp in
                    ids.withUnsafeMutableBufferPointer { ip in
                      extra.withUnsafeMutableBufferPointer { ep in
                        let ctx = UncheckedSendable((buf, fp, gp, ip, ep))
                        Parallel.forEachChunk(count: n, minChunk: 512) { range in
                            let (buf, fp, gp, ip, ep) = ctx.value
                            for r in range {
                                do {
                                    let rec = records[r]
                                    let origin = "line \(rec.line)"
                                    if format == .csv {
                                        try self.parseCSV(buf, rec.range, origin: origin, features: fp.baseAddress! + r * f, groups: gp.baseAddress! + r * g, extra: ep.baseAddress.map { $0 + r * e }, id: &ip[r])
                                    } else {
                                        try self.parseJSON(buf, rec.range, origin: origin, features: fp.baseAddress! + r * f, groups: gp.baseAddress! + r * g, extra: ep.baseAddress.map { $0 + r * e }, id: &ip[r])
                                    }
                                    if ip[r].isEmpty { ip[r] = String(firstRow + r + 1) }
                                } catch let e as VigilError {
                                    lock.lock()
                                    if firstError == nil || firstError!.0 > r { firstError = (r, e) }
                                    lock.unlock()
                                    return
                                } catch {
                                    return
                                }
                            }
                        }
                      }
                    }
                }
            }
        }
        if let (_, err) = firstError { throw err }
        let origins = records.map { "line \($0.line)" }
        return RowBatch(count: n, ids: ids, features: features, groupRaw: groupRaw, origins: origins, extra: extra)
    }

    // MARK: - CSV

    /// Field ranges of one CSV record (RFC 4180: a quoted field may hold commas, newlines and
    /// `""`). `quoted` fields' ranges exclude the outer quotes.
    static func splitCSV(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws -> [(range: Range<Int>, quoted: Bool)] {
        var fields: [(Range<Int>, Bool)] = []
        var i = range.lowerBound
        let end = range.upperBound
        while true {
            if i < end, buf[i] == UInt8(ascii: "\"") {
                let start = i + 1
                var j = start
                while j < end {
                    if buf[j] == UInt8(ascii: "\"") {
                        if j + 1 < end, buf[j + 1] == UInt8(ascii: "\"") { j += 2; continue }
                        break
                    }
                    j += 1
                }
                fields.append((start..<min(j, end), true))
                i = j + 1
                // Skip to the delimiter after the closing quote.
                while i < end, buf[i] != UInt8(ascii: ",") { i += 1 }
            } else {
                var j = i
                while j < end, buf[j] != UInt8(ascii: ",") { j += 1 }
                fields.append((i..<j, false))
                i = j
            }
            if i >= end { break }
            i += 1  // the comma
            if i == end { fields.append((end..<end, false)); break }
        }
        return fields
    }

    static func text(_ buf: UnsafeBufferPointer<UInt8>, _ field: (range: Range<Int>, quoted: Bool)) -> String {
        let s = String(decoding: UnsafeBufferPointer(rebasing: buf[field.range]), as: UTF8.self)
        return field.quoted ? s.replacingOccurrences(of: "\"\"", with: "\"") : s
    }

    /// Parses a numeric field: missing tokens → NaN; otherwise the whole field must be a number.
    static func number(_ buf: UnsafeBufferPointer<UInt8>, _ field: (range: Range<Int>, quoted: Bool)) -> Double? {
        var lo = field.range.lowerBound, hi = field.range.upperBound
        while lo < hi, buf[lo] == 0x20 || buf[lo] == 0x09 { lo += 1 }
        while hi > lo, buf[hi - 1] == 0x20 || buf[hi - 1] == 0x09 { hi -= 1 }
        let len = hi - lo
        if len == 0 { return .nan }
        if len <= 3 {
            let c0 = buf[lo] | 0x20
            if len == 1, buf[lo] == UInt8(ascii: "?") { return .nan }
            if len == 2, buf[lo] == UInt8(ascii: "N"), buf[lo + 1] == UInt8(ascii: "A") { return .nan }
            if len == 3, c0 == UInt8(ascii: "n"), buf[lo + 1] | 0x20 == UInt8(ascii: "a"), buf[lo + 2] | 0x20 == UInt8(ascii: "n") { return .nan }
        }
        if len <= 9, let inf = infinity(buf, lo, hi) { return inf }
        // Only characters a decimal number can hold; this also keeps strtod from reading
        // hexadecimal spellings and from running past the field.
        var hasDigit = false
        for i in lo..<hi {
            let c = buf[i]
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): hasDigit = true
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default: return nil
            }
        }
        guard hasDigit, len < 64 else { return nil }
        var tmp: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &tmp) { raw -> Double? in
            let p = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            for i in 0..<len { p[i] = CChar(bitPattern: buf[lo + i]) }
            p[len] = 0
            var endp: UnsafeMutablePointer<CChar>?
            let v = strtod(p, &endp)
            return endp == p + len ? v : nil
        }
    }

    /// `inf`, `infinity` (any case, optionally signed), as numpy and Python write them.
    private static func infinity(_ buf: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> Double? {
        var i = lo
        var sign = 1.0
        if buf[i] == UInt8(ascii: "-") { sign = -1; i += 1 } else if buf[i] == UInt8(ascii: "+") { i += 1 }
        let word = String(decoding: UnsafeBufferPointer(rebasing: buf[i..<hi]), as: UTF8.self).lowercased()
        return word == "inf" || word == "infinity" ? sign * .infinity : nil
    }

    private func parseCSV(
        _ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, origin: String,
        features: UnsafeMutablePointer<Double>, groups: UnsafeMutablePointer<String?>, extra: UnsafeMutablePointer<String?>?, id: inout String
    ) throws {
        let fields = try Self.splitCSV(buf, range)
        guard fields.count == columnCount else {
            throw VigilError(.input, "\(url.lastPathComponent): \(origin): \(fields.count) fields where the header has \(columnCount); every row needs one value per column (empty for missing)")
        }
        for (c, field) in fields.enumerated() {
            let j = featureColumn[c]
            if j >= 0 {
                guard let v = Self.number(buf, field) else {
                    throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: headerNames[c], value: Self.text(buf, field),
                                           rule: "is not a number (missing values are written empty, NaN, NA or ?)")
                }
                features[j] = v
            }
            if groupColumn[c] >= 0 {
                let t = Self.text(buf, field)
                groups[groupColumn[c]] = t.isEmpty ? nil : t
            }
            if c == idColumn { id = Self.text(buf, field) }
            if extraColumn[c] >= 0, let extra {
                let t = Self.text(buf, field)
                extra[extraColumn[c]] = t.isEmpty ? nil : t
            }
        }
    }

    // MARK: - JSON Lines

    private func parseJSON(
        _ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, origin: String,
        features: UnsafeMutablePointer<Double>, groups: UnsafeMutablePointer<String?>, extra: UnsafeMutablePointer<String?>?, id: inout String
    ) throws {
        let data = Data(UnsafeBufferPointer(rebasing: buf[range]))
        guard case .object(let object)? = try? JSONValue.parse(data) else {
            throw VigilError(.input, "\(url.lastPathComponent): \(origin): not a JSON object (JSON Lines needs one object per line)")
        }
        for (j, name) in model.schema.names.enumerated() {
            guard let v = object[name] else {
                throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: name, value: "(absent)", rule: "is not given; every model feature needs a key (null for a missing value)")
            }
            switch v {
            case .null:
                features[j] = .nan
            case .number(let d):
                features[j] = d
            case .bool(let b):
                features[j] = b ? 1 : 0
            case .string(let s):
                guard let d = s.utf8CString.withUnsafeBufferPointer({ p in
                    p.withMemoryRebound(to: UInt8.self) { Self.number($0, (0..<(p.count - 1), false)) }
                }) else {
                    throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: name, value: s, rule: "is not a number (missing values are null, \"\", NaN, NA or ?)")
                }
                features[j] = d
            case .array, .object:
                throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: name, value: "\(v)", rule: "is not a number")
            }
        }
        for (slot, g) in model.fieldGroups.enumerated() {
            switch object[g.field] {
            case .string(let s)?: groups[slot] = s.isEmpty ? nil : s
            case .number(let d)?: groups[slot] = MissingValues.canonicalText(d)
            case .bool(let b)?: groups[slot] = b ? "true" : "false"
            default: groups[slot] = nil
            }
        }
        for (slot, name) in extraColumns.enumerated() {
            switch object[name] {
            case .string(let s)?: extra?[slot] = s.isEmpty ? nil : s
            case .number(let d)?: extra?[slot] = "\(d)"
            case .bool(let b)?: extra?[slot] = b ? "1" : "0"
            default: extra?[slot] = nil
            }
        }
        switch object[model.idField] {
        case .string(let s)?: id = s
        case .number(let d)?: id = MissingValues.canonicalText(d)
        default: break
        }
    }
}
