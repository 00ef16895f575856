import VigilCore

/// One group's labelled, scored and decided rows, sorted once by risk (descending, ties in input
/// order) so that every metric, and every bootstrap replicate, is one linear pass. A replicate
/// is a vector of multiplicities (`weights`) over these rows rather than a resorted copy.
package struct LabelledScores: Sendable {
    /// Risks, descending.
    package let risks: [Double]
    package let labels: [Bool]
    /// The decision each row got (`risk >= its threshold`).
    package let decisions: [Bool]
    /// For each sorted position, the row's index in the caller's input.
    package let rows: [Int]

    /// `risks`, `labels`, `decisions` are parallel arrays in input order; `rowIndices` their
    /// indices in the whole cohort (default: 0..<count). Risks must be finite and in [0, 1].
    package init(risks: [Double], labels: [Bool], decisions: [Bool], rowIndices: [Int]? = nil) throws {
        guard risks.count == labels.count, risks.count == decisions.count else {
            throw VigilError(.input, "metrics: \(risks.count) risks, \(labels.count) labels and \(decisions.count) decisions must have one entry per row")
        }
        if let bad = risks.firstIndex(where: { !($0.isFinite && $0 >= 0 && $0 <= 1) }) {
            throw VigilError(.input, "metrics: risk \(risks[bad]) of row \(bad + 1) is not a probability in [0, 1]")
        }
        let order = risks.indices.sorted { risks[$0] > risks[$1] || (risks[$0] == risks[$1] && $0 < $1) }
        self.risks = order.map { risks[$0] }
        self.labels = order.map { labels[$0] }
        self.decisions = order.map { decisions[$0] }
        let base = rowIndices ?? Array(risks.indices)
        self.rows = order.map { base[$0] }
    }

    package var count: Int { risks.count }
}
