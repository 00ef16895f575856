package import VigilStatistics
package import VigilGuard
/// Fairlearn's summaries of one metric across groups (`MetricFrame.difference`, `.ratio`,
/// `.group_min`, `.group_max`), over the groups that are eligible (at least the audit's minimum
/// size) and have a defined value; the others are listed in `excluded` with the reason.
///
/// - `differenceBetweenGroups` = max - min; `differenceToOverall` = max |m_g - m_overall|;
/// - `ratioBetweenGroups` = min / max; `ratioToOverall` = min over g of r_g or 1/r_g, whichever
///   is <= 1, with r_g = m_g / m_overall (Fairlearn's "expressed as a number less than 1").
package struct Disparity: Sendable, Equatable {
    package var groupMin: MetricValue
    package var groupMax: MetricValue
    package var argMin: String?
    package var argMax: String?
    package var differenceBetweenGroups: MetricValue
    package var differenceToOverall: MetricValue
    package var ratioBetweenGroups: MetricValue
    package var ratioToOverall: MetricValue
    package var excluded: [String: String]

    package static func compute(byGroup: [(key: String, value: MetricValue, eligible: Bool)], overall: MetricValue) -> Disparity {
        var excluded: [String: String] = [:]
        var values: [(String, Double)] = []
        for g in byGroup {
            if !g.eligible {
                excluded[g.key] = "below the minimum group size"
            } else if let v = g.value.value {
                values.append((g.key, v))
            } else {
                excluded[g.key] = g.value.reason ?? "undefined"
            }
        }
        guard let lo = values.min(by: { $0.1 < $1.1 }), let hi = values.max(by: { $0.1 < $1.1 }) else {
            let why = MetricValue.undefined("no eligible group has a defined value")
            return Disparity(groupMin: why, groupMax: why, argMin: nil, argMax: nil, differenceBetweenGroups: why,
                             differenceToOverall: why, ratioBetweenGroups: why, ratioToOverall: why, excluded: excluded)
        }
        var d = Disparity(
            groupMin: .value(lo.1), groupMax: .value(hi.1), argMin: lo.0, argMax: hi.0,
            differenceBetweenGroups: values.count >= 2 ? .value(hi.1 - lo.1) : .undefined("fewer than two eligible groups have a defined value"),
            differenceToOverall: .undefined(overall.reason ?? ""), ratioBetweenGroups: .undefined(""), ratioToOverall: .undefined(""),
            excluded: excluded)
        let signed = lo.1 < 0
        if values.count < 2 {
            d.ratioBetweenGroups = d.differenceBetweenGroups
        } else if signed {
            d.ratioBetweenGroups = .undefined("a ratio of values of either sign is not meaningful")
        } else {
            d.ratioBetweenGroups = .ratio(lo.1, hi.1, "every eligible group's value is 0")
        }
        if let o = overall.value {
            d.differenceToOverall = .value(values.map { abs($0.1 - o) }.max()!)
            if signed || o < 0 {
                d.ratioToOverall = .undefined("a ratio of values of either sign is not meaningful")
            } else if o == 0 {
                d.ratioToOverall = .undefined("the overall value is 0")
            } else if values.contains(where: { $0.1 == 0 }) {
                // r = 0 is <= 1 and is the minimum.
                d.ratioToOverall = .value(0)
            } else {
                d.ratioToOverall = .value(values.map { let r = $0.1 / o; return r > 1 ? 1 / r : r }.min()!)
            }
        } else {
            d.ratioToOverall = .undefined("the overall value is undefined: \(overall.reason ?? "")")
            d.differenceToOverall = d.ratioToOverall
        }
        return d
    }
}

/// AIF360's group-fairness measures of a group ("unprivileged") against a reference group
/// ("privileged"), from `ClassificationMetric`:
/// disparate impact = SR_g / SR_ref; statistical parity difference = SR_g - SR_ref;
/// average odds difference = ((FPR_g - FPR_ref) + (TPR_g - TPR_ref)) / 2;
/// equal opportunity difference = TPR_g - TPR_ref (SR = selection rate).
package struct ReferenceComparison: Sendable, Equatable {
    package var disparateImpact: MetricValue
    package var statisticalParityDifference: MetricValue
    package var averageOddsDifference: MetricValue
    package var equalOpportunityDifference: MetricValue

    package static let names = ["disparate_impact", "statistical_parity_difference", "average_odds_difference", "equal_opportunity_difference"]

    package var all: [MetricValue] { [disparateImpact, statisticalParityDifference, averageOddsDifference, equalOpportunityDifference] }

    package static func compute(group g: [Metric: MetricValue], reference r: [Metric: MetricValue]) -> ReferenceComparison {
        func diff(_ m: Metric) -> MetricValue {
            guard let a = g[m]?.value else { return .undefined("\(m.rawValue) of the group is undefined: \(g[m]?.reason ?? "")") }
            guard let b = r[m]?.value else { return .undefined("\(m.rawValue) of the reference group is undefined: \(r[m]?.reason ?? "")") }
            return .value(a - b)
        }
        var di: MetricValue
        if let a = g[.selectionRate]?.value, let b = r[.selectionRate]?.value {
            di = .ratio(a, b, "the reference group's selection rate is 0")
        } else {
            di = .undefined("a selection rate is undefined")
        }
        let dt = diff(.tpr), df = diff(.fpr)
        var aod: MetricValue = .undefined(dt.reason ?? df.reason ?? "")
        if let x = dt.value, let y = df.value { aod = .value((x + y) / 2) }
        return ReferenceComparison(disparateImpact: di, statisticalParityDifference: diff(.selectionRate),
                                   averageOddsDifference: aod, equalOpportunityDifference: dt)
    }
}
