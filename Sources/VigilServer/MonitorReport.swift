package import Foundation
internal import VigilEngine
internal import VigilStatistics

/// `GET /v1/models/{name}/monitor`, derived from the counters (fairlearn's vocabulary:
/// `overall`, `by_group`, `difference`/`ratio` between groups, `group_min`/`group_max`).
///
/// Rates carry Wilson 95% intervals: selection rate = positive decisions / predictions,
/// TPR = TP / (TP + FN), FPR = FP / (FP + TN). A group counts for an alert only with at least
/// `alert_min_group_size` (`--alert-min-group-size`, default 50; its own setting, independent of
/// the policy's `min_group_size`, which governs threshold fitting) in the rate's denominator.
/// Alerts, each on the totals since start and on every window (`--monitor-windows`):
///   - `baseline`: a policy group's TPR below, FPR above, or selection rate away from the rate
///     the policy recorded for it when fitted (`policy.json` groups: tpr on `positives`, fpr on
///     `negatives`, selection_rate on `n`), by a one-sided two-proportion z-test (two-sided for
///     the selection rate) with p < `alert_alpha` (`--alert-alpha`, default 1e-4);
///   - `gap`: per group field, the lowest and highest group's rates differ by a two-sided
///     two-proportion z-test, Bonferroni-corrected over the pairs, with p < `alert_alpha`;
///   - `drift`: the score's or a feature's histogram differs from the manifest's reference by a
///     chi-square test of homogeneity with p < `alert_alpha`, PSI >= 0.02 (a floor on the size of
///     the shift, so that a huge n does not alert on nothing) and at least
///     max(100, alert_min_group_size) predictions. PSI and JS are null without predictions.
extension VigilServer {
    /// The PSI below which no drift alert fires, whatever the p-value.
    static let driftMinimumPSI = 0.02

    /// CDS Hooks feedback since start: accepted, overridden and the override rate, overall and
    /// per joint group.
    static func feedbackJSON(_ f: [String: (accepted: Int, overridden: Int)]) -> String {
        func one(_ a: Int, _ o: Int) -> String {
            "{\"accepted\":\(a),\"overridden\":\(o),\"override_rate\":\(a + o == 0 ? "null" : JSON.number(Double(o) / Double(a + o)))}"
        }
        let a = f.values.reduce(0) { $0 + $1.accepted }, o = f.values.reduce(0) { $0 + $1.overridden }
        var s = one(a, o)
        s.removeLast()
        return s + ",\"by_group\":{" + f.sorted { $0.key < $1.key }.map { "\(JSON.string($0.key)):\(one($0.value.accepted, $0.value.overridden))" }.joined(separator: ",") + "}}"
    }

