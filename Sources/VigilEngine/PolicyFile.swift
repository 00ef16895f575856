package import Foundation
internal import VigilFormats

extension GuardrailPolicy {
    /// Reads `policy.json` (docs/FORMATS.md), strictly.
    package static func load(data: Data, file: String = "policy.json") throws -> GuardrailPolicy {
        try withPackageJSON(data, file: file) { root in
            try root.requireKeys(in: ["schema", "version", "constraint", "objective", "rule", "group_fields", "min_group_size", "groups", "fallback", "fitted_on", "randomized", "created", "tolerance", "model"])
            let schema = try root["schema"].string()
            guard schema == "vigil.policy/1" else { throw try root["schema"].fail("'\(Untrusted.quote(schema))' is not a supported policy schema (vigil.policy/1 is)") }
            var groups: [String: GroupEntry] = [:]
            if let g = root.optional("groups") {
                for key in g.keys {
                    let e = try g[key]
                    try e.requireKeys(in: ["threshold", "n", "tpr", "fpr", "selection_rate", "positives", "negatives", "fallback", "mixture"])
                    var mixture: Mixture?
                    if let m = e.optional("mixture") {
                        try m.requireKeys(in: ["threshold", "probability"])
                        mixture = Mixture(threshold: try m["threshold"].double(), probability: try m["probability"].double())
                    }
                    groups[key] = GroupEntry(
                        threshold: try e["threshold"].double(), n: try e.optional("n")?.int(),
                        tpr: try e.optional("tpr").flatMap { $0.isNull ? nil : try $0.double() },
                        fpr: try e.optional("fpr").flatMap { $0.isNull ? nil : try $0.double() },
                        selectionRate: try e.optional("selection_rate").flatMap { $0.isNull ? nil : try $0.double() },
                        positives: try e.optional("positives")?.int(), negatives: try e.optional("negatives")?.int(),
                        fallbackReason: try e.optional("fallback")?.string(), mixture: mixture)
                }
            }
            let fallback = try root["fallback"]
            let fitted = root.optional("fitted_on")
            func kind(_ key: String) throws -> String {
                guard let node = root.optional(key) else { return "none" }
                if case .string(let s) = node.value { return s }
                return try node["kind"].string()
            }
            // `randomized`: absent or false for a deterministic policy; {"seed": N} enables mixtures.
            var seed: UInt64?
            if let randomized = root.optional("randomized") {
                switch randomized.value {
                case .bool(false), .null, .number(0): break
                case .object:
                    try randomized.requireKeys(in: ["seed"])
                    let s = try randomized["seed"].double()
                    guard s >= 0, s < 9_007_199_254_740_992, s == s.rounded() else {
                        throw try randomized["seed"].fail("seed \(s) must be an integer in [0, 2^53)")
                    }
                    seed = UInt64(s)
                default:
                    throw randomized.fail("must be false or {\"seed\": N}; a randomized policy needs a seed so that each record's draw is reproducible")
                }
            }
            return try GuardrailPolicy(
                version: try root["version"].string(), sha256: SHA256Digest.hex(of: data),
                constraint: try kind("constraint"), objective: try kind("objective"),
                rule: try root.optional("rule")?.string() ?? "",
                groupFields: try root.optional("group_fields")?.array().map { try $0.string() } ?? [],
                minGroupSize: try root.optional("min_group_size")?.int() ?? 0, groups: groups,
                fallbackThreshold: try fallback["threshold"].double(),
                fittedRows: try fitted?.optional("rows")?.int(), fittedSHA256: try fitted?.optional("sha256")?.string(),
                randomizationSeed: seed, modelBinding: try root.optional("model").map(readBinding),
                fittedFile: { if case .string(let f)? = fitted?.optional("file")?.value { return f } else { return nil } }())
        }
    }

    /// Longest `model.name` or `model.version` a policy may hold, in bytes.
    package static let maxBindingTextBytes = 256

