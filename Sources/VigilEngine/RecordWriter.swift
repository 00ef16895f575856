public import Foundation

/// Writes prediction records as CSV or JSON Lines, streaming (one batch at a time).
///
/// CSV columns: the id column (named as the input's), the outputs (`risk`, `risk_<k>` or
/// `prediction`), `group` (`name=label;...`) when the model has group fields, `threshold`,
/// `threshold_source` and `decision` (1/0) for binary models, `threshold_randomized` (1/0) when the
/// policy is randomized, and `warnings` (joined by ` | `).
/// With `explain`, after those: `.top(K)` adds `top_contributions` (`name=+0.123;name2=-0.05`,
/// largest |contribution| first, 6 significant digits), one `top_contributions_<k>` per class
/// for a multiclass model; `.all` adds `contrib_<feature>` per feature and `contrib_bias`
/// (multiclass: `contrib_<k>_<feature>`, `contrib_<k>_bias`), at full precision.
/// JSON Lines: one full prediction record per line (`RecordJSON`, the shape the server answers
/// too): id, model, outputs, group, threshold and decision, warnings; with `explain`, an
/// `attribution` object: `{"method", "space", "base", "top": [{"feature", "value", "contribution"}]}`
/// (`.all`: `"contributions"`, every feature in feature order, instead of `"top"`); for a
/// multiclass model `{"method", "space", "classes": [{"class": k, "base", "top" | "contributions"}]}`.
/// `value` is the input value as given, `null` when missing.
public final class RecordWriter {
    public let format: CohortFormat
    public let explain: ExplainMode?
    private let model: VigilModel
    /// What attributions are reported under (`VigilModel.attributionNames`), computed once.
    private let names: [String]
    /// The JSON Lines record, shared with the server's responses.
    private let json: RecordJSON
    private let handle: FileHandle
    private let closeAtEnd: Bool
    private var wroteHeader = false

    public init(model: VigilModel, output: URL?, format: CohortFormat, explain: ExplainMode? = nil) throws {
        self.model = model
        self.format = format
        self.explain = explain
        self.names = explain == nil ? [] : model.attributionNames
        json = RecordJSON(model: model, explain: explain, names: names)
        if explain == .all, format == .csv, let bias = model.schema.names.first(where: { $0 == "bias" }) {
            throw VigilError(.usage, "--explain all: feature '\(bias)' would make a second contrib_bias column in the CSV output; write JSON Lines (--output-format jsonl) instead")
        }
        if let output {
            guard FileManager.default.createFile(atPath: output.path, contents: nil),
                  let h = try? FileHandle(forWritingTo: output) else {
                throw VigilError(.io, "\(output.path): cannot create the output file")
            }
            handle = h
            closeAtEnd = true
        } else {
            handle = FileHandle.standardOutput
            closeAtEnd = false
        }
    }

    deinit { if closeAtEnd { try? handle.close() } }

    /// Writes no CSV header (`vigil score --shard`: only shard 0 carries it).
    package func omitHeader() { wroteHeader = true }

    public func write(_ records: [PredictionRecord]) throws {
        var out = ""
        out.reserveCapacity(records.count * 96)
        if format == .csv, !wroteHeader {
            var cols = [model.idField] + model.outputNames
            if !model.groups.isEmpty { cols.append("group") }
            if model.makesDecisions { cols += ["threshold", "threshold_source", "decision"] }
            if model.makesDecisions, model.policy.randomizationSeed != nil { cols.append("threshold_randomized") }
            cols.append("warnings")
            cols += explanationColumns
            out += cols.map(Self.csvField).joined(separator: ",") + "\n"
            wroteHeader = true
        }
        for r in records {
            switch format {
            case .csv: appendCSV(r, to: &out)
            case .jsonl:
                json.append(r, to: &out)
                out += "\n"
            }
        }
        try handle.write(contentsOf: Data(out.utf8))
    }

    private func appendCSV(_ r: PredictionRecord, to out: inout String) {
        out += Self.csvField(r.id)
        for v in r.outputs { out += ","; out += Self.number(v) }
        if !model.groups.isEmpty {
            out += ","
            out += Self.csvField(zip(model.groups, r.groupLabels).map { "\($0.name)=\($1)" }.joined(separator: ";"))
        }
        if model.makesDecisions {
            out += ",\(r.threshold.map(Self.number) ?? ""),\(r.thresholdSource?.label ?? ""),\(r.decision.map { $0 ? "1" : "0" } ?? "")"
            if model.policy.randomizationSeed != nil { out += r.randomized ? ",1" : ",0" }
        }
        out += ","
        out += Self.csvField(r.warnings.joined(separator: " | "))
        if let explain { appendCSVAttribution(r.attribution, explain, to: &out) }
        out += "\n"
    }

