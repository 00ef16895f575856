public import VigilCore

/// A fitted guardrail policy (`policy.json`, docs/FORMATS.md): a row's group key is its labels
/// for `groupFields` joined with `|` (several fields make an intersection, `White|Female`); a key
/// fitted on at least `minGroupSize` rows gives that group's threshold, anything else the
/// explicit fallback. The decision is positive when `risk >= threshold`.
///
/// Deterministic unless the file says `randomized` with a seed: then a group entry may carry a
/// `mixture` (a second threshold and its probability), and which of the two thresholds a record
/// gets is a pure function of its id and the seed (`MixtureDraw`), so re-scoring a record gives
/// the same decision, and the record is flagged as randomized.
public struct GuardrailPolicy: Sendable, Equatable {
    package struct GroupEntry: Sendable, Equatable {
        package let threshold: Double
        /// Rows of this group in the fitting data (nil when not recorded).
        package let n: Int?
        package let tpr: Double?
        package let fpr: Double?
        package let selectionRate: Double?
        package let positives: Int?
        package let negatives: Int?
        /// Set when the fit could not vouch for this group (e.g. no positives, so its TPR was
        /// undefined): the group gets the fallback threshold and the record says why.
        package let fallbackReason: String?
        /// A randomized two-threshold mixture (only in randomized policies).
        package let mixture: Mixture?

        package init(
            threshold: Double, n: Int?, tpr: Double? = nil, fpr: Double? = nil, selectionRate: Double? = nil,
            positives: Int? = nil, negatives: Int? = nil, fallbackReason: String? = nil, mixture: Mixture? = nil
        ) {
            self.threshold = threshold
            self.n = n
            self.tpr = tpr
            self.fpr = fpr
            self.selectionRate = selectionRate
            self.positives = positives
            self.negatives = negatives
            self.fallbackReason = fallbackReason
            self.mixture = mixture
        }
    }

    /// With probability `probability` a record uses `threshold` instead of its group's main one.
    package struct Mixture: Sendable, Equatable {
        package let threshold: Double
        package let probability: Double

        package init(threshold: Double, probability: Double) {
            self.threshold = threshold
            self.probability = probability
        }
    }

