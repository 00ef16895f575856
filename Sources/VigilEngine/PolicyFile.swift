public import Foundation
package import VigilFormats

extension GuardrailPolicy {
    /// Reads `policy.json` (docs/FORMATS.md), strictly.
    public static func load(data: Data, file: String = "policy.json") throws -> GuardrailPolicy {
        let root: JSONNode
        do {
            root = try JSONNode.parse(data, file: file)
        } catch let e as VigilError {
            throw VigilError(.package, e.message)
        }
        do {
            try root.requireKeys(in: ["schema", "version", "constraint", "objective", "rule", "group_fields", "min_group_size", "groups", "fallback", "fitted_on", "randomized", "created", "tolerance"])
            let schema = try root["schema"].string()
            guard schema == "vigil.policy/1" else { throw try root["schema"].fail("'\(schema)' is not a supported policy schema (vigil.policy/1 is)") }
            var groups: [String: GroupEntry] = [:]
            if let g = root.optional("groups") {
                for key in g.keys {
                    let e = try g[key]
                    try e.requireKeys(in: ["threshold", "n", "tpr", "fpr", "selection_rate", "positives", "negatives"])
                    groups[key] = GroupEntry(
                        threshold: try e["threshold"].double(), n: try e.optional("n")?.int(),
                        tpr: try e.optional("tpr").flatMap { $0.isNull ? nil : try $0.double() },
                        fpr: try e.optional("fpr").flatMap { $0.isNull ? nil : try $0.double() },
                        selectionRate: try e.optional("selection_rate").flatMap { $0.isNull ? nil : try $0.double() })
                }
            }
            let fallback = try root["fallback"]
            let fitted = root.optional("fitted_on")
            func kind(_ key: String) throws -> String {
                guard let node = root.optional(key) else { return "none" }
                if case .string(let s) = node.value { return s }
                return try node["kind"].string()
            }
            if let randomized = root.optional("randomized"), try randomized.double() != 0 {
                throw randomized.fail("randomized policies are not supported yet; refit with a deterministic policy")
            }
            return try GuardrailPolicy(
                version: try root["version"].string(), sha256: SHA256Digest.hex(of: data),
                constraint: try kind("constraint"), objective: try kind("objective"),
                rule: try root.optional("rule")?.string() ?? "",
                groupFields: try root.optional("group_fields")?.array().map { try $0.string() } ?? [],
                minGroupSize: try root.optional("min_group_size")?.int() ?? 0, groups: groups,
                fallbackThreshold: try fallback["threshold"].double(),
                fittedRows: try fitted?.optional("rows")?.int(), fittedSHA256: try fitted?.optional("sha256")?.string())
        } catch let e as VigilError where e.kind == .modelFormat {
            throw VigilError(.package, e.message)
        }
    }
}
