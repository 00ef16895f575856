internal import Foundation
internal import VigilKernels

/// Rows to score, as parsed from a file or a request: features in the model's order (NaN =
/// missing), the raw text of each `field`-sourced group, an id and where the row came from.
public struct RowBatch: Sendable {
    public var count: Int
    public var ids: [String]
    /// `count x featureCount`, row-major.
    public var features: [Double]
    /// `count x model.fieldGroupCount`, row-major; nil = absent or missing.
    public var groupRaw: [String?]
    /// Where each row came from, for messages (e.g. `line 18`).
    public var origins: [String]
    /// `count x extraColumns.count`, row-major: the raw text of columns the reader was asked to
    /// keep (a label, a score column); nil = missing.
    public var extra: [String?]
    /// Image models (served): per row, what preprocessing changed (the record's warnings), and
    /// the SHA-256 of the bytes the image came in (the ledger's input hash); `features` then holds
    /// each image's input tensor (`imageInput.count` values a row) instead of feature values.
    public var notes: [[String]] = []
    public var inputDigests: [String] = []

    public init(count: Int, ids: [String], features: [Double], groupRaw: [String?], origins: [String], extra: [String?] = []) {
        self.count = count
        self.ids = ids
        self.features = features
        self.groupRaw = groupRaw
        self.origins = origins
        self.extra = extra
    }

    /// The batch as preprocessed images (`features` holding each image's tensor).
    public var images: ImageBatch {
        ImageBatch(count: count, ids: ids, tensors: features.map { Float($0) }, groupRaw: groupRaw, origins: origins,
                   notes: notes.count == count ? notes : Array(repeating: [], count: count))
    }
}

/// One scored row: the record every mode of use returns (`vigil score`'s CSV and JSON Lines
/// rows, the server's records and OIP outputs): id, outputs, group labels, threshold and which
/// policy entry gave it, decision, warnings and, when asked, the attribution.
public struct PredictionRecord: Sendable {
    public var id: String
    /// `risk` (binary), one probability per class (multiclass) or the prediction (regression).
    public var outputs: [Double]
    /// One label per manifest group field, in the manifest's order.
    public var groupLabels: [String]
    /// The policy's group key (labels of its group fields joined by `|`), empty for a global policy.
    public var groupKey: String
    public var threshold: Double?
    public var thresholdSource: GuardrailPolicy.Source?
    public var decision: Bool?
    public var warnings: [String]
    /// Whether a randomized policy's seeded draw chose the threshold (see `MixtureDraw`).
    public var randomized: Bool = false
    /// Base value and per-feature contributions in the model's margin space (`score(_:explain: true)`
    /// only): linear SHAP or TreeSHAP, base + Σ contributions = the margin behind `outputs`.
    public var attribution: Attribution?
}

extension VigilModel {
    /// Group fields read from input fields (not features), in manifest order.
    public var fieldGroups: [GroupField] { groups.filter { $0.source == .field } }

    /// Scores a batch: margins through the model's kernels (all cores for large batches), the
    /// link, range checks, groups, the policy's threshold and the decision; with `explain`, each
    /// record's attribution too (`explainer`, over the same cores). Throws on a value the model
    /// cannot score (a missing value for a linear model), naming the row and field, and, with
    /// `explain`, when the model cannot be explained.
    public func score(_ batch: RowBatch, threads: Int? = nil, explain: Bool = false) throws -> [PredictionRecord] {
        if imageInput != nil {
            throw VigilError(.usage, "\(name) takes images: score an ImageBatch (a folder of images or a list of image paths)")
        }
        let f = schema.count
        let k = ir.outputCount
        let n = batch.count
        guard batch.features.count == n * f, batch.ids.count == n, batch.origins.count == n,
              batch.groupRaw.count == n * fieldGroups.count else {
            throw VigilError(.input, "RowBatch of \(n) rows needs \(n * f) feature values, \(n) ids and origins and \(n * fieldGroups.count) group values; got \(batch.features.count), \(batch.ids.count), \(batch.origins.count) and \(batch.groupRaw.count)")
        }
        if !ir.acceptsMissing, let bad = batch.features.firstIndex(where: \.isNaN) {
            let r = bad / f
            throw VigilError.input(
                at: batch.origins[r], field: schema.features[bad % f].name, value: "",
                rule: "is missing; a linear model cannot score a missing value (Vigil does not impute)")
        }
        var outputs = [Double](repeating: 0, count: n * k)
        batch.features.withUnsafeBufferPointer { x in
            outputs.withUnsafeMutableBufferPointer { out in
                let xb = UncheckedSendable(x.baseAddress!)
                let ob = UncheckedSendable(out.baseAddress!)
                Parallel.forEachChunk(count: n, minChunk: ir.isLinear ? 8192 : 64, threads: threads ?? Parallel.cores) { range in
                    let rows = range.count
                    ir.predictRaw(xb.value + range.lowerBound * f, rows: rows, into: ob.value + range.lowerBound * k)
                    ir.transform(ob.value + range.lowerBound * k, rows: rows)
                }
            }
        }
        var contributions: [Double] = []
        var attributor: Explainer?
        if explain {
            let e = try explainer.get()
            contributions = Self.contributions(e, batch.features, rows: n, threads: threads)
            attributor = e
        }
        // Out-of-distribution scores (Mahalanobis, OutOfDistribution.swift) when the package has a reference.
        let oodScores = oodGuard?.scores(batch.features, rows: n, featureCount: f, threads: threads ?? Parallel.cores)
        var records: [PredictionRecord] = []
        records.reserveCapacity(n)
        let fieldGroupSlots = groups.indices.map { i in groups[i].source == .field ? groups[..<i].filter { $0.source == .field }.count : -1 }
        let fieldGroupCount = fieldGroups.count
        for r in 0..<n {
            var warnings: [String] = []
            let row = r * f
            for (j, spec) in schema.features.enumerated() {
                let v = batch.features[row + j]
                if v.isNaN {
                    if !spec.missingAllowed {
                        warnings.append("\(spec.name) is missing (not expected by the manifest); scored with the model's missing-value routing")
                    }
                } else if let range = spec.range, !range.contains(v) {
                    warnings.append("\(spec.name)=\(MissingValues.canonicalText(v)) is outside the valid range [\(MissingValues.canonicalText(range.lowerBound)), \(MissingValues.canonicalText(range.upperBound))]")
                }
            }
            if let oodScores, let w = oodGuard?.warning(oodScores[r]) { warnings.append(w) }
            let labels = groups.indices.map { i -> String in
                let g = groups[i]
                if g.source == .feature {
                    return g.label(value: batch.features[row + schema.index(of: g.field)!])
                }
                return g.label(raw: batch.groupRaw[r * fieldGroupCount + fieldGroupSlots[i]])
            }
            let o = Array(outputs[(r * k)..<(r * k + k)])
            var record = PredictionRecord(
                id: batch.ids[r], outputs: o, groupLabels: labels, groupKey: "", threshold: nil,
                thresholdSource: nil, decision: nil, warnings: warnings, attribution: nil)
            if let e = attributor {
                record.attribution = contributions.withUnsafeBufferPointer { c in
                    batch.features.withUnsafeBufferPointer { x in
                        e.attribution(block: c.baseAddress! + r * e.rowStride, values: x.baseAddress! + row)
                    }
                }
            }
            applyPolicy(to: &record)
            records.append(record)
        }
        return records
    }
}

