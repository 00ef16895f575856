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
///
/// CSV is read strictly (RFC 4180): a quoted field ends at its closing quote followed by a comma
/// or the end of the record (`"80"5` is refused), a quote inside an unquoted field, a bare
/// carriage return outside quotes, a NUL byte and invalid UTF-8 in a text field are refused, and
/// the header may not name a column twice. A field longer than `Limits.maxFieldBytes` or a record
/// longer than `Limits.maxRecordBytes` is refused as soon as it is seen, naming the line where the
/// record starts, so an unclosed quote fails after reading at most the record limit (plus one read
/// of 1 MiB, see `CohortScanner`) instead of buffering the rest of the file. Numbers are read by `RowNumber`.
/// Values quoted in errors are cut to `Untrusted.quotedValueLimit` bytes.
public final class CohortReader {
    /// Size limits on one CSV field and one record (a CSV record, or a JSON Lines line).
    public struct Limits: Sendable, Equatable {
        public var maxFieldBytes: Int
        public var maxRecordBytes: Int
        /// 1 MiB a field, 4 MiB a record: far above any real cohort's row (a few hundred bytes
        /// to a few KiB), small enough that a runaway quote is caught early.
        public init(maxFieldBytes: Int = 1 << 20, maxRecordBytes: Int = 4 << 20) {
            self.maxFieldBytes = maxFieldBytes
            self.maxRecordBytes = maxRecordBytes
        }
    }

    public let url: URL
    public let format: CohortFormat
    public let model: VigilModel
    /// Bytes of the file consumed so far, and its size (for progress).
    public var bytesRead: Int { scanner.bytesRead }
    public var totalBytes: Int { scanner.totalBytes }
    /// Notes about the input's columns (e.g. a group field absent from the header).
    public private(set) var notes: [String] = []
    /// Columns kept as raw text in `RowBatch.extra` (labels, score columns), in this order.
    public let extraColumns: [String]
    public let limits: Limits