    /// The threshold a record gets, which entry gave it, and whether a seeded draw chose it.
    package struct Resolution: Sendable, Equatable {
        package let threshold: Double
        package let source: Source
        package let randomized: Bool

        package init(threshold: Double, source: Source, randomized: Bool) {
            self.threshold = threshold
            self.source = source
            self.randomized = randomized
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

    /// The model a policy was fitted for (`model` in policy.json): the SHA-256 of the model
    /// file whose risks the thresholds were fitted on, and that model's name and version as the
    /// fit saw them. Loading the policy against a model file of another SHA-256 is refused.
    package struct ModelBinding: Sendable, Equatable {
        package let name: String?
        package let version: String?
        /// 64 lowercase hex digits.
        package let sha256: String

        package init(name: String?, version: String?, sha256: String) {
            self.name = name
            self.version = version
            self.sha256 = sha256
        }

        /// `'readmission' 1.0.0 (sha256 <64 hex>)`, for messages.
        package var description: String {
            var s = name.map { "'\(Untrusted.quote($0))'" } ?? "a model"
            if let version { s += " \(Untrusted.quote(version))" }
            return s + " (sha256 \(sha256))"
        }
    }

    public let version: String
    /// SHA-256 of the policy file's bytes (empty for the implicit default policy).
    public let sha256: String
    package let constraint: String
    package let objective: String
    package let rule: String
    public let groupFields: [String]
    package let minGroupSize: Int
    package let groups: [String: GroupEntry]
    public let fallbackThreshold: Double
    package let fittedRows: Int?
    package let fittedSHA256: String?
    /// `fitted_on.file`: the name of the file the thresholds were fitted on, as recorded.
    package let fittedFile: String?
    /// The seed of a randomized policy; nil for a deterministic one.
    package let randomizationSeed: UInt64?
    /// The model the policy was fitted for; nil for a policy that names none (written before
    /// bindings, or fitted from a scores column) and for the implicit default policy.
    package let modelBinding: ModelBinding?

    package init(
        version: String, sha256: String, constraint: String, objective: String, rule: String,
        groupFields: [String], minGroupSize: Int, groups: [String: GroupEntry], fallbackThreshold: Double,
        fittedRows: Int?, fittedSHA256: String?, randomizationSeed: UInt64? = nil, modelBinding: ModelBinding? = nil, fittedFile: String? = nil
    ) throws {
        for (key, g) in groups where !(g.threshold.isFinite && g.threshold >= 0 && g.threshold <= 1) {
            throw VigilError(.package, "policy: group '\(key)' threshold \(g.threshold) must be in [0, 1]")
        }
        for (key, g) in groups {
            guard let m = g.mixture else { continue }
            guard randomizationSeed != nil else {
                throw VigilError(.package, "policy: group '\(key)' has a mixture but the policy is not randomized (set \"randomized\": {\"seed\": N})")
            }
            guard m.threshold.isFinite, m.threshold >= 0, m.threshold <= 1 else {
                throw VigilError(.package, "policy: group '\(key)' mixture threshold \(m.threshold) must be in [0, 1]")
            }
            guard m.probability.isFinite, m.probability >= 0, m.probability <= 1 else {
                throw VigilError(.package, "policy: group '\(key)' mixture probability \(m.probability) must be in [0, 1]")
            }
        }
        for key in groups.keys where groupFields.count > 0 && key.split(separator: "|", omittingEmptySubsequences: false).count != groupFields.count {
            throw VigilError(.package, "policy: group key '\(key)' needs \(groupFields.count) labels joined by '|' (one per group field: \(groupFields.joined(separator: ", ")))")
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
        self.fittedFile = fittedFile
        self.randomizationSeed = randomizationSeed
        self.modelBinding = modelBinding
    }

    /// The policy used when a model has none: one global threshold of 0.5.
    package static let defaultHalf = try! GuardrailPolicy(
        version: "default", sha256: "", constraint: "none", objective: "none",
        rule: "no policy.json: a single global threshold of 0.5", groupFields: [], minGroupSize: 0,
        groups: [:], fallbackThreshold: 0.5, fittedRows: nil, fittedSHA256: nil)

    /// The threshold for a group key, and which entry gave it.
    package func threshold(forKey key: String) -> (threshold: Double, source: Source) {
        if groupFields.isEmpty {
            return (fallbackThreshold, .global)
        }
        guard let entry = groups[key] else {
            return (fallbackThreshold, .fallback(reason: "group '\(key)' was not seen when the policy was fitted"))
        }
        if let n = entry.n, n < minGroupSize {
            return (fallbackThreshold, .fallback(reason: "group '\(key)' had \(n) rows at fitting, below the minimum of \(minGroupSize)"))
        }
        if let reason = entry.fallbackReason {
            return (fallbackThreshold, .fallback(reason: "group '\(key)': \(reason)"))
        }
        return (entry.threshold, .group(key))
    }

    /// The threshold for a record: its group's (or the fallback), and in a randomized policy the
    /// group's mixture threshold when the record's seeded draw falls below the mixture probability.
    package func resolve(key: String, recordID: String) -> Resolution {
        let (t, source) = threshold(forKey: key)
        guard let seed = randomizationSeed, case .group = source, let m = groups[key]?.mixture else {
            return Resolution(threshold: t, source: source, randomized: false)
        }
        let u = MixtureDraw.unit(id: recordID, seed: seed)
        return Resolution(threshold: u < m.probability ? m.threshold : t, source: source, randomized: true)
    }

    /// Positive when `risk >= threshold`.
    @inlinable
    package static func decide(risk: Double, threshold: Double) -> Bool { risk >= threshold }
}

/// The seeded draw of a randomized policy: `u = (splitmix64(fnv1a64(UTF-8 of id) ^ seed) >> 11)
/// / 2^53` (`SplitMix64(seed:).unit()`, the generator's first output), uniform in [0, 1). FNV-1a (64-bit: offset 0xcbf29ce484222325, prime 0x100000001b3)
/// spreads the id; the SplitMix64 finaliser mixes in the seed. The same id and seed always give
/// the same draw, on every machine; distinct ids give independent-looking draws. Ids must be
/// unique per patient decision for the mixture's probabilities to hold over a cohort.
package enum MixtureDraw {
    package static func unit(id: String, seed: UInt64) -> Double {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        // The first output of SplitMix64 seeded with the id's hash mixed with the seed.
        var g = SplitMix64(seed: h ^ seed)
        return g.unit()
    }
}