extension VigilModel {
    /// The guardrail step every scored record goes through, tabular or image: its policy group
    /// key from its labels, the threshold `GuardrailPolicy.resolve(key:recordID:)` gives (a
    /// randomized policy's seeded draw included), the decision (`risk >= threshold`) and, for a
    /// fallback, the warning saying why. Records of models that make no decisions are left as
    /// they are.
    func applyPolicy(to record: inout PredictionRecord) {
        guard makesDecisions else { return }
        let key = policyGroupIndices.map { record.groupLabels[$0] }.joined(separator: "|")
        let resolved = policy.resolve(key: key, recordID: record.id)
        record.groupKey = key
        record.threshold = resolved.threshold
        record.thresholdSource = resolved.source
        record.randomized = resolved.randomized
        record.decision = GuardrailPolicy.decide(risk: record.outputs[0], threshold: resolved.threshold)
        if case .fallback(let reason) = resolved.source {
            record.warnings.append("fallback threshold \(resolved.threshold): \(reason)")
        }
    }
}

extension VigilModel {
    /// Margins and outputs only (no records, checks or guardrails), `rows x outputCount`, spread
    /// over `threads` partitions: the raw kernel path that `vigil bench` measures.
    public func predict(_ features: [Double], rows: Int, threads: Int = 1) -> [Double] {
        let f = ir.featureCount, k = ir.outputCount
        var out = [Double](repeating: 0, count: rows * k)
        features.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in
                let xb = UncheckedSendable(x.baseAddress!), ob = UncheckedSendable(o.baseAddress!)
                Parallel.forEachChunk(count: rows, minChunk: 64, threads: threads) { range in
                    ir.predictRaw(xb.value + range.lowerBound * f, rows: range.count, into: ob.value + range.lowerBound * k)
                    ir.transform(ob.value + range.lowerBound * k, rows: range.count)
                }
            }
        }
        return out
    }

    /// Attributions only (no margins, records or guardrails), `rows x explainer.rowStride`
    /// (per output: contributions, then the base value), spread over `threads` partitions: the
    /// path `vigil bench --explain` measures. Throws when the model cannot be explained.
    public func explain(_ features: [Double], rows: Int, threads: Int = 1) throws -> [Double] {
        Self.contributions(try explainer.get(), features, rows: rows, threads: threads)
    }

    /// The one call of the explainer's kernels, for `score(_:explain: true)` and `explain(_:)`:
    /// `rows x rowStride` values, rows spread over `threads` partitions (nil: every core).
    private static func contributions(_ e: Explainer, _ features: [Double], rows: Int, threads: Int?) -> [Double] {
        var out = [Double](repeating: 0, count: rows * e.rowStride)
        features.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { e.explain(x.baseAddress!, rows: rows, into: $0.baseAddress!, threads: threads) }
        }
        return out
    }

    /// The cores this process can use.
    public static var availableCores: Int { Parallel.cores }
}

extension ModelIR {
    var isLinear: Bool {
        if case .linear = self { return true }
        return false
    }
}
