/// What a model's input columns are. Built from a manifest when there is one, or from the model
/// file's own feature names (or positions) for a bare model file.
public struct FeatureSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, Codable {
        case numeric, integer, binary, categorical, image
    }

    public var name: String
    public var kind: Kind
    public var unit: String?
    public var description: String?
    /// Inclusive valid range from the training data; a value outside is scored with a warning.
    public var range: ClosedRange<Double>?
    /// Whether a missing value is expected. When false, a missing value is scored (the model
    /// routes it as it was trained to) and the record carries a warning.
    public var missingAllowed: Bool
    /// Training mean, ignoring missing values (linear SHAP's expectation).
    public var mean: Double?

    package init(
        name: String, kind: Kind = .numeric, unit: String? = nil, description: String? = nil,
        range: ClosedRange<Double>? = nil, missingAllowed: Bool = true, mean: Double? = nil
    ) {
        self.name = name
        self.kind = kind
        self.unit = unit
        self.description = description
        self.range = range
        self.missingAllowed = missingAllowed
        self.mean = mean
    }
}

public struct FeatureSchema: Sendable, Equatable {
    public let features: [FeatureSpec]
    private let indexByName: [String: Int]

    package init(_ features: [FeatureSpec]) throws(VigilError) {
        var index: [String: Int] = [:]
        for (i, f) in features.enumerated() {
            guard !f.name.isEmpty else {
                throw VigilError(.package, "feature \(i): the name is empty")
            }
            if let first = index[f.name] {
                throw VigilError(.package, "feature '\(f.name)' appears twice (positions \(first) and \(i)); names must be unique")
            }
            index[f.name] = i
        }
        self.features = features
        self.indexByName = index
    }

    /// Features named `f0, f1, ...` for a model file that names none.
    package static func positional(count: Int) -> FeatureSchema {
        // Names are unique by construction.
        try! FeatureSchema((0..<count).map { FeatureSpec(name: "f\($0)") })
    }

    public var count: Int { features.count }
    public var names: [String] { features.map(\.name) }
    public func index(of name: String) -> Int? { indexByName[name] }
}
