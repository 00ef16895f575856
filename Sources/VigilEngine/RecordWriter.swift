public import Foundation

/// Writes prediction records as CSV or JSON Lines, streaming (one batch at a time).
///
/// CSV columns: the id column (named as the input's), the outputs (`risk`, `risk_<k>` or
/// `prediction`), `group` (`name=label;...`) when the model has group fields, `threshold`,
/// `threshold_source` and `decision` (1/0) for binary models, `threshold_randomized` (1/0) when the
/// policy is randomized, and `warnings` (joined by ` | `).
/// JSON Lines: one full prediction record per line (../shared/DESIGN.md).
public final class RecordWriter {
    public let format: CohortFormat
    private let model: VigilModel
    private let handle: FileHandle
    private let closeAtEnd: Bool
    private var wroteHeader = false

    public init(model: VigilModel, output: URL?, format: CohortFormat) throws {
        self.model = model
        self.format = format
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

    public func write(_ records: [PredictionRecord]) throws {
        var out = ""
        out.reserveCapacity(records.count * 96)
        if format == .csv, !wroteHeader {
            var cols = [model.idField] + model.outputNames
            if !model.groups.isEmpty { cols.append("group") }
            if model.makesDecisions { cols += ["threshold", "threshold_source", "decision"] }
            if model.makesDecisions, model.policy.randomizationSeed != nil { cols.append("threshold_randomized") }
            cols.append("warnings")
            out += cols.map(Self.csvField).joined(separator: ",") + "\n"
            wroteHeader = true
        }
        for r in records {
            switch format {
            case .csv: appendCSV(r, to: &out)
            case .jsonl: appendJSON(r, to: &out)
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
        out += "\n"
    }

    private func appendJSON(_ r: PredictionRecord, to out: inout String) {
        out += "{\"id\":\(Self.jsonString(r.id)),\"model\":{\"name\":\(Self.jsonString(model.name)),\"version\":\(Self.jsonString(model.version)),\"sha256\":\"\(model.sha256)\"}"
        switch model.ir.objective {
        case .binaryLogistic: out += ",\"risk\":\(Self.number(r.outputs[0]))"
        case .multiclassSoftmax: out += ",\"risk\":[\(r.outputs.map(Self.number).joined(separator: ","))]"
        case .regression: out += ",\"prediction\":\(Self.number(r.outputs[0]))"
        }
        out += ",\"group\":{\(zip(model.groups, r.groupLabels).map { "\(Self.jsonString($0.name)):\(Self.jsonString($1))" }.joined(separator: ","))}"
        if model.makesDecisions, let t = r.threshold, let s = r.thresholdSource, let d = r.decision {
            out += ",\"threshold\":\(Self.number(t)),\"threshold_source\":\(Self.jsonString(s.label))"
            if model.policy.randomizationSeed != nil { out += ",\"threshold_randomized\":\(r.randomized)" }
            out += ",\"policy\":{\"version\":\(Self.jsonString(model.policy.version)),\"sha256\":\(Self.jsonString(model.policy.sha256))}"
            out += ",\"decision\":\(d)"
        }
        out += ",\"warnings\":[\(r.warnings.map(Self.jsonString).joined(separator: ","))]}\n"
    }

    /// Shortest text that reads back to the same `Double`.
    static func number(_ v: Double) -> String {
        v.isFinite ? "\(v)" : (v.isNaN ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"))
    }

    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