    private var explanationColumns: [String] {
        let k = model.ir.outputCount
        var columns: [String]
        switch explain {
        case nil:
            return []
        case .top:
            columns = k == 1 ? ["top_contributions"] : (0..<k).map { "top_contributions_\($0)" }
        case .all:
            columns = k == 1
                ? names.map { "contrib_\($0)" } + ["contrib_bias"]
                : (0..<k).flatMap { c in names.map { "contrib_\(c)_\($0)" } + ["contrib_\(c)_bias"] }
        }
        if model.imageInput != nil { columns += ["attribution_steps", "completeness_error"] }
        return columns
    }

    private func appendCSVAttribution(_ a: Attribution?, _ explain: ExplainMode, to out: inout String) {
        let k = model.ir.outputCount
        let f = names.count
        let integrationColumns = model.imageInput != nil ? 2 : 0
        guard let a else {
            // Not explained (cannot happen through `vigil score`): empty cells keep the columns aligned.
            out += String(repeating: ",", count: (explain == .all ? k * (f + 1) : k) + integrationColumns)
            return
        }
        defer {
            if integrationColumns > 0 {
                out += ",\(a.integration.map { "\($0.steps)" } ?? ""),\(a.integration.map { Self.number($0.completenessError) } ?? "")"
            }
        }
        for c in 0..<k {
            switch explain {
            case .top(let n):
                out += ","
                out += Self.csvField(a.top(n, output: c).map { "\(names[$0])=\(Self.signed(a.contribution(output: c, feature: $0)))" }.joined(separator: ";"))
            case .all:
                for j in 0..<f { out += ","; out += Self.number(a.contribution(output: c, feature: j)) }
                out += ","; out += Self.number(a.base[c])
            }
        }
    }

    /// A contribution with its sign and 6 significant digits (`+0.123457`, `-5e-07`).
    static func signed(_ v: Double) -> String {
        v.isFinite ? String(format: "%+.6g", v) : number(v)
    }

