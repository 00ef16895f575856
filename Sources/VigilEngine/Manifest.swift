package import Foundation
@_exported public import VigilCore
@_exported public import VigilGuard
@_exported public import VigilExplain
@_exported public import VigilStatistics
@_exported public import VigilAudit
@_exported public import VigilJSON
@_exported public import VigilFormats

/// A model package's `manifest.json` (docs/FORMATS.md), checked strictly: unknown keys, wrong
/// types, bad ranges and duplicate names are refused with the key's path.
package struct Manifest: Sendable {
    package struct Histogram: Sendable, Equatable {
        package let edges: [Double]
        package let counts: [Double]
        package let missing: Double
    }

    package let name: String
    package let version: String
    package let outcome: String?
    package let task: String
    package let modelFile: String
    package let modelFormat: ModelFormat
    package let modelSHA256: String
    package let idField: String?
    package let features: FeatureSchema
    package let groups: [GroupField]
    package let referenceRows: Int?
    package let featureReference: [String: Histogram]
    package let scoreReference: Histogram?
    /// The out-of-distribution reference (`reference.ood`), if the package carries one.
    package let ood: OODReference?
    /// The image preprocessing contract (`input`, CNN models).
    package let imageInput: ImageInputSpec?
    /// Whether the manifest declares an image input (CNN models).
    package var hasImageInput: Bool { imageInput != nil }
    /// How the features derive from raw, time-stamped observations (`pipeline`), if declared.
    package let pipeline: FeaturePipeline?

    package static let fileName = "manifest.json"

    package init(data: Data, file: String = fileName) throws {
        self = try withPackageJSON(data, file: file) { try Manifest(root: $0) }
    }

    private init(root: JSONNode) throws {
        try root.requireKeys(in: ["schema", "name", "version", "outcome", "task", "model", "id_field", "features", "groups", "reference", "input", "description", "pipeline"])
        let schema = try root["schema"].string()
        guard schema == "vigil.manifest/1" else { throw try root["schema"].fail("'\(Untrusted.quote(schema))' is not a supported manifest schema (vigil.manifest/1 is)") }
        name = try root["name"].string()
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw try root["name"].fail("'\(Untrusted.quote(name))' must be non-empty letters, digits, '-', '_' or '.' (it names the model in URLs and metrics)")
        }
        version = try root["version"].string()
        outcome = try root.optional("outcome")?.string()
        task = try root["task"].string()
        guard ["binary", "multiclass", "regression"].contains(task) else {
            throw try root["task"].fail("'\(Untrusted.quote(task))' is not a task (binary, multiclass, regression)")
        }
        let model = try root["model"]
        try model.requireKeys(in: ["file", "format", "sha256"])
        modelFile = try model["file"].string()
        guard !modelFile.contains("/"), !modelFile.hasPrefix(".") else {
            throw try model["file"].fail("'\(Untrusted.quote(modelFile))' must be a file name inside the package folder")
        }
        // The package digest lists the file as `sha256sum` does (docs/FORMATS.md): a name that
        // sha256sum would escape, or one of the package's own files, cannot be a model file.
        guard !modelFile.isEmpty, !modelFile.contains("\\"), !modelFile.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw try model["file"].fail("'\(Untrusted.quote(modelFile))' must be a non-empty file name without backslashes or control characters")
        }
        guard !PackageDigest.reservedNames.contains(modelFile) else {
            throw try model["file"].fail("'\(Untrusted.quote(modelFile))' is one of the package's own files (\(PackageDigest.reservedNames.sorted().joined(separator: ", "))), not a model file")
        }
        let formatText = try model["format"].string()
        guard let format = ModelFormat(rawValue: formatText) else {
            throw try model["format"].fail("'\(Untrusted.quote(formatText))' is not a model format (\(ModelFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        modelFormat = format
        modelSHA256 = try model["sha256"].string().lowercased()
        // Upper case is accepted (and lowered above); anything but ASCII hex digits is not
        // (Character.isHexDigit also accepts the full-width digits U+FF10...).
        guard Untrusted.isLowercaseHex(modelSHA256, count: 64) else {
            throw try model["sha256"].fail("must be 64 hexadecimal digits")
        }
        idField = try root.optional("id_field")?.string()

        var specs: [FeatureSpec] = []
        for f in try root["features"].array() {
            try f.requireKeys(in: ["name", "type", "unit", "description", "range", "missing_allowed", "mean", "shape", "categories"])
            let kindText = try f["type"].string()
            guard let kind = FeatureSpec.Kind(rawValue: kindText) else {
                throw try f["type"].fail("'\(Untrusted.quote(kindText))' is not a feature type (numeric, integer, binary, categorical, image)")
            }
            var range: ClosedRange<Double>?
            if let r = f.optional("range"), !r.isNull {
                let v = try r.doubles()
                guard v.count == 2, !v[0].isNaN, !v[1].isNaN, v[0] <= v[1] else { throw r.fail("range must be [min, max] with min <= max") }
                range = v[0]...v[1]
            }
            specs.append(FeatureSpec(
                name: try f["name"].string(), kind: kind, unit: try f.optional("unit").flatMap { $0.isNull ? nil : try $0.string() },
                description: try f.optional("description").flatMap { $0.isNull ? nil : try $0.string() }, range: range,
                missingAllowed: try f.optional("missing_allowed").map { try $0.double() != 0 } ?? true,
                mean: try f.optional("mean").flatMap { $0.isNull ? nil : try $0.double() }))
        }
        do {
            features = try FeatureSchema(specs)
        } catch {
            throw try root["features"].fail(error.message)
        }

        var groups: [GroupField] = []
        for g in try root.optional("groups")?.array() ?? [] {
            try g.requireKeys(in: ["name", "source", "field", "map", "other", "missing", "bins", "description"])
            let sourceText = try g["source"].string()
            guard let source = GroupField.Source(rawValue: sourceText) else {
                throw try g["source"].fail("'\(Untrusted.quote(sourceText))' is not a group source (field, feature)")
            }
            let field = try g["field"].string()
            if source == .feature, features.index(of: field) == nil {
                throw try g["field"].fail("group source is feature '\(Untrusted.quote(field))', which is not in features")
            }
            var map: [String: String]?
            if let m = g.optional("map") {
                map = try Dictionary(uniqueKeysWithValues: m.keys.map { ($0, try m[$0].string()) })
            }
            var bins: GroupField.Bins?
            if let b = g.optional("bins") {
                try b.requireKeys(in: ["edges", "labels"])
                do {
                    bins = try GroupField.Bins(edges: try b["edges"].doubles(), labels: try b["labels"].array().map { try $0.string() })
                } catch let e as VigilError where e.kind == .package {
                    throw b.fail(e.message)
                }
            }
            let name = try g["name"].string()
            guard !groups.contains(where: { $0.name == name }) else { throw try g["name"].fail("group '\(Untrusted.quote(name))' appears twice") }
            groups.append(GroupField(
                name: name, source: source, field: field, map: map, other: try g.optional("other")?.string(),
                missingLabel: try g.optional("missing")?.string() ?? "Unknown", bins: bins))
        }
        self.groups = groups

        var featureReference: [String: Histogram] = [:]
        var scoreReference: Histogram?
        var referenceRows: Int?
        if let ref = root.optional("reference") {
            try ref.requireKeys(in: ["rows", "features", "score", "ood"])
            referenceRows = try ref.optional("rows")?.int()
            if let fr = ref.optional("features") {
                for key in fr.keys {
                    guard features.index(of: key) != nil else { throw try fr[key].fail("reference for unknown feature '\(Untrusted.quote(key))'") }
                    featureReference[key] = try Self.histogram(try fr[key])
                }
            }
            if let s = ref.optional("score") { scoreReference = try Self.histogram(s) }
        }
        var ood: OODReference?
        if let o = root.optional("reference")?.optional("ood") {
            let reference = try OODReference(o)
            // An image model's reference measures its penultimate activations (a0, a1, ...).
            for name in reference.features where root.optional("input") == nil && features.index(of: name) == nil {
                throw try o["features"].fail("'\(Untrusted.quote(name))' is not in features")
            }
            ood = reference
        }
        self.ood = ood
        self.featureReference = featureReference
        self.scoreReference = scoreReference
        self.referenceRows = referenceRows
        imageInput = try root.optional("input").map(Self.imageInput)
        let featureSchema = features
        let groupFields = groups.filter { $0.source == .field }.map(\.field)
        pipeline = try root.optional("pipeline").map { try FeaturePipeline($0, schema: featureSchema, groupFields: groupFields) }
        if pipeline != nil, imageInput != nil { throw try root["pipeline"].fail("an image model takes images, not a feature pipeline") }
    }

    /// `input`: {kind: image, shape [C, H, W], channel_order RGB|BGR|L, scale, mean, std,
    /// layout NCHW, resize bilinear|none}.
    private static func imageInput(_ node: JSONNode) throws -> ImageInputSpec {
        try node.requireKeys(in: ["kind", "shape", "channel_order", "scale", "mean", "std", "layout", "resize"])
        let kind = try node["kind"].string()
        guard kind == "image" else { throw try node["kind"].fail("'\(Untrusted.quote(kind))' is not a supported input kind (image is)") }
        let layout = try node.optional("layout")?.string() ?? "NCHW"
        guard layout == "NCHW" else { throw try node["layout"].fail("'\(Untrusted.quote(layout))' is not supported (NCHW is)") }
        let orderText = try node.optional("channel_order")?.string() ?? "RGB"
        guard let order = ImageInputSpec.ChannelOrder(rawValue: orderText) else {
            throw try node["channel_order"].fail("'\(Untrusted.quote(orderText))' is not a channel order (RGB, BGR, L)")
        }
        let resizeText = try node.optional("resize")?.string() ?? "bilinear"
        guard let resize = ImageInputSpec.Resize(rawValue: resizeText) else {
            throw try node["resize"].fail("'\(Untrusted.quote(resizeText))' is not a resize rule (bilinear, none)")
        }
        // Bounded before any size is multiplied: [C, H, W] of at most 2^26 values (e.g. 3x4096x4096).
        let shape = try node["shape"].ints()
        _ = try Untrusted.product(shape.map { max(0, $0) }, limit: 1 << 26, place: "\(node.path): image input shape", what: "values per image")
        do {
            return try ImageInputSpec(
                shape: shape, channelOrder: order, scale: try node.optional("scale")?.double() ?? 1.0 / 255.0,
                mean: try node.optional("mean")?.doubles() ?? [0], std: try node.optional("std")?.doubles() ?? [1], resize: resize)
        } catch let e as VigilError where e.kind == .package {
            throw node.fail(e.message)
        }
    }

    private static func histogram(_ node: JSONNode) throws -> Histogram {
        try node.requireKeys(in: ["edges", "counts", "missing"])
        let edges = try node["edges"].doubles()
        let counts = try node["counts"].doubles()
        guard counts.count == edges.count + 1 else { throw node.fail("\(edges.count) edges need \(edges.count + 1) counts, got \(counts.count)") }
        guard zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) else { throw node.fail("edges must be strictly increasing") }
        return Histogram(edges: edges, counts: counts, missing: try node.optional("missing")?.double() ?? 0)
    }
}

/// Parses a package's JSON file (manifest, policy) and reads it with `body`. Errors in it are
/// the package's (`.package`), not a model file's, whatever the JSON layer calls them.
func withPackageJSON<T>(_ data: Data, file: String, _ body: (JSONNode) throws -> T) throws -> T {
    do {
        return try body(try JSONNode.parse(data, file: file))
    } catch let e as VigilError where e.kind == .modelFormat {
        throw VigilError(.package, e.message)
    }
}

extension Error {
    var message: String { (self as? VigilError)?.message ?? "\(self)" }
}
