package import VigilEngine

/// A shadow deployment read back from the audit ledger (`vigil compare --ledger`): every request
/// that a production version and its shadow both scored and whose outcome arrived, as paired
/// rows in ledger order: both risks, thresholds and decisions as served, production's group
/// labels (in the manifest's group order) and the observed label.
///
/// Entries are matched by role, model name and model SHA-256: production entries of the
/// baseline, shadow entries of the candidate whose `shadow_of` names one of them, and the
/// outcome recorded for the production prediction. Every field is read through `LedgerEntry`
/// (checked), so a malformed entry is an error naming its line and field.
package struct ShadowTrial: Sendable {
    package var ids: [String] = []
    package var baselineRisks: [Double] = []
    package var candidateRisks: [Double] = []
    package var baselineThresholds: [Double] = []
    package var candidateThresholds: [Double] = []
    package var baselineDecisions: [Bool] = []
    package var candidateDecisions: [Bool] = []
    /// Per row, production's group labels in the baseline manifest's group order.
    package var groups: [[String]] = []
    package var labels: [Bool] = []
    /// Baseline predictions left out: without a shadow prediction, or without an outcome.
    package var withoutShadow = 0
    package var withoutOutcome = 0

    package var count: Int { ids.count }

    package static func read(entries: [[String: JSONValue]], file: String, baseline: VigilModel, candidate: VigilModel) throws -> ShadowTrial {
        struct Scored { var risk: Double; var threshold: Double; var decision: Bool; var groups: [String] }
        var production: [String: Scored] = [:]
        var order: [String] = []
        var shadowOf: [String: Scored] = [:]
        var outcomes: [String: Bool] = [:]
        for (i, e) in entries.enumerated() {
            let f = LedgerEntry.Fields(e, place: "\(file): entry \(i + 1)")
            let kind = try LedgerEntry.Header(f).kind
            guard kind == .prediction || kind == .outcome else { continue }
            let ref = try LedgerEntry.ModelRef(f)
            let isBaseline = ref.role == .production && ref.model == baseline.name && ref.modelSHA256 == baseline.sha256
            let isCandidate = ref.role == .shadow && ref.model == candidate.name && ref.modelSHA256 == candidate.sha256
            guard isBaseline || isCandidate else { continue }
            if kind == .outcome {
                if isBaseline { outcomes[ref.predictionID] = try LedgerEntry.Outcome(f).label }
                continue
            }
            let p = try LedgerEntry.Prediction(f)
            guard let risk = p.outputs.first, let threshold = p.threshold, let decision = p.decision else {
                throw f.fail("decision", "is absent: compare needs the decisions of a binary model with a policy")
            }
            let scored = Scored(risk: risk, threshold: threshold, decision: decision, groups: p.labels)
            if isBaseline {
                guard p.labels.count == baseline.groups.count else {
                    throw f.fail("group", "holds \(p.labels.count) labels; model '\(baseline.name)' has \(baseline.groups.count) group fields")
                }
                if production[ref.predictionID] == nil { order.append(ref.predictionID) }
                production[ref.predictionID] = scored
            } else if let of = ref.shadowOf {
                shadowOf[of] = scored
            }
        }
        var t = ShadowTrial()
        for id in order {
            let a = production[id]!
            guard let b = shadowOf[id] else { t.withoutShadow += 1; continue }
            guard let label = outcomes[id] else { t.withoutOutcome += 1; continue }
            t.ids.append(id)
            t.baselineRisks.append(a.risk)
            t.candidateRisks.append(b.risk)
            t.baselineThresholds.append(a.threshold)
            t.candidateThresholds.append(b.threshold)
            t.baselineDecisions.append(a.decision)
            t.candidateDecisions.append(b.decision)
            t.groups.append(a.groups)
            t.labels.append(label)
        }
        return t
    }
}

/// A served version's predictions that have an outcome, read back from the audit ledger (`vigil
/// monitor export`): production entries of the model's name and SHA-256, in ledger order, with
/// the risk, decision and group labels as served and the observed label.
package struct LedgerOutcomes: Sendable {
    package var risks: [Double] = []
    package var decisions: [Bool] = []
    package var labels: [Bool] = []
    /// Per row, the group labels in the manifest's group order.
    package var groups: [[String]] = []
    /// Per feature with a manifest reference: its counts in the reference's buckets (then
    /// missing), from the entries' `buckets`.
    package var featureHistograms: [(name: String, edges: [Double], counts: [Int])] = []
    /// Predictions of the model without an outcome yet (left out).
    package var withoutOutcome = 0

    package var count: Int { risks.count }

    package static func read(entries: [[String: JSONValue]], file: String, model: VigilModel) throws -> LedgerOutcomes {
        var predictions: [String: (risk: Double, decision: Bool, groups: [String], buckets: [Int])] = [:]
        var order: [String] = []
        var outcomes: [String: Bool] = [:]
        for (i, e) in entries.enumerated() {
            let f = LedgerEntry.Fields(e, place: "\(file): entry \(i + 1)")
            let kind = try LedgerEntry.Header(f).kind
            guard kind == .prediction || kind == .outcome else { continue }
            let ref = try LedgerEntry.ModelRef(f)
            guard ref.role == .production, ref.model == model.name, ref.modelSHA256 == model.sha256 else { continue }
            if kind == .outcome {
                outcomes[ref.predictionID] = try LedgerEntry.Outcome(f).label
                continue
            }
            let p = try LedgerEntry.Prediction(f)
            guard let risk = p.outputs.first, let decision = p.decision else {
                throw f.fail("decision", "is absent: a site summary needs the decisions of a binary model with a policy")
            }
            guard p.labels.count == model.groups.count else {
                throw f.fail("group", "holds \(p.labels.count) labels; model '\(model.name)' has \(model.groups.count) group fields")
            }
            if predictions[ref.predictionID] == nil { order.append(ref.predictionID) }
            predictions[ref.predictionID] = (risk, decision, p.labels, p.buckets)
        }
        var out = LedgerOutcomes()
        let references = model.schema.names.enumerated().compactMap { j, name in model.manifest?.featureReference[name].map { (j, name, $0.edges) } }
        var histograms = references.map { [Int](repeating: 0, count: $0.2.count + 2) }
        for id in order {
            let p = predictions[id]!
            guard let label = outcomes[id] else { out.withoutOutcome += 1; continue }
            out.risks.append(p.risk)
            out.decisions.append(p.decision)
            out.labels.append(label)
            out.groups.append(p.groups)
            for (h, ref) in references.enumerated() where ref.0 < p.buckets.count {
                let b = p.buckets[ref.0]
                if b >= 0, b < histograms[h].count { histograms[h][b] += 1 }
            }
        }
        out.featureHistograms = zip(references, histograms).map { ($0.1, $0.2, $1) }
        return out
    }
}
