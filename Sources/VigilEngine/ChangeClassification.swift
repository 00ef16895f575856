internal import Foundation

/// What changed between two versions of a model, in the vocabulary of a Predetermined Change
/// Control Plan (`ChangeKind`), each with the evidence that shows it, and whether the plan's
/// `allowed_changes` covers it (`vigil change-control`; docs/FORMATS.md "Change-control folder").
///
/// The kinds are found from the packages themselves, never from what the operator says:
/// - `new_features`: the feature names differ (added, removed, renamed) or their order does;
/// - `group_definitions`: a group field the guardrails use is defined otherwise (its name,
///   source, field, map, bins or fallback labels);
/// - `architecture`: another model family (linear, trees, CNN) or objective;
/// - `hyperparameters`: the same family with another shape (tree count or depth, CNN layers);
/// - `retrain`: the model file's bytes differ within the same family (new parameters);
/// - `threshold_update`: the policy file differs (its thresholds, rule or fitting data).
/// A change is inside the plan when every kind found is listed; one that is not needs a new
/// regulatory submission, and `vigil change-control` says so and exits 3.
package struct ChangeClassification: Sendable {
    package struct Change: Sendable {
        package let kind: ChangeKind
        package let evidence: String
        package let allowed: Bool
    }

    package let changes: [Change]
    package let allowedChanges: [String]

    /// The kinds found that the plan does not allow.
    package var outsidePlan: [Change] { changes.filter { !$0.allowed } }
    package var withinPlan: Bool { outsidePlan.isEmpty }

    package static func classify(baseline a: VigilModel, candidate b: VigilModel, allowed: [String]) -> ChangeClassification {
        var found: [(ChangeKind, String)] = []
        let (fa, fb) = (a.schema.names, b.schema.names)
        if fa != fb {
            let added = fb.filter { !fa.contains($0) }, removed = fa.filter { !fb.contains($0) }
            var parts: [String] = []
            if !added.isEmpty { parts.append("added \(list(added))") }
            if !removed.isEmpty { parts.append("removed \(list(removed))") }
            if parts.isEmpty { parts.append("the same \(fa.count) features in another order") }
            found.append((.newFeatures, "features: " + parts.joined(separator: "; ")))
        }
        let groupChanges = Set(a.groups.map(\.name) + b.groups.map(\.name)).sorted().filter { name in
            a.groups.first { $0.name == name } != b.groups.first { $0.name == name }
        }
        if !groupChanges.isEmpty {
            found.append((.groupDefinitions, "group fields defined otherwise: \(list(groupChanges))"))
        }
        let (sa, sb) = (shape(a), shape(b))
        if sa.family != sb.family || a.ir.objective.summary != b.ir.objective.summary {
            found.append((.architecture, "\(sa.family) \(a.ir.objective.summary) (\(a.format.displayName)) -> \(sb.family) \(b.ir.objective.summary) (\(b.format.displayName))"))
        } else {
            if sa.detail != sb.detail {
                found.append((.hyperparameters, "\(sa.family): \(sa.detail) -> \(sb.detail)"))
            }
            if a.sha256 != b.sha256 {
                found.append((.retrain, "model file \(a.sha256.prefix(12)) -> \(b.sha256.prefix(12)) (\(a.format.displayName) -> \(b.format.displayName)), new parameters"))
            }
        }
        if a.policy.sha256 != b.policy.sha256 {
            found.append((.thresholdUpdate, "policy \(a.policy.version) (\(a.policy.sha256.isEmpty ? "none" : String(a.policy.sha256.prefix(12)))) -> \(b.policy.version) (\(b.policy.sha256.isEmpty ? "none" : String(b.policy.sha256.prefix(12))))"))
        }
        let allowedSet = Set(allowed)
        return ChangeClassification(changes: found.map { Change(kind: $0.0, evidence: $0.1, allowed: allowedSet.contains($0.0.rawValue)) }, allowedChanges: allowed)
    }

    static func list(_ names: [String]) -> String {
        names.prefix(8).joined(separator: ", ") + (names.count > 8 ? " and \(names.count - 8) more" : "")
    }

    /// The model family and what fixes its shape.
    static func shape(_ m: VigilModel) -> (family: String, detail: String) {
        switch m.ir {
        case .linear(let l): return ("linear", "\(l.featureCount) coefficients")
        case .trees(let t): return ("trees", "\(t.treeCount) trees, depth \(t.maxDepth)")
        case .convNet(let n, _): return ("cnn", "\(n.nodes.count) layers")
        }
    }
}
