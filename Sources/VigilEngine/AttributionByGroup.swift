package import Foundation

/// Attribution by group (`vigil audit --attribution`): for each audited group field, each group's
/// mean contribution φ and mean |φ| per feature (the model's own explainer: linear SHAP or
/// TreeSHAP, in its margin space, first output), and each group's difference in mean |φ| from
/// the reference group with a seeded percentile bootstrap interval (rows resampled within each
/// of the two groups). Which features the model leans on, group by group.
package struct AttributionByGroup: Sendable {
    package struct Group: Sendable {
        package var n = 0
        package var sum: [Double]
        package var sumAbs: [Double]
        /// Per row |φ|, kept for the bootstrap (rows x features).
        var abs: [Double] = []
        init(features: Int) {
            sum = Array(repeating: 0, count: features)
            sumAbs = Array(repeating: 0, count: features)
        }
        package func mean(_ j: Int) -> Double { n == 0 ? .nan : sum[j] / Double(n) }
        package func meanAbs(_ j: Int) -> Double { n == 0 ? .nan : sumAbs[j] / Double(n) }
    }

    package struct Difference: Sendable {
        package let value: Double
        package let lower: Double
        package let upper: Double
    }

    package struct View: Sendable {
        package let field: String
        package let reference: String?
        package let groups: [String: Group]
        /// By group (not the reference), one per feature.
        package let differences: [String: [Difference]]
    }

    package let features: [String]
    package let space: String
    package let views: [View]
    package let replicates: Int

    /// Scores the cohort with attributions and aggregates them per group of each field in
    /// `fields` (manifest group names); `references` names each field's reference group (nil:
    /// the largest group).
    package init(model: VigilModel, fields: [String], references: [String: String], url: URL, format: CohortFormat?,
                 limits: CohortReader.Limits, replicates: Int, seed: UInt64) throws {
        if case .failure(let e) = model.explainer {
            throw VigilError(.usage, "--attribution: model '\(model.name)' cannot be explained (\(e.message))")
        }
        let indices = try fields.map { f -> Int in
            guard let i = model.groups.firstIndex(where: { $0.name == f }) else { throw VigilError(.usage, "--attribution: '\(f)' is not a group of model '\(model.name)'") }
            return i
        }
        let p = model.schema.count
        features = model.schema.names
        var byField = Array(repeating: [String: Group](), count: fields.count)
        var space = ""
        let reader = try CohortReader(url: url, model: model, format: format, limits: limits)
        while let batch = try reader.nextBatch(maxRows: 4096) {
            for r in try model.score(batch, explain: true) {
                guard let a = r.attribution else { continue }
                space = a.space.rawValue
                for (v, gi) in indices.enumerated() {
                    let label = r.groupLabels[gi]
                    var g = byField[v][label] ?? Group(features: p)
                    g.n += 1
                    for j in 0..<p {
                        let phi = a.contributions[j]
                        g.sum[j] += phi
                        g.sumAbs[j] += Swift.abs(phi)
                        g.abs.append(Swift.abs(phi))
                    }
                    byField[v][label] = g
                }
            }
        }
        self.space = space
        self.replicates = replicates
        var rng = SplitMix64(seed: seed)
        views = fields.enumerated().map { v, field in
            let groups = byField[v]
            let reference = references[field].flatMap { groups[$0] != nil ? $0 : nil } ?? groups.max { ($0.value.n, $1.key) < ($1.value.n, $0.key) }?.key
            var diffs: [String: [Difference]] = [:]
            if let reference, let ref = groups[reference] {
                for (label, g) in groups.sorted(by: { $0.key < $1.key }) where label != reference && g.n > 0 {
                    var reps = Array(repeating: [Double](), count: p)
                    for _ in 0..<replicates {
                        var a = [Double](repeating: 0, count: p), b = [Double](repeating: 0, count: p)
                        for _ in 0..<g.n { let row = Int(rng.next() % UInt64(g.n)); for j in 0..<p { a[j] += g.abs[row * p + j] } }
                        for _ in 0..<ref.n { let row = Int(rng.next() % UInt64(ref.n)); for j in 0..<p { b[j] += ref.abs[row * p + j] } }
                        for j in 0..<p { reps[j].append(a[j] / Double(g.n) - b[j] / Double(ref.n)) }
                    }
                    diffs[label] = (0..<p).map { j in
                        let sorted = reps[j].sorted()
                        func q(_ x: Double) -> Double { sorted.isEmpty ? .nan : OODReference.quantile(sorted, x) }
                        return Difference(value: g.meanAbs(j) - ref.meanAbs(j), lower: q(0.025), upper: q(0.975))
                    }
                }
            }
            return View(field: field, reference: reference, groups: groups, differences: diffs)
        }
    }

    /// The `attribution_by_group` section of the audit JSON.
    package var json: JSONOutput {
        func perFeature(_ values: (Int) -> Double) -> JSONOutput { .object(features.enumerated().map { ($1, .number(values($0))) }) }
        return .object([
            ("space", .string(space)), ("output", .int(0)), ("bootstrap_replicates", .int(replicates)),
            ("views", .array(views.map { v in
                .object([
                    ("field", .string(v.field)), ("reference", v.reference.map { .string($0) } ?? .null),
                    ("groups", .array(v.groups.sorted { $0.key < $1.key }.map { label, g in
                        .object([("group", .string(label)), ("n", .int(g.n)), ("mean_abs", perFeature(g.meanAbs)), ("mean", perFeature(g.mean))])
                    })),
                    ("differences_in_mean_abs", .array(v.differences.sorted { $0.key < $1.key }.map { label, d in
                        .object([("group", .string(label)), ("features", .object(features.enumerated().map { j, f in
                            (f, .object([("difference", .number(d[j].value)), ("lower", .number(d[j].lower)), ("upper", .number(d[j].upper))]))
                        }))])
                    })),
                ])
            })),
        ])
    }
}