    /// Shortest text that reads back to the same `Double`.
    static func number(_ v: Double) -> String {
        v.isFinite ? "\(v)" : (v.isNaN ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"))
    }

    /// A CSV field (RFC 4180), quoted when its UTF-8 bytes hold `,` `"` CR or LF, or it begins or
    /// ends with a space or tab (which readers trim); inner quotes doubled. Decided on bytes, not
    /// on `Character`s: Swift sees `",\u{301}"` (comma + combining acute) as one character that is
    /// not a comma, and `"\r\n"` as one character that is neither CR nor LF, yet both split a row.
    static func csvField(_ s: String) -> String {
        let u = s.utf8
        var needsQuotes = false
        var hasQuote = false
        for b in u {
            switch b {
            case UInt8(ascii: "\""): hasQuote = true; needsQuotes = true
            case UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "\r"): needsQuotes = true
            default: break
            }
        }
        if let first = u.first, first == 0x20 || first == 0x09 { needsQuotes = true }
        if let last = u.last, last == 0x20 || last == 0x09 { needsQuotes = true }
        guard needsQuotes else { return s }
        var out = [UInt8]()
        out.reserveCapacity(u.count + 2)
        out.append(UInt8(ascii: "\""))
        for b in u {
            out.append(b)
            if b == UInt8(ascii: "\""), hasQuote { out.append(b) }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }
}

/// The JSON prediction record, the one encoding of a `PredictionRecord` as JSON: each line of
/// `vigil score`'s JSON Lines output, and each record the server answers (which appends its
/// `prediction_id` and `audit_seq` through `extra`). Keys in this order: `id`, `model`, `risk`
/// (or `prediction`), `group`, and for binary models `threshold`, `threshold_source`,
/// `threshold_randomized` (randomized policies only), `policy`, `decision`; then `attribution`
/// (with `explain`), `warnings`. A non-finite number is written `null` (JSON has none).
package struct RecordJSON: Sendable {
    let model: VigilModel
    let explain: ExplainMode?
    /// What attributions are reported under (`VigilModel.attributionNames`).
    let names: [String]
    /// The parts of a record that are the same on every line, built once.
    let jsonModel: String
    let jsonPolicy: String
    let jsonGroupKeys: [String]

    /// `names`: what attributions are reported under (default `model.attributionNames` when
    /// `explain` is set).
    package init(model: VigilModel, explain: ExplainMode?, names: [String]? = nil) {
        self.model = model
        self.explain = explain
        self.names = names ?? (explain == nil ? [] : model.attributionNames)
        jsonModel = ",\"model\":{\"name\":\(JSON.string(model.name)),\"version\":\(JSON.string(model.version)),\"sha256\":\"\(model.sha256)\"}"
        jsonPolicy = ",\"policy\":{\"version\":\(JSON.string(model.policy.version)),\"sha256\":\(JSON.string(model.policy.sha256))}"
        jsonGroupKeys = model.groups.map { JSON.string($0.name) + ":" }
    }

    /// One record object, appended piece by piece (no intermediate arrays or joined strings:
    /// this runs once per scored row). `extra`, when not empty, holds further members
    /// (`,"key":value...`) written before the closing brace. No line end.
    package func append(_ r: PredictionRecord, extra: String = "", to out: inout String) {
        out += "{\"id\":"
        JSON.appendString(r.id, to: &out)
        out += jsonModel
        switch model.ir.objective {
        case .binaryLogistic:
            out += ",\"risk\":"
            out += JSON.number(r.outputs[0])
        case .multiclassSoftmax:
            out += ",\"risk\":["
            for (i, v) in r.outputs.enumerated() {
                if i > 0 { out += "," }
                out += JSON.number(v)
            }
            out += "]"
        case .regression:
            out += ",\"prediction\":"
            out += JSON.number(r.outputs[0])
        }
        out += ",\"group\":{"
        for (i, label) in r.groupLabels.enumerated() where i < jsonGroupKeys.count {
            if i > 0 { out += "," }
            out += jsonGroupKeys[i]
            JSON.appendString(label, to: &out)
        }
        out += "}"
        if model.makesDecisions, let t = r.threshold, let s = r.thresholdSource, let d = r.decision {
            out += ",\"threshold\":"
            out += JSON.number(t)
            out += ",\"threshold_source\":"
            JSON.appendString(s.label, to: &out)
            if model.policy.randomizationSeed != nil { out += r.randomized ? ",\"threshold_randomized\":true" : ",\"threshold_randomized\":false" }
            out += jsonPolicy
            out += d ? ",\"decision\":true" : ",\"decision\":false"
        }
        if let explain, let a = r.attribution { out += Self.attributionJSON(a, explain, names: names) }
        out += ",\"warnings\":["
        for (i, w) in r.warnings.enumerated() {
            if i > 0 { out += "," }
            JSON.appendString(w, to: &out)
        }
        out += "]"
        out += extra
        out += "}"
    }

    /// The record as one string (no line end).
    package func text(_ r: PredictionRecord, extra: String = "") -> String {
        var out = ""
        append(r, extra: extra, to: &out)
        return out
    }

    /// The `,"attribution":{...}` member of a record.
    static func attributionJSON(_ a: Attribution, _ explain: ExplainMode, names: [String]) -> String {
        func entries(_ c: Int) -> String {
            let features: [Int]
            switch explain {
            case .top(let n): features = a.top(n, output: c)
            case .all: features = Array(0..<a.featureCount)
            }
            let items = features.map { j -> String in
                "{\"feature\":\(JSON.string(names[j])),\"value\":\(JSON.number(a.values[j])),\"contribution\":\(JSON.number(a.contribution(output: c, feature: j)))}"
            }
            return "\"\(explain == .all ? "contributions" : "top")\":[\(items.joined(separator: ","))]"
        }
        var out = ",\"attribution\":{\"method\":\"\(a.method.rawValue)\",\"space\":\"\(a.space.rawValue)\""
        if let i = a.integration {
            out += ",\"baseline\":\(JSON.string(i.baseline)),\"steps\":\(i.steps),\"completeness_error\":\(JSON.number(i.completenessError))"
            out += ",\"relative_completeness_error\":\(JSON.number(i.relativeError))"
        }
        if a.outputCount == 1 {
            out += ",\"base\":\(JSON.number(a.base[0])),\(entries(0))}"
        } else {
            let classes = (0..<a.outputCount).map { c in "{\"class\":\(c),\"base\":\(JSON.number(a.base[c])),\(entries(c))}" }
            out += ",\"classes\":[\(classes.joined(separator: ","))]}"
        }
        return out
    }
}
