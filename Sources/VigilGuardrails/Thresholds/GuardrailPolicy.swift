public import VigilCore

/// A fitted guardrail policy (`policy.json`, docs/FORMATS.md), applied deterministically: a
/// row's group key is its labels for `groupFields` joined with `|`; a key fitted on at least
/// `minGroupSize` rows gives that group's threshold, anything else the explicit fallback. The
/// decision is positive when `risk >= threshold`.
public struct GuardrailPolicy: Sendable, Equatable {
    public struct GroupEntry: Sendable, Equatable {
        public let threshold: Double
        /// Rows of this group in the fitting data (nil when not recorded).
        public let n: Int?
        public let tpr: Double?
        public let fpr: Double?
        public let selectionRate: Double?

        public init(threshold: Double, n: Int?, tpr: Double? = nil, fpr: Double? = nil, selectionRate: Double? = nil) {
            self.threshold = threshold
            self.n = n
            self.tpr = tpr
            self.fpr = fpr
            self.selectionRate = selectionRate
        }
    }

    /// Which policy entry gave a threshold.
    public enum Source: Sendable, Equatable {
        /// The policy has no group fields: its one threshold applies to everyone.
        case global
        case group(String)
        /// A group the policy cannot vouch for: the record carries the reason as a warning.
        case fallback(reason: String)

        public var label: String {
            switch self {
            case .global: return "global"
            case .group(let key): return "group:\(key)"
            case .fallback: return "fallback"
            }
        }
    }

    public let version: String
    /// SHA-256 of the policy file's bytes (empty for the implicit default policy).
    public let sha256: String
    public let constraint: String
    public let objective: String
    public let rule: String
    public let groupFields: [String]
    public let minGroupSize: Int
    public let groups: [String: GroupEntry]
    public let fallbackThreshold: Double
    public let fittedRows: Int?
    public let fittedSHA256: String?

    public init(
        version: String, sha256: String, constraint: String, objective: String, rule: String,
        groupFields: [String], minGroupSize: Int, groups: [String: GroupEntry], fallbackThreshold: Double,
        fittedRows: Int?, fittedSHA256: String?
    ) throws {
        for (key, g) in groups where !(g.threshold.isFinite && g.threshold >= 0 && g.threshold <= 1) {
            throw VigilError(.package, "policy: group '\(key)' threshold \(g.threshold) must be in [0, 1]")
        }
        guard fallbackThreshold.isFinite, fallbackThreshold >= 0, fallbackThreshold <= 1 else {
            throw VigilError(.package, "policy: fallback threshold \(fallbackThreshold) must be in [0, 1]")
        }
        guard minGroupSize >= 0 else { throw VigilError(.package, "policy: min_group_size \(minGroupSize) must be >= 0") }
        self.version = version
        self.sha256 = sha256
        self.constraint = constraint
        self.objective = objective
        self.rule = rule
        self.groupFields = groupFields
        self.minGroupSize = minGroupSize
        self.groups = groups
        self.fallbackThreshold = fallbackThreshold
        self.fittedRows = fittedRows
        self.fittedSHA256 = fittedSHA256
    }

    /// The policy used when a model has none: one global threshold of 0.5.
    public static let defaultHalf = try! GuardrailPolicy(
        version: "default", sha256: "", constraint: "none", objective: "none",
        rule: "no policy.json: a single global threshold of 0.5", groupFields: [], minGroupSize: 0,
        groups: [:], fallbackThreshold: 0.5, fittedRows: nil, fittedSHA256: nil)

    /// The threshold for a group key, and which entry gave it.
    public func threshold(forKey key: String) -> (threshold: Double, source: Source) {
        if groupFields.isEmpty {
            return (fallbackThreshold, .global)
        }
        guard let entry = groups[key] else {
            return (fallbackThreshold, .fallback(reason: "group '\(key)' was not seen when the policy was fitted"))
        }
        if let n = entry.n, n < minGroupSize {
            return (fallbackThreshold, .fallback(reason: "group '\(key)' had \(n) rows at fitting, below the minimum of \(minGroupSize)"))
        }
        return (entry.threshold, .group(key))
    }

    /// Positive when `risk >= threshold`.
    @inlinable
    public static func decide(risk: Double, threshold: Double) -> Bool { risk >= threshold }
}