    package func monitorReport(_ m: ServedModel, now: Date = Date()) -> String {
        let model = m.model
        let mon = m.monitor
        let snap = mon.snapshot()
        let minN = options.alertMinGroupSize
        let alpha = options.alertAlpha
        let view = MonitorView(mon, snap.joint, snap.features)
        var alerts: [String] = []
        var out = "{\"model\":{\"name\":\(JSON.string(model.name)),\"version\":\(JSON.string(model.version)),\"sha256\":\"\(model.sha256)\"}"
        out += ",\"policy\":{\"version\":\(JSON.string(model.policy.version)),\"min_group_size\":\(model.policy.minGroupSize)},\"alert_min_group_size\":\(minN),\"alert_alpha\":\(JSON.number(alpha))"
        if let ledger {
            let head = ledger.head
            out += ",\"ledger\":{\"seq\":\(head.seq),\"hash\":\"\(head.hash)\"}"
        }
        out += ",\"score_edges\":[\(mon.scoreBinning.edges.map(JSON.number).joined(separator: ","))]"
        out += ",\"overall\":\(countsJSON(view.overall)),\"by_group\":\(byGroupJSON(view))"
        out += ",\"joint_groups\":{"
        out += snap.joint.sorted { $0.key < $1.key }.map { "\(JSON.string($0.key)):\(countsJSON($0.value.counts))" }.joined(separator: ",")
        out += "},\"gaps\":{" + gaps(view, window: "since_start", minN: minN, alpha: alpha, alerts: &alerts) + "}"
        out += ",\"baseline\":" + baseline(view, model: model, window: "since_start", minN: minN, alpha: alpha, alerts: &alerts)
        out += ",\"drift\":" + drift(view, mon: mon, window: "since_start", minN: minN, alpha: alpha, alerts: &alerts)
        out += ",\"cds_feedback\":" + Self.feedbackJSON(mon.feedbackSnapshot())
        // Windows: the same, on the predictions made in the last W (bucket-aligned).
        let current = mon.windows.bucket(of: now)
        out += ",\"windows\":{\"bucket_seconds\":\(mon.windows.bucketSeconds),\"views\":["
        out += mon.windows.windows.map { w in
            let from = current - mon.windows.buckets(w.seconds) + 1
            let ws = mon.snapshot(fromBucket: from)
            let wv = MonitorView(mon, ws.joint, ws.features)
            let start = Date(timeIntervalSince1970: Double(from) * Double(mon.windows.bucketSeconds))
            var s = "{\"window\":\(JSON.string(w.label)),\"from\":\(JSON.string(ISO8601DateFormatter().string(from: start))),\"overall\":\(countsJSON(wv.overall))"
            s += ",\"by_group\":\(byGroupJSON(wv))"
            s += ",\"gaps\":{" + gaps(wv, window: w.label, minN: minN, alpha: alpha, alerts: &alerts) + "}"
            s += ",\"baseline\":" + baseline(wv, model: model, window: w.label, minN: minN, alpha: alpha, alerts: &alerts)
            s += ",\"drift\":" + drift(wv, mon: mon, window: w.label, minN: minN, alpha: alpha, alerts: &alerts)
            return s + "}"
        }.joined(separator: ",")
        out += "]},\"alerts\":[\(alerts.joined(separator: ","))]"
        // A shadow's report sits beside production's, in the same form, with what it missed.
        if m.role == .shadow {
            let f = m.shadowFailures
            out += ",\"role\":\"shadow\",\"failures\":{\"count\":\(f.count),\"last\":\(f.last.map(JSON.string) ?? "null")}"
        } else {
            out += ",\"role\":\"production\",\"shadow\":" + (m.shadow.map { monitorReport($0, now: now) } ?? "null")
        }
        return out + "}"
    }

    /// Counters summed three ways: overall, per group field, per policy group.
    struct MonitorView {
        var overall: ModelMonitor.Counts
        var byField: [[String: ModelMonitor.Counts]]
        var byPolicyGroup: [String: ModelMonitor.Counts] = [:]
        var features: [[Int]]
        var groupNames: [String]

        init(_ mon: ModelMonitor, _ joint: [String: (labels: [String], counts: ModelMonitor.Counts)], _ features: [[Int]]) {
            let buckets = mon.scoreBinning.bucketCount
            overall = ModelMonitor.Counts(buckets: buckets)
            byField = mon.groupNames.map { _ in [:] }
            self.features = features
            groupNames = mon.groupNames
            for (_, v) in joint {
                overall.add(v.counts)
                for (i, label) in v.labels.enumerated() where i < byField.count {
                    var c = byField[i][label] ?? ModelMonitor.Counts(buckets: buckets)
                    c.add(v.counts)
                    byField[i][label] = c
                }
                let key = mon.model.policyKey(v.labels)
                var c = byPolicyGroup[key] ?? ModelMonitor.Counts(buckets: buckets)
                c.add(v.counts)
                byPolicyGroup[key] = c
            }
        }
    }

    static let rateDefs: [(String, @Sendable (ModelMonitor.Counts) -> (Int, Int))] = [
        ("selection_rate", { ($0.positives, $0.predictions) }),
        ("tpr", { ($0.tp, $0.tp + $0.fn) }),
        ("fpr", { ($0.fp, $0.fp + $0.tn) }),
    ]

