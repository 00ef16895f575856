package import Foundation

/// The counterfactual flip test (`vigil audit --counterfactual FIELD`): every row is rescored
/// with its sensitive attribute set to each other value, and the changes are counted per
/// original group and target group, separately for what the model does and what the threshold
/// does:
/// - **model**: the rescored risk against the row's own threshold (a change in the features
///   only; zero when the attribute is not a model feature);
/// - **threshold**: the row's own risk against the counterfactual group's threshold (the policy
///   only; zero when the policy does not use the attribute);
/// - **both**: the rescored record's decision (risk and threshold of the counterfactual row).
/// The attribute is a manifest group: its raw field (a `field` group: the request/cohort field)
/// or its feature (a `feature` group, e.g. Gender 0/1, which is also a model input). Its values
/// are one raw value per label of the group's `map` (the smallest key), or, without a map, the
/// distinct raw values of the cohort (at most 20). A binned group (age bands) has no
/// counterfactual value to set and is refused.
package struct Counterfactual: Sendable {
    package struct Cell: Sendable, Equatable {
        package var n = 0
        package var modelFlips = 0
        package var thresholdFlips = 0
        package var flips = 0
        package var sumDeltaRisk = 0.0
        package var sumAbsDeltaRisk = 0.0
        package var maxAbsDeltaRisk = 0.0
    }

    package let group: String
    package let field: String
    package let asFeature: Bool
    /// Each target value: its raw text and the label it gets.
    package let targets: [(raw: String, label: String)]
    /// By original label, then target label.
    package private(set) var cells: [String: [String: Cell]] = [:]
    package private(set) var rows = 0

    /// Runs the test over a cohort file with `model` (the one `vigil audit` audits).
    package init(model: VigilModel, field: String, url: URL, format: CohortFormat?, limits: CohortReader.Limits) throws {
        guard model.imageInput == nil else { throw VigilError(.usage, "--counterfactual: \(model.name) is an image model; it has no attribute to swap") }
        guard let gi = model.groups.firstIndex(where: { $0.name == field || $0.field == field }) else {
            throw VigilError(.usage, "--counterfactual \(Untrusted.quote(field)): not a group of model '\(model.name)' (groups: \(model.groups.map { "\($0.name) (field \($0.field))" }.joined(separator: ", ")))")
        }
        let g = model.groups[gi]
        guard g.bins == nil else {
            throw VigilError(.usage, "--counterfactual \(Untrusted.quote(field)): group '\(g.name)' bins a number (\(g.field)); a counterfactual needs values to set, which a binned field does not have")
        }
        group = g.name
        self.field = g.field
        let featureIndex = model.schema.index(of: g.field)
        let slot = g.source == .field ? model.fieldGroups.firstIndex(where: { $0.name == g.name }) : nil
        asFeature = featureIndex != nil
        // Target values: one raw value per mapped label (the smallest key), else the cohort's.
        var targets: [(String, String)] = []
        if let map = g.map {
            for key in map.keys.sorted() where !targets.contains(where: { $0.1 == map[key]! }) { targets.append((key, map[key]!)) }
        } else {
            var seen: [String] = []
            let reader = try CohortReader(url: url, model: model, format: format, limits: limits)
            while let b = try reader.nextBatch(maxRows: 8192) {
                for r in 0..<b.count {
                    let raw: String? = slot.map { b.groupRaw[r * model.fieldGroups.count + $0] } ?? featureIndex.map { MissingValues.canonicalText(b.features[r * model.schema.count + $0]) }
                    if let raw, !raw.isEmpty, raw != "nan", !seen.contains(raw) {
                        seen.append(raw)
                        guard seen.count <= 20 else { throw VigilError(.usage, "--counterfactual \(Untrusted.quote(field)): more than 20 distinct values and no map in the manifest to name them") }
                    }
                }
            }
            targets = seen.sorted().map { ($0, g.label(raw: $0)) }
        }
        if featureIndex != nil, let bad = targets.first(where: { Double($0.0) == nil }) {
            throw VigilError(.usage, "--counterfactual \(Untrusted.quote(field)): the value '\(Untrusted.quote(bad.0))' of feature \(g.field) is not a number")
        }
        guard targets.count >= 2 else { throw VigilError(.usage, "--counterfactual \(Untrusted.quote(field)): fewer than two values to swap between") }
        self.targets = targets

        let reader = try CohortReader(url: url, model: model, format: format, limits: limits)
        let f = model.schema.count, gcount = model.fieldGroups.count
        while let batch = try reader.nextBatch(maxRows: 8192) {
            let original = try model.score(batch, threads: nil)
            rows += batch.count
            for (raw, label) in targets {
                var b = batch
                for r in 0..<b.count {
                    if let j = featureIndex { b.features[r * f + j] = Double(raw)! }
                    if let slot { b.groupRaw[r * gcount + slot] = raw }
                }
                let swapped = try model.score(b, threads: nil)
                for r in 0..<batch.count {
                    let o = original[r], s = swapped[r]
                    let from = o.groupLabels[gi]
                    guard from != label else { continue }  // already that value
                    var c = cells[from, default: [:]][label, default: Cell()]
                    c.n += 1
                    let risk = o.outputs.first ?? .nan, risk2 = s.outputs.first ?? .nan
                    let d = risk2 - risk
                    c.sumDeltaRisk += d
                    c.sumAbsDeltaRisk += abs(d)
                    c.maxAbsDeltaRisk = max(c.maxAbsDeltaRisk, abs(d))
                    if let t = o.threshold, let decision = o.decision {
                        if GuardrailPolicy.decide(risk: risk2, threshold: t) != decision { c.modelFlips += 1 }
                        if let t2 = s.threshold, GuardrailPolicy.decide(risk: risk, threshold: t2) != decision { c.thresholdFlips += 1 }
                        if s.decision != decision { c.flips += 1 }
                    }
                    cells[from, default: [:]][label] = c
                }
            }
        }
    }

    /// The `counterfactual` section of the audit JSON.
    package var json: JSONOutput {
        .object([
            ("group", .string(group)), ("field", .string(field)), ("as_feature", .bool(asFeature)), ("rows", .int(rows)),
            ("values", .array(targets.map { .object([("raw", .string($0.raw)), ("label", .string($0.label))]) })),
            ("cells", .array(cells.keys.sorted().flatMap { from in cells[from]!.keys.sorted().map { to in
                let c = cells[from]![to]!
                let n = Double(max(c.n, 1))
                return JSONOutput.object([
                    ("from", .string(from)), ("to", .string(to)), ("n", .int(c.n)),
                    ("model_flips", .int(c.modelFlips)), ("threshold_flips", .int(c.thresholdFlips)), ("flips", .int(c.flips)),
                    ("flip_rate", .number(Double(c.flips) / n)), ("model_flip_rate", .number(Double(c.modelFlips) / n)),
                    ("threshold_flip_rate", .number(Double(c.thresholdFlips) / n)),
                    ("mean_delta_risk", .number(c.sumDeltaRisk / n)), ("mean_abs_delta_risk", .number(c.sumAbsDeltaRisk / n)),
                    ("max_abs_delta_risk", .number(c.maxAbsDeltaRisk)),
                ])
            } })),
        ])
    }
}
