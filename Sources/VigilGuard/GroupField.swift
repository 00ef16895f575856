public import VigilCore

/// One group field of a manifest: where its raw value comes from and how it becomes a label.
/// Every value gets a label: a missing value gets `missingLabel`, an unmapped one `other` (or its
/// raw text), so no prediction lands in no group.
public struct GroupField: Sendable, Equatable {
    public enum Source: String, Sendable, Equatable {
        /// A request/input field that is not a model feature (e.g. race, site).
        case field
        /// A model feature (e.g. age in years), read after parsing.
        case feature
    }

    /// Numeric bins: value v gets `labels[i]` where i = number of edges <= v.
    package struct Bins: Sendable, Equatable {
        package let edges: [Double]
        package let labels: [String]

        package init(edges: [Double], labels: [String]) throws {
            guard labels.count == edges.count + 1 else {
                throw VigilError(.package, "bins: \(edges.count) edges need \(edges.count + 1) labels, got \(labels.count)")
            }
            guard edges.allSatisfy(\.isFinite), zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw VigilError(.package, "bins: edges \(edges) must be finite and strictly increasing")
            }
            self.edges = edges
            self.labels = labels
        }

        package func label(_ v: Double) -> String {
            var i = 0
            while i < edges.count, edges[i] <= v { i += 1 }
            return labels[i]
        }
    }

    public let name: String
    public let source: Source
    /// The input field or feature name the raw value is read from.
    public let field: String
    package let map: [String: String]?
    package let other: String?
    public let missingLabel: String
    package let bins: Bins?

    package init(
        name: String, source: Source, field: String, map: [String: String]? = nil, other: String? = nil,
        missingLabel: String = "Unknown", bins: Bins? = nil
    ) {
        self.name = name
        self.source = source
        self.field = field
        self.map = map
        self.other = other
        self.missingLabel = missingLabel
        self.bins = bins
    }

    /// The label for a raw text value (`nil` or empty = missing).
    package func label(raw: String?) -> String {
        guard let raw, !raw.isEmpty, !MissingValues.isMissingToken(raw) else { return missingLabel }
        if let bins {
            guard let v = Double(raw), !v.isNaN else { return other ?? missingLabel }
            return bins.label(v)
        }
        if let map { return map[raw] ?? numericLabel(raw, map) ?? other ?? raw }
        return raw
    }

    /// The label of the `map` key that is the same number as `raw` (`1.0` finds `1`: sites write
    /// one code both ways), nil when `raw` is not a number or no key equals it (keys in sorted
    /// order, so two keys of one number resolve the same way every time).
    func numericLabel(_ raw: String, _ map: [String: String]) -> String? {
        guard let key = Self.numberKey(raw) else { return nil }
        return map.keys.sorted().first { Self.numberKey($0) == key }.flatMap { map[$0] }
    }

    /// The canonical text of a raw value that is a plain decimal number (`1.0` -> `1`,
    /// `0.50` -> `0.5`), nil for anything else (codes with letters, `inf`, hexadecimal).
    static func numberKey(_ s: String) -> String? {
        let t = s
        guard !t.isEmpty, t.utf8.count <= 40, t.unicodeScalars.allSatisfy({ "0123456789.-+eE".unicodeScalars.contains($0) }),
              let v = Double(t), v.isFinite else { return nil }
        return MissingValues.canonicalText(v)
    }

    /// The label for a numeric feature value (NaN = missing).
    package func label(value: Double) -> String {
        guard !value.isNaN else { return missingLabel }
        if let bins { return bins.label(value) }
        return label(raw: MissingValues.canonicalText(value))
    }
}

/// The tokens that mean "missing" in input files, and how numbers print as raw group values.
package enum MissingValues {
    /// Empty, `NaN` (any case), `NA` and `?`.
    package static func isMissingToken(_ s: some StringProtocol) -> Bool {
        s.isEmpty || s == "NA" || s == "?" || s.lowercased() == "nan"
    }

    /// The shortest decimal text of a number: integral values without a fraction (`0`, `1`),
    /// others as Swift prints them (`0.5`).
    package static func canonicalText(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