    private func gaps(_ view: MonitorView, window: String, minN: Int, alpha: Double, alerts: inout [String]) -> String {
        var gapParts: [String] = []
        for (i, name) in view.groupNames.enumerated() {
            var metrics: [String] = []
            for (metric, rate) in Self.rateDefs {
                let eligible = view.byField[i].compactMap { label, c -> (String, Double, Double, Double)? in
                    let (k, n) = rate(c)
                    guard n >= max(1, minN), let w = Stats.wilson(k, n) else { return nil }
                    return (label, w.rate, w.low, w.high)
                }.sorted { $0.1 < $1.1 }
                guard let lo = eligible.first, let hi = eligible.last, eligible.count >= 2 else {
                    metrics.append("\(JSON.string(metric)):{\"eligible_groups\":\(eligible.count),\"difference\":null,\"ratio\":null}")
                    continue
                }
                let ratio = hi.1 > 0 ? lo.1 / hi.1 : 1
                // The lowest against the highest group: a two-sided two-proportion z-test,
                // Bonferroni-corrected for the k(k-1)/2 pairs the extremes were chosen from.
                let (klo, nlo) = rate(view.byField[i][lo.0]!), (khi, nhi) = rate(view.byField[i][hi.0]!)
                let pairs = Double(eligible.count * (eligible.count - 1) / 2)
                let z = Stats.proportionDrop(k: klo, n: nlo, baseline: Double(khi) / Double(nhi), n0: nhi)
                let p = z.map { min(1, 2 * Stats.normalUpperTail(abs($0)) * pairs) }
                metrics.append("\(JSON.string(metric)):{\"eligible_groups\":\(eligible.count),\"group_min\":\(JSON.string(lo.0)),\"group_max\":\(JSON.string(hi.0)),\"difference\":\(JSON.number(hi.1 - lo.1)),\"ratio\":\(JSON.number(ratio)),\"p_value\":\(p.map(JSON.number) ?? "null")}")
                if let p, p < alpha {
                    alerts.append("{\"kind\":\"gap\",\"window\":\(JSON.string(window)),\"group_field\":\(JSON.string(name)),\"metric\":\(JSON.string(metric)),\"groups\":[\(JSON.string(lo.0)),\(JSON.string(hi.0))],\"difference\":\(JSON.number(hi.1 - lo.1)),\"p_value\":\(JSON.number(p)),\"message\":\(JSON.string("\(window): \(metric) of \(name)=\(lo.0) (\(fmt(lo.1)), 95% CI \(fmt(lo.2))-\(fmt(lo.3))) and \(name)=\(hi.0) (\(fmt(hi.1)), \(fmt(hi.2))-\(fmt(hi.3))) differ: p \(String(format: "%.2g", p)) < \(alpha) (two-sided, over \(Int(pairs)) pairs)"))}")
                }
            }
            gapParts.append("\(JSON.string(name)):{\(metrics.joined(separator: ","))}")
        }
        return gapParts.joined(separator: ",")
    }

    /// Each policy group's rates against the rates the policy recorded when it was fitted.
    private func baseline(_ view: MonitorView, model: VigilModel, window: String, minN: Int, alpha: Double, alerts: inout [String]) -> String {
        let policy = model.policy
        var parts: [String] = []
        for (key, entry) in policy.groups.sorted(by: { $0.key < $1.key }) {
            let c = view.byPolicyGroup[key] ?? ModelMonitor.Counts(buckets: 0)
            var metrics: [String] = []
            // (metric, window k, window n, baseline rate, baseline n, direction: +1 below is bad, -1 above, 0 either)
            let defs: [(String, Int, Int, Double?, Int?, Int)] = [
                ("tpr", c.tp, c.tp + c.fn, entry.tpr, entry.positives, 1),
                ("fpr", c.fp, c.fp + c.tn, entry.fpr, entry.negatives, -1),
                ("selection_rate", c.positives, c.predictions, entry.selectionRate, entry.n, 0),
            ]
            for (metric, k, n, p0, n0, direction) in defs {
                guard let p0, let n0, n0 > 0 else { continue }
                var s = "\(JSON.string(metric)):{\"baseline\":\(JSON.number(p0)),\"baseline_n\":\(n0),\"n\":\(n)"
                if let w = Stats.wilson(k, n), let drop = Stats.proportionDrop(k: k, n: n, baseline: p0, n0: n0) {
                    let z = direction == 0 ? abs(drop) : Double(direction) * drop
                    let p = direction == 0 ? min(1, 2 * Stats.normalUpperTail(z)) : Stats.normalUpperTail(z)
                    s += ",\"value\":\(JSON.number(w.rate)),\"low\":\(JSON.number(w.low)),\"high\":\(JSON.number(w.high)),\"z\":\(JSON.number(z)),\"p_value\":\(JSON.number(p))"
                    let fires = n >= max(1, minN) && p < alpha
                    s += ",\"alert\":\(fires)"
                    if fires {
                        let how = direction > 0 ? "below" : direction < 0 ? "above" : "away from"
                        let sided = direction == 0 ? "two-sided" : "one-sided"
                        let message = "\(window): \(metric) of policy group \(key) \(fmt(w.rate)) (95% CI \(fmt(w.low))-\(fmt(w.high)), n \(n)) is \(how) its baseline \(fmt(p0)) (n \(n0) when the policy was fitted): z \(String(format: "%.2f", z)), \(sided) p \(String(format: "%.2g", p)) < \(alpha)"
                        alerts.append("{\"kind\":\"baseline\",\"window\":\(JSON.string(window)),\"group\":\(JSON.string(key)),\"metric\":\(JSON.string(metric)),\"value\":\(JSON.number(w.rate)),\"low\":\(JSON.number(w.low)),\"high\":\(JSON.number(w.high)),\"n\":\(n),\"baseline\":\(JSON.number(p0)),\"baseline_n\":\(n0),\"z\":\(JSON.number(z)),\"p_value\":\(JSON.number(p)),\"message\":\(JSON.string(message))}")
                    }
                } else {
                    s += ",\"value\":null,\"alert\":false"
                }
                metrics.append(s + "}")
            }
            parts.append("\(JSON.string(key)):{\(metrics.joined(separator: ","))}")
        }
        return "{\"group_fields\":[\(policy.groupFields.map(JSON.string).joined(separator: ","))],\"groups\":{\(parts.joined(separator: ","))}}"
    }