    private let scanner: CohortScanner
    private var rowNumber = 0

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
    public init(url: URL, model: VigilModel, format: CohortFormat? = nil, extraColumns: [String] = [], positional: Bool = false, limits: Limits = Limits()) throws {
        self.limits = limits
        self.url = url
        self.model = model
        self.extraColumns = extraColumns
        self.positional = positional
        self.format = format ?? .guess(path: url.path)
        scanner = try CohortScanner(url: url, format: self.format, limits: limits)
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

    // MARK: - Header

    private func readHeader() throws {
        headerNames = try scanner.readHeader(emptyRule: "a CSV cohort needs a header naming the features")
        columnCount = headerNames.count
        featureColumn = Array(repeating: -1, count: columnCount)
        groupColumn = Array(repeating: -1, count: columnCount)
        extraColumn = Array(repeating: -1, count: columnCount)
        var seen: [String: Int] = [:]
        for (c, name) in headerNames.enumerated() {
            seen[name] = c
            if !positional, let j = model.schema.index(of: name) { featureColumn[c] = j }
            if name == model.idField { idColumn = c }
            if let slot = model.fieldGroups.firstIndex(where: { $0.field == name }) { groupColumn[c] = slot }
            if let slot = extraColumns.firstIndex(of: name) { extraColumn[c] = slot }
        }
        for name in extraColumns where seen[name] == nil {
            throw VigilError(.input, "\(url.path): line 1: column '\(Untrusted.quote(name))' is not in the header (columns: \(Self.list(headerNames)))")
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

    /// Skips the next `count` rows without parsing their values (their record framing and size
    /// limits are still checked); returns how many were skipped, fewer at the end of the file.
    /// Later rows keep their row numbers (ids of an input without an id column), so a shard of
    /// `vigil score --shard` numbers its rows as the whole file does.
    package func skip(rows count: Int) throws -> Int {
        var skipped = 0
        while skipped < count {
            let records = try scanner.nextRecords(maxRows: min(count - skipped, 8192))
            if records.isEmpty { break }
            skipped += records.count
            rowNumber += records.count
        }
        return skipped
    }

    // MARK: - Batches

    /// The next batch of at most `maxRows` rows, or nil at the end of the file.
    public func nextBatch(maxRows: Int = 8192) throws -> RowBatch? {
        let records = try scanner.nextRecords(maxRows: maxRows)
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
        scanner.buffer.withUnsafeBufferPointer { buf in
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
    /// `""`). `quoted` fields' ranges exclude the outer quotes. Refused, naming `origin` and the
    /// field's column: text after a closing quote, an unclosed quote, a quote inside an unquoted
    /// field, a bare carriage return outside quotes, a NUL byte, a field over the field limit.
    func splitCSV(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, origin: String) throws -> [(range: Range<Int>, quoted: Bool)] {
        try Self.splitCSV(buf, range, at: "\(url.lastPathComponent): \(origin)", header: headerNames, limits: limits)
    }

    /// `splitCSV` for any CSV reader of cohorts (`at` is `file: line N`, `header` names the
    /// columns in errors once known).
    package static func splitCSV(
        _ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, at place: String, header: [String] = [], limits: Limits = Limits()
    ) throws -> [(range: Range<Int>, quoted: Bool)] {
        var fields: [(Range<Int>, Bool)] = []
        var i = range.lowerBound
        let end = range.upperBound
        let maxField = limits.maxFieldBytes
        func fail(_ rule: String) -> VigilError {
            VigilError(.input, "\(place), \(columnName(fields.count, header)): \(rule)")
        }
        while true {
            if i < end, buf[i] == UInt8(ascii: "\"") {
                let start = i + 1
                var j = start
                var closed = false
                while j < end {
                    let c = buf[j]
                    if c == UInt8(ascii: "\"") {
                        if j + 1 < end, buf[j + 1] == UInt8(ascii: "\"") { j += 2; continue }
                        closed = true
                        break
                    }
                    if c == 0 { throw fail("a NUL byte in the field; cohort files are text") }
                    j += 1
                }
                guard closed else { throw fail("a quoted field is not closed (a '\"' opens it and no closing '\"' follows before the end of the record)") }
                guard j - start <= maxField else { throw fail("the field is longer than the limit of \(maxField) bytes") }
                i = j + 1
                if i < end, buf[i] != UInt8(ascii: ",") {
                    var k = i
                    while k < end, buf[k] != UInt8(ascii: ","), k - i < 40 { k += 1 }
                    let shown = Untrusted.quote(String(decoding: UnsafeBufferPointer(rebasing: buf[start - 1..<k]), as: UTF8.self))
                    throw fail("text after the closing quote of a quoted field (\(shown)); a quoted field ends at its closing quote, inner quotes are doubled")
                }
                fields.append((start..<j, true))
            } else {
                var j = i
                while j < end {
                    let c = buf[j]
                    if c == UInt8(ascii: ",") { break }
                    if c == UInt8(ascii: "\"") { throw fail("a quote inside an unquoted field; quote the whole field and double inner quotes (\"a\"\"b\")") }
                    if c == UInt8(ascii: "\r") { throw fail("a carriage return outside quotes that does not end the line") }
                    if c == 0 { throw fail("a NUL byte in the field; cohort files are text") }
                    j += 1
                }
                guard j - i <= maxField else { throw fail("the field is longer than the limit of \(maxField) bytes") }
                fields.append((i..<j, false))
                i = j
            }
            if i >= end { break }
            i += 1  // the comma
            if i == end { fields.append((end..<end, false)); break }
        }
        return fields
    }

    /// `field k (name)` for errors, from the header once it is read.
    static func columnName(_ k: Int, _ header: [String]) -> String {
        k < header.count ? "field \(k + 1) '\(Untrusted.quote(header[k]))'" : "field \(k + 1)"
    }

    func text(_ buf: UnsafeBufferPointer<UInt8>, _ field: (range: Range<Int>, quoted: Bool), origin: String, column: Int?) throws -> String {
        try Self.text(buf, field, at: "\(url.lastPathComponent): \(origin), \(column.map { Self.columnName($0, headerNames) } ?? "header")")
    }

    /// A text field (id, group value, extra column, header name): valid UTF-8, inner `""` undone;
    /// `at` names the file, line and field for the error.
    package static func text(_ buf: UnsafeBufferPointer<UInt8>, _ field: (range: Range<Int>, quoted: Bool), at place: String) throws -> String {
        guard let s = String(validating: UnsafeBufferPointer(rebasing: buf[field.range]), as: UTF8.self) else {
            throw VigilError(.input, "\(place): invalid UTF-8 in the field; cohort files are UTF-8 text")
        }
        return field.quoted && s.utf8.contains(UInt8(ascii: "\"")) ? s.replacingOccurrences(of: "\"\"", with: "\"") : s
    }

    /// Text of a field for an error message (never fails: invalid UTF-8 shows as U+FFFD).
    static func shown(_ buf: UnsafeBufferPointer<UInt8>, _ field: (range: Range<Int>, quoted: Bool)) -> String {
        Untrusted.quote(String(decoding: UnsafeBufferPointer(rebasing: buf[field.range]), as: UTF8.self))
    }

    private func parseCSV(
        _ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, origin: String,
        features: UnsafeMutablePointer<Double>, groups: UnsafeMutablePointer<String?>, extra: UnsafeMutablePointer<String?>?, id: inout String
    ) throws {
        let fields = try splitCSV(buf, range, origin: origin)
        guard fields.count == columnCount else {
            throw VigilError(.input, "\(url.lastPathComponent): \(origin): \(fields.count) fields where the header has \(columnCount); every row needs one value per column (empty for missing)")
        }
        for (c, field) in fields.enumerated() {
            let j = featureColumn[c]
            if j >= 0 {
                switch RowNumber.read(buf, field.range.lowerBound, field.range.upperBound) {
                case .value(let v): features[j] = v
                case .refused(let rule):
                    throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: Untrusted.quote(headerNames[c]), value: Self.shown(buf, field), rule: rule)
                }
            }
            if groupColumn[c] >= 0 {
                let t = try text(buf, field, origin: origin, column: c)
                groups[groupColumn[c]] = t.isEmpty ? nil : t
            }
            if c == idColumn { id = try text(buf, field, origin: origin, column: c) }
            if extraColumn[c] >= 0, let extra {
                let t = try text(buf, field, origin: origin, column: c)
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
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(data)
        } catch {
            throw VigilError(.input, "\(url.lastPathComponent): \(origin): not valid JSON (\(error)); JSON Lines needs one object per line")
        }
        guard case .object(let object) = parsed else {
            throw VigilError(.input, "\(url.lastPathComponent): \(origin): not a JSON object (JSON Lines needs one object per line)")
        }
        for (j, name) in model.schema.names.enumerated() {
            guard let v = object[name] else {
                throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: name, value: "(absent)", rule: "is not given; every model feature needs a key (null for a missing value)")
            }
            switch RowNumber.read(v) {
            case .value(let d): features[j] = d
            case .refused(let rule):
                throw VigilError.input(at: "\(url.lastPathComponent): \(origin)", field: name, value: Self.shown(v), rule: rule)
            }
        }
        for (slot, g) in model.fieldGroups.enumerated() { groups[slot] = Self.groupText(object[g.field]) }
        for (slot, name) in extraColumns.enumerated() { extra?[slot] = Self.extraText(object[name]) }
        switch object[model.idField] {
        case .string(let s)?: id = s
        case .number(let d)?: id = MissingValues.canonicalText(d)
        default: break
        }
    }

    /// A JSON Lines value as a group label's raw text: strings as they are, numbers in canonical
    /// form (`1` and `1.0` alike), booleans as `true`/`false`; empty, null or absent is missing.
    package static func groupText(_ v: JSONValue?) -> String? {
        switch v {
        case .string(let s)?: return s.isEmpty ? nil : s
        case .number(let d)?: return MissingValues.canonicalText(d)
        case .bool(let b)?: return b ? "true" : "false"
        default: return nil
        }
    }

    /// A JSON Lines value as an extra column's text (labels, scores): numbers in full precision,
    /// booleans as `1`/`0`; empty, null or absent is missing.
    package static func extraText(_ v: JSONValue?) -> String? {
        switch v {
        case .string(let s)?: return s.isEmpty ? nil : s
        case .number(let d)?: return "\(d)"
        case .bool(let b)?: return b ? "1" : "0"
        default: return nil
        }
    }

    /// A JSON value for an error message, cut to a readable length.
    static func shown(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return Untrusted.quote(s)
        case .array: return "(a JSON array)"
        case .object: return "(a JSON object)"
        default: return Untrusted.quote("\(v)")
        }
    }
}