    /// `model`: `{"name": ..., "version": ..., "sha256": <64 lowercase hex>}`, the model the
    /// policy was fitted for (docs/FORMATS.md). Checked as untrusted: an object with only these
    /// keys, `sha256` exactly 64 lowercase hex digits, `name` and `version` optional strings of
    /// at most 256 bytes without control characters; each refusal names the file, the field,
    /// the value (cut to 80 bytes) and the rule.
    private static func readBinding(_ node: JSONNode) throws -> ModelBinding {
        guard case .object = node.value else {
            throw node.fail("expected an object {\"name\", \"version\", \"sha256\"} naming the model the policy was fitted for, found \(node.typeName)")
        }
        try node.requireKeys(in: ["name", "version", "sha256"])
        let shaNode = try node["sha256"]
        guard case .string(let sha) = shaNode.value else {
            throw shaNode.fail("expected a string of 64 lowercase hex digits (the model file's SHA-256), found \(shaNode.typeName)")
        }
        guard Untrusted.isLowercaseHex(sha, count: 64) else {
            throw shaNode.fail("value '\(Untrusted.quote(sha))' must be 64 lowercase hex digits: the SHA-256 of the model file the policy was fitted for")
        }
        func text(_ key: String) throws -> String? {
            guard let n = node.optional(key), !n.isNull else { return nil }
            guard case .string(let s) = n.value else { throw n.fail("expected a string, found \(n.typeName)") }
            guard s.utf8.count <= maxBindingTextBytes else {
                throw n.fail("value '\(Untrusted.quote(s))' is longer than \(maxBindingTextBytes) bytes")
            }
            guard !Untrusted.containsControlCharacter(s) else {
                throw n.fail("value '\(Untrusted.quote(s))' holds a control character")
            }
            return s
        }
        return ModelBinding(name: try text("name"), version: try text("version"), sha256: sha)
    }

    /// Checks that this policy may decide for the model file of SHA-256 `modelSHA256`: a policy
    /// bound to another model is refused, naming both hashes and the policy file; a policy
    /// bound to none is accepted, and the returned warning says that nothing could be checked.
    /// The one place a policy meets a model (package load, `--policy`).
    package func checkBinding(policyFile: String, modelName: String, modelVersion: String, modelFile: String, modelSHA256: String) throws -> String? {
        guard let b = modelBinding else {
            return "\(policyFile): policy version \(Untrusted.quote(version)) does not name the model it was fitted for (no \"model\" binding: written before bindings, or fitted from a scores column); it is applied to '\(modelName)' \(modelVersion) (sha256 \(modelSHA256)) unchecked. Bind it with models/training/bind_policies.py, or refit it with vigil fit-thresholds --model"
        }
        guard b.sha256 == modelSHA256 else {
            throw VigilError(.package, "\(policyFile): this policy was fitted for \(b.description), but the model it is loaded with, '\(modelName)' \(modelVersion) (\(modelFile)), has sha256 \(modelSHA256); a policy's thresholds hold only for the model they were fitted on: use that model's own policy, or refit one with vigil fit-thresholds --model")
        }
        return nil
    }
}

// MARK: - Writing a fitted policy

extension ThresholdFitter.Result {
    /// Where a fit came from, for `policy.json`'s `fitted_on`.
    package struct Provenance: Sendable {
        package var file: String
        package var sha256: String
        package var labelColumn: String
        /// `model <name> <version> (sha256 ...)` or `column <name>`.
        package var scores: String
        package var version: String
        package var created: String?
        /// The model whose risks were fitted (`model` in policy.json); nil when the risks came
        /// from a column, so the policy names no model.
        package var model: GuardrailPolicy.ModelBinding?

        package init(
            file: String, sha256: String, labelColumn: String, scores: String, version: String, created: String? = nil,
            model: GuardrailPolicy.ModelBinding? = nil
        ) {
            self.model = model
            self.file = file
            self.sha256 = sha256
            self.labelColumn = labelColumn
            self.scores = scores
            self.version = version
            self.created = created
        }
    }