    /// The score's and each feature's histogram against the manifest's reference.
    private func drift(_ view: MonitorView, mon: ModelMonitor, window: String, minN: Int, alpha: Double, alerts: inout [String]) -> String {
        let driftMin = max(100, minN)
        func one(_ what: String, observed: [Int], reference: [Double]) -> String {
            let obs = observed.map(Double.init)
            let n = observed.reduce(0, +)
            guard n > 0 else { return "{\"n\":0,\"psi\":null,\"jensen_shannon\":null,\"chi_square\":null,\"p_value\":null}" }
            let psi = Stats.psi(observed: obs, reference: reference), js = Stats.jensenShannon(observed: obs, reference: reference)
            let chi = Stats.chiSquare(observed: obs, reference: reference)
            var s = "{\"n\":\(n),\"psi\":\(JSON.number(psi)),\"jensen_shannon\":\(JSON.number(js))"
            s += ",\"chi_square\":\(chi.map { JSON.number($0.statistic) } ?? "null"),\"df\":\(chi.map { String($0.df) } ?? "null"),\"p_value\":\(chi.map { JSON.number($0.p) } ?? "null")}"
            if n >= driftMin, let chi, chi.p < alpha, psi >= Self.driftMinimumPSI {
                let label = what == "score" ? "score distribution" : "feature \(what)"
                alerts.append("{\"kind\":\"drift\",\"window\":\(JSON.string(window)),\"of\":\(JSON.string(what)),\"n\":\(n),\"psi\":\(JSON.number(psi)),\"p_value\":\(JSON.number(chi.p)),\"message\":\(JSON.string("\(window): \(label) differs from the manifest reference: PSI \(fmt(psi)), chi-square \(String(format: "%.1f", chi.statistic)) on \(chi.df) df, p \(String(format: "%.2g", chi.p)) < \(alpha), n \(n)"))}")
            }
            return s
        }
        var out = "{\"score\":" + (mon.scoreBinning.reference.map { one("score", observed: view.overall.scoreBuckets, reference: $0) } ?? "null")
        out += ",\"features\":{"
        var parts: [String] = []
        for (j, name) in mon.model.schema.names.enumerated() {
            guard let b = mon.featureBinnings[j], let ref = b.reference, j < view.features.count else { continue }
            parts.append("\(JSON.string(name)):" + one(name, observed: view.features[j], reference: ref))
        }
        return out + parts.joined(separator: ",") + "}}"
    }

    private func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

    /// `{"sex": {"Female": counts, ...}, ...}`: each group field's groups, sorted.
    private func byGroupJSON(_ view: MonitorView) -> String {
        "{" + view.groupNames.enumerated().map { i, name in
            "\(JSON.string(name)):{\(view.byField[i].sorted { $0.key < $1.key }.map { "\(JSON.string($0.key)):\(countsJSON($0.value))" }.joined(separator: ","))}"
        }.joined(separator: ",") + "}"
    }

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
