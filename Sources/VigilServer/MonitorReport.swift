internal import Foundation
internal import VigilEngine
internal import VigilStatistics

/// `GET /v1/models/{name}/monitor`, derived from the counters (fairlearn's vocabulary:
/// `overall`, `by_group`, `difference`/`ratio` between groups, `group_min`/`group_max`).
///
/// Rates carry Wilson 95% intervals: selection rate = positive decisions / predictions,
/// TPR = TP / (TP + FN), FPR = FP / (FP + TN). Gaps compare, per group field, the groups with
/// at least `alert_min_group_size` rows in the rate's denominator (max of the policy's
/// `min_group_size` and the server's floor). An alert fires only on such groups:
///   - `gap`: the Wilson intervals of the lowest and highest group do not overlap;
///   - `drift`: PSI > 0.25 (the usual "significant shift" reading) for the score or a feature,
///     with at least 100 predictions and at least `alert_min_group_size`.
extension VigilServer {
    func monitorReport(_ m: ServedModel) -> String {
        let model = m.model
        let mon = m.monitor
        let snap = mon.snapshot()
        let minN = max(model.policy.minGroupSize, options.alertMinGroupSize)
        let buckets = mon.scoreBinning.bucketCount
        var overall = ModelMonitor.Counts(buckets: buckets)
        for (_, v) in snap.joint { overall.add(v.counts) }
        // Per field: label -> counts (sums over joint groups).
        var byField: [[String: ModelMonitor.Counts]] = mon.groupNames.map { _ in [:] }
        for (_, v) in snap.joint {
            for (i, label) in v.labels.enumerated() where i < byField.count {
                var c = byField[i][label] ?? ModelMonitor.Counts(buckets: buckets)
                c.add(v.counts)
                byField[i][label] = c
            }
        }
        var alerts: [String] = []
        var out = "{\"model\":{\"name\":\(JSON.string(model.name)),\"version\":\(JSON.string(model.version)),\"sha256\":\"\(model.sha256)\"}"
        out += ",\"policy\":{\"version\":\(JSON.string(model.policy.version)),\"min_group_size\":\(model.policy.minGroupSize)},\"alert_min_group_size\":\(minN)"
        if let ledger {
            let head = ledger.head
            out += ",\"ledger\":{\"seq\":\(head.seq),\"hash\":\"\(head.hash)\"}"
        }
        out += ",\"score_edges\":[\(mon.scoreBinning.edges.map(JSON.number).joined(separator: ","))]"
        out += ",\"overall\":\(countsJSON(overall))"
        out += ",\"by_group\":{"
        out += mon.groupNames.enumerated().map { i, name in
            "\(JSON.string(name)):{\(byField[i].sorted { $0.key < $1.key }.map { "\(JSON.string($0.key)):\(countsJSON($0.value))" }.joined(separator: ","))}"
        }.joined(separator: ",")
        out += "},\"joint_groups\":{"
        out += snap.joint.sorted { $0.key < $1.key }.map { "\(JSON.string($0.key)):\(countsJSON($0.value.counts))" }.joined(separator: ",")
        out += "},\"gaps\":{"
        var gapParts: [String] = []
        for (i, name) in mon.groupNames.enumerated() {
            var metrics: [String] = []
            for (metric, rate) in Self.rateDefs {
                let eligible = byField[i].compactMap { label, c -> (String, Double, Double, Double)? in
                    let (k, n) = rate(c)
                    guard n >= minN, n > 0, let w = Stats.wilson(k, n) else { return nil }
                    return (label, w.rate, w.low, w.high)
                }.sorted { $0.1 < $1.1 }
                guard let lo = eligible.first, let hi = eligible.last, eligible.count >= 2 else {
                    metrics.append("\(JSON.string(metric)):{\"eligible_groups\":\(eligible.count),\"difference\":null,\"ratio\":null}")
                    continue
                }
                let ratio = hi.1 > 0 ? lo.1 / hi.1 : 1
                metrics.append("\(JSON.string(metric)):{\"eligible_groups\":\(eligible.count),\"group_min\":\(JSON.string(lo.0)),\"group_max\":\(JSON.string(hi.0)),\"difference\":\(JSON.number(hi.1 - lo.1)),\"ratio\":\(JSON.number(ratio))}")
                if lo.3 < hi.2 {
                    alerts.append("{\"kind\":\"gap\",\"group_field\":\(JSON.string(name)),\"metric\":\(JSON.string(metric)),\"groups\":[\(JSON.string(lo.0)),\(JSON.string(hi.0))],\"difference\":\(JSON.number(hi.1 - lo.1)),\"message\":\(JSON.string("\(metric) of \(name)=\(lo.0) (\(fmt(lo.1)), 95% CI \(fmt(lo.2))-\(fmt(lo.3))) and \(name)=\(hi.0) (\(fmt(hi.1)), \(fmt(hi.2))-\(fmt(hi.3))) do not overlap"))}")
                }
            }
            gapParts.append("\(JSON.string(name)):{\(metrics.joined(separator: ","))}")
        }
        out += gapParts.joined(separator: ",")
        out += "},\"drift\":{"
        let driftMin = max(100, minN)
        var scoreDrift = "null"
        if let ref = mon.scoreBinning.reference {
            let obs = overall.scoreBuckets.map(Double.init)
            let (psi, js) = (Stats.psi(observed: obs, reference: ref), Stats.jensenShannon(observed: obs, reference: ref))
            scoreDrift = "{\"n\":\(overall.predictions),\"psi\":\(JSON.number(psi)),\"jensen_shannon\":\(JSON.number(js))}"
            if overall.predictions >= driftMin, psi > 0.25 {
                alerts.append("{\"kind\":\"drift\",\"of\":\"score\",\"psi\":\(JSON.number(psi)),\"message\":\(JSON.string("score distribution PSI \(fmt(psi)) > 0.25 against the manifest reference"))}")
            }
        }
        out += "\"score\":\(scoreDrift),\"features\":{"
        var featureParts: [String] = []
        for (j, name) in model.schema.names.enumerated() {
            guard let b = mon.featureBinnings[j], let ref = b.reference else { continue }
            let obs = snap.features[j].map(Double.init)
            let n = snap.features[j].reduce(0, +)
            let psi = Stats.psi(observed: obs, reference: ref), js = Stats.jensenShannon(observed: obs, reference: ref)
            featureParts.append("\(JSON.string(name)):{\"n\":\(n),\"psi\":\(JSON.number(psi)),\"jensen_shannon\":\(JSON.number(js))}")
            if n >= driftMin, psi > 0.25 {
                alerts.append("{\"kind\":\"drift\",\"of\":\(JSON.string(name)),\"psi\":\(JSON.number(psi)),\"message\":\(JSON.string("feature \(name) PSI \(fmt(psi)) > 0.25 against the manifest reference"))}")
            }
        }
        out += featureParts.joined(separator: ",")
        out += "}},\"alerts\":[\(alerts.joined(separator: ","))]"
        // A shadow's report sits beside production's, in the same form, with what it missed.
        if m.role == .shadow {
            let f = m.shadowFailures
            out += ",\"role\":\"shadow\",\"failures\":{\"count\":\(f.count),\"last\":\(f.last.map(JSON.string) ?? "null")}"
        } else {
            out += ",\"role\":\"production\",\"shadow\":" + (m.shadow.map { monitorReport($0) } ?? "null")
        }
        return out + "}"
    }

    static let rateDefs: [(String, @Sendable (ModelMonitor.Counts) -> (Int, Int))] = [
        ("selection_rate", { ($0.positives, $0.predictions) }),
        ("tpr", { ($0.tp, $0.tp + $0.fn) }),
        ("fpr", { ($0.fp, $0.fp + $0.tn) }),
    ]

    private func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

    private func countsJSON(_ c: ModelMonitor.Counts) -> String {
        var s = "{\"predictions\":\(c.predictions),\"positive_decisions\":\(c.positives),\"tp\":\(c.tp),\"fp\":\(c.fp),\"tn\":\(c.tn),\"fn\":\(c.fn)"
        s += ",\"score_buckets\":[\(c.scoreBuckets.map(String.init).joined(separator: ","))],\"rates\":{"
        s += Self.rateDefs.map { name, rate in
            let (k, n) = rate(c)
            guard let w = Stats.wilson(k, n) else { return "\(JSON.string(name)):null" }
            return "\(JSON.string(name)):{\"value\":\(JSON.number(w.rate)),\"low\":\(JSON.number(w.low)),\"high\":\(JSON.number(w.high)),\"n\":\(n)}"
        }.joined(separator: ",")
        return s + "}}"
    }
}