    /// The `policy.json` document for this fit (docs/FORMATS.md), keys in a stable order.
    package func policyJSON(groupFields: [String], provenance: Provenance) -> JSONOutput {
        var constraint: [(String, JSONOutput)] = [("kind", .string(options.constraint.name))]
        switch options.constraint {
        case .none: break
        case .minSensitivity(let s): constraint.append(("target", .number(s)))
        default: constraint.append(("tolerance", .number(options.tolerance)))
        }
        constraint.append(("violation", .optional(violation)))
        var objective: [(String, JSONOutput)] = [("kind", .string(options.objective.name))]
        if case .cost(let fn, let fp) = options.objective {
            objective += [("cost_fn", .number(fn)), ("cost_fp", .number(fp))]
        }
        objective += [("value", .number(self.objective)), ("single_threshold_value", .number(baselineObjective))]
        let groupsJSON: [(String, JSONOutput)] = groupFields.isEmpty ? [] : groups.map { g in
            var e: [(String, JSONOutput)] = [
                ("threshold", .number(g.threshold)), ("n", .int(g.n)), ("positives", .int(g.positives)),
                ("negatives", .int(g.negatives)), ("tpr", .optional(g.tpr)), ("fpr", .optional(g.fpr)),
                ("selection_rate", .number(g.selectionRate)),
            ]
            if let r = g.fallbackReason { e.append(("fallback", .string(r))) }
            return (g.key, .object(e))
        }
        var rule = groupFields.isEmpty
            ? "one threshold for everyone, best \(options.objective.name) on the fitting cohort; decision risk >= threshold"
            : "per-group thresholds on \(groupFields.joined(separator: "|")) (exact search over each group's distinct risks) maximising pooled \(options.objective.name) subject to \(options.constraint.name)\(violationText); groups below \(options.minGroupSize) rows or without the rates the constraint needs take the fallback, the single best threshold for everyone; decision risk >= threshold"
        if case .minSensitivity(let s) = options.constraint {
            rule = groupFields.isEmpty
                ? "one threshold for everyone: the highest whose TPR on the fitting cohort is >= \(s); decision risk >= threshold"
                : "per-group thresholds on \(groupFields.joined(separator: "|")): each group's highest threshold whose TPR is >= \(s) (best specificity at that sensitivity; \(options.objective.name) is reported, not optimised); groups below \(options.minGroupSize) rows or without positives take the fallback, the highest threshold whose pooled TPR is >= \(s); decision risk >= threshold"
        }
        var doc: [(String, JSONOutput)] = [
            ("schema", .string("vigil.policy/1")),
            ("version", .string(provenance.version)),
        ]
        if let m = provenance.model {
            var binding: [(String, JSONOutput)] = []
            if let name = m.name { binding.append(("name", .string(name))) }
            if let version = m.version { binding.append(("version", .string(version))) }
            binding.append(("sha256", .string(m.sha256)))
            doc.append(("model", .object(binding)))
        }
        if let created = provenance.created { doc.append(("created", .string(created))) }
        doc += [
            ("constraint", .object(constraint)),
            ("objective", .object(objective)),
            ("rule", .string(rule)),
            ("group_fields", .array(groupFields.map { .string($0) })),
            ("min_group_size", .int(options.minGroupSize)),
            ("randomized", .bool(false)),
            ("groups", .object(groupsJSON)),
            ("fallback", .object([("threshold", .number(fallbackThreshold))])),
            ("fitted_on", .object([
                ("rows", .int(rows)), ("positives", .int(positives)), ("sha256", .string(provenance.sha256)),
                ("file", .string(provenance.file)), ("label", .string(provenance.labelColumn)), ("scores", .string(provenance.scores)),
            ])),
        ]
        return .object(doc)
    }

    private var violationText: String {
        switch options.constraint {
        case .none: return ""
        case .minSensitivity(let s): return " (every group's TPR >= \(s), highest such threshold)"
        default: return " (gap <= \(options.tolerance))"
        }
    }
}
