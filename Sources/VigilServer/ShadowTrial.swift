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
        let scans = try LedgerScan.read(entries: entries, file: file, versions: [(.production, baseline), (.shadow, candidate)],
                                        needsThreshold: true, purpose: "compare needs the decisions of a binary model with a policy")
        let (base, shadow) = (scans[0], scans[1])
        var shadowOf: [String: LedgerScan.Served] = [:]
        for s in shadow.predictions.values { if let of = s.shadowOf { shadowOf[of] = s } }
        let order = base.order
        let production = base.predictions
        let outcomes = base.outcomes
        var t = ShadowTrial()
        for id in order {
            let a = production[id]!
            guard let b = shadowOf[id] else { t.withoutShadow += 1; continue }
            guard let label = outcomes[id] else { t.withoutOutcome += 1; continue }
            t.ids.append(id)
            t.baselineRisks.append(a.risk)
            t.candidateRisks.append(b.risk)
            t.baselineThresholds.append(a.threshold!)
            t.candidateThresholds.append(b.threshold!)
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
        let scan = try LedgerScan.read(entries: entries, file: file, versions: [(.production, model)], needsThreshold: false,
                                       purpose: "a site summary needs the decisions of a binary model with a policy")[0]
        let (order, predictions, outcomes) = (scan.order, scan.predictions, scan.outcomes)
        var out = LedgerOutcomes()
        let references = model.featureReferences
        var histograms = references.map { [Int](repeating: 0, count: $0.edges.count + 2) }
        for id in order {
            let p = predictions[id]!
            guard let label = outcomes[id] else { out.withoutOutcome += 1; continue }
            out.risks.append(p.risk)
            out.decisions.append(p.decision)
            out.labels.append(label)
            out.groups.append(p.groups)
            for (h, ref) in references.enumerated() where ref.index < p.buckets.count {
                let b = p.buckets[ref.index]
                if b >= 0, b < histograms[h].count { histograms[h][b] += 1 }
            }
        }
        out.featureHistograms = zip(references, histograms).map { ($0.name, $0.edges, $1) }
        return out
    }
}

/// The prediction and outcome entries of given versions (role, name and SHA-256), read checked
/// in one pass over the ledger: what `ShadowTrial` and `LedgerOutcomes` pair up. A prediction
/// without a decision (or, with `needsThreshold`, a threshold), or with another number of group
/// labels than the model's group fields, is an error naming its entry and field.
struct LedgerScan {
    struct Served {
        var risk: Double
        var threshold: Double?
        var decision: Bool
        var groups: [String]
        var buckets: [Int]
        var shadowOf: String?
    }

    /// Prediction ids in ledger order, their predictions, and the outcomes recorded for them.
    var order: [String] = []
    var predictions: [String: Served] = [:]
    var outcomes: [String: Bool] = [:]

    static func read(entries: [[String: JSONValue]], file: String, versions: [(role: LedgerEntry.Role, model: VigilModel)],
                     needsThreshold: Bool, purpose: String) throws -> [LedgerScan] {
        var scans = versions.map { _ in LedgerScan() }
        for (i, e) in entries.enumerated() {
            let f = LedgerEntry.Fields(e, place: "\(file): entry \(i + 1)")
            let kind = try LedgerEntry.Header(f).kind
            guard kind == .prediction || kind == .outcome else { continue }
            let ref = try LedgerEntry.ModelRef(f)
            guard let v = versions.firstIndex(where: { $0.role == ref.role && $0.model.name == ref.model && $0.model.sha256 == ref.modelSHA256 }) else { continue }
            if kind == .outcome {
                scans[v].outcomes[ref.predictionID] = try LedgerEntry.Outcome(f).label
                continue
            }
            let model = versions[v].model
            let p = try LedgerEntry.Prediction(f)
            guard let risk = p.outputs.first, let decision = p.decision, !needsThreshold || p.threshold != nil else {
                throw f.fail("decision", "is absent: \(purpose)")
            }
            guard p.labels.count == model.groups.count else {
                throw f.fail("group", "holds \(p.labels.count) labels; model '\(model.name)' has \(model.groups.count) group fields")
            }
            if scans[v].predictions[ref.predictionID] == nil { scans[v].order.append(ref.predictionID) }
            scans[v].predictions[ref.predictionID] = Served(risk: risk, threshold: p.threshold, decision: decision, groups: p.labels, buckets: p.buckets, shadowOf: ref.shadowOf)
        }
        return scans
    }
}
