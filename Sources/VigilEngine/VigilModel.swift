public import Foundation
internal import VigilKernels

/// A model ready to score: the IR, its feature schema, group fields and guardrail policy.
/// The public entry point of the engine: `VigilModel.load(path:)`, then `score(_:)`.
public final class VigilModel: Sendable {
    public let name: String
    public let version: String
    public let format: ModelFormat
    /// SHA-256 of the model file, checked against the manifest on load.
    public let sha256: String
    package let modelURL: URL
    package let ir: ModelIR
    public let schema: FeatureSchema
    public let groups: [GroupField]
    public let policy: GuardrailPolicy
    package let manifest: Manifest?
    /// The files of the package as loaded (manifest, model file, the policy applied, model
    /// card) and their one digest (`PackageDigest`); nil for a bare model file.
    package let packageContents: PackageDigest?
    /// The package digest (docs/FORMATS.md, "Package digest"): SHA-256 over the manifest, model
    /// file, policy and model card; nil for a bare model file, which has only `sha256`.
    public var packageDigest: String? { packageContents?.hex }
    /// Things the user should know about how the model was loaded (no manifest, no policy).
    public let loadWarnings: [String]
    /// The input column that identifies a row (`id_field` in the manifest, else `id`).
    public let idField: String
    /// For each policy group field, its index in `groups`.
    let policyGroupIndices: [Int]

    /// The features with a manifest reference histogram: their index in the schema, name and
    /// edges (what drift and site histograms count in).
    /// The out-of-distribution guard of the manifest's `reference.ood`, if it has one: on the
    /// features (tabular models) or on the penultimate layer's activations (image models).
    package var oodGuard: OODGuard? { oodGuardStorage }
    let oodGuardStorage: OODGuard?
    /// Image models: the net up to its classifier head (`ConvNet.penultimate`), whose outputs the
    /// guard measures; nil for tabular models and nets without a Gemm/MatMul head.
    package let activationNet: ConvNet?

    /// The names of the penultimate activations (`a0`, `a1`, ...), as `reference.ood` lists them.
    package static func activationNames(_ count: Int) -> [String] { (0..<count).map { "a\($0)" } }

    /// The penultimate activations of `count` preprocessed images (`count x k`), in Double.
    package func activations(_ tensors: UnsafePointer<Float>, count: Int, threads: Int = 1) -> [Double] {
        guard let net = activationNet else { return [] }
        var out = [Float](repeating: 0, count: count * net.outputCount)
        out.withUnsafeMutableBufferPointer { net.predict(tensors, samples: count, into: $0.baseAddress!, threads: threads) }
        return out.map(Double.init)
    }

    /// The manifest's feature pipeline (raw observations -> features), if it declares one.
    package var pipeline: FeaturePipeline? { manifest?.pipeline }

    package var featureReferences: [(index: Int, name: String, edges: [Double])] {
        schema.names.enumerated().compactMap { j, name in manifest?.featureReference[name].map { (j, name, $0.edges) } }
    }

    /// The policy's key of a row's group labels (all manifest groups, in order): the labels of
    /// the policy's group fields joined by `|` (`Female|40-59`), as thresholds are looked up.
    package func policyKey(_ labels: [String]) -> String {
        policyGroupIndices.map { $0 < labels.count ? labels[$0] : "" }.joined(separator: "|")
    }
    /// How image files become the input tensor (CNN models taking `[C, H, W]` images); nil for
    /// tabular models.
    public let imageInput: ImageInputSpec?
    /// The model's attribution method, built at load (TreeSHAP's cover shares, depths and path
    /// sizes; linear SHAP's base values from the manifest means), or why the model cannot be
    /// explained (a tree file without node covers). Only `score(_:explain: true)` needs it.
    public let explainer: Result<Explainer, VigilError>

    init(
        name: String, version: String, format: ModelFormat, sha256: String, modelURL: URL, ir: ModelIR,
        schema: FeatureSchema, groups: [GroupField], policy: GuardrailPolicy, manifest: Manifest?,
        loadWarnings: [String], idField: String, imageInput: ImageInputSpec? = nil, packageContents: PackageDigest? = nil
    ) throws {
        self.packageContents = packageContents
        self.imageInput = imageInput
        self.name = name
        self.version = version
        self.format = format
        self.sha256 = sha256
        self.modelURL = modelURL
        self.ir = ir
        self.schema = schema
        self.groups = groups
        self.policy = policy
        self.manifest = manifest
        self.loadWarnings = loadWarnings
        self.idField = idField
        if imageInput != nil, case .convNet(let net, _) = ir, let pen = net.penultimate() {
            activationNet = pen
            let names = try FeatureSchema(Self.activationNames(pen.outputCount).map { FeatureSpec(name: $0) })
            oodGuardStorage = try manifest?.ood.map { try OODGuard($0, schema: names) }
        } else {
            activationNet = nil
            oodGuardStorage = imageInput != nil ? nil : try manifest?.ood.map { try OODGuard($0, schema: schema) }
        }
        do {
            explainer = .success(try Explainer(model: ir, means: schema.features.map(\.mean), imageInput: imageInput))
        } catch {
            explainer = .failure(error)
        }
        policyGroupIndices = try policy.groupFields.map { field in
            guard let i = groups.firstIndex(where: { $0.name == field }) else {
                throw VigilError(.package, "policy.json: group field '\(field)' is not one of the manifest's groups (\(groups.map(\.name).joined(separator: ", ")))")
            }
            return i
        }
    }

    /// Loads a model package folder (manifest.json + model file + policy.json) or a bare model file.
    /// A policy fitted for another model (its `model.sha256` is not the model file's) is refused.
    public static func load(path: String) throws -> VigilModel {
        try load(path: path, policy: .packageFile)
    }

    /// Which policy a load attaches to the model.
    package enum PolicySource: Sendable, Equatable {
        /// The package's own `policy.json` (none for a bare model file).
        case packageFile
        /// This file instead (`--policy`): checked against the model like a package's own, and
        /// in the package digest in place of the package's `policy.json`.
        case file(String)
        /// No policy (the 0.5 default, without a warning): for `vigil fit-thresholds`, which
        /// writes a new one and must not be stopped by a stale policy bound to an older model.
        case skipped
    }

    package static func load(path: String, policy: PolicySource) throws -> VigilModel {
        BLAS.setThreads(1)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw VigilError(.io, "\(path): no such file or folder")
        }
        return isDir.boolValue ? try loadPackage(URL(fileURLWithPath: path), policySource: policy) : try loadBare(URL(fileURLWithPath: path), policySource: policy)
    }

    private static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw VigilError(.io, "\(url.path): cannot read the file (\(error.localizedDescription))")
        }
    }

    private static func loadPackage(_ dir: URL, policySource: PolicySource) throws -> VigilModel {
        let manifestURL = dir.appendingPathComponent(Manifest.fileName)
        guard FileManager.default.fileExists(atPath: manifestURL.path) else {
            throw VigilError(.package, "\(dir.path): a model package folder needs a manifest.json (or pass the model file itself)")
        }
        let manifestData = try read(manifestURL)
        let manifest = try Manifest(data: manifestData, file: manifestURL.path)
        let modelURL = dir.appendingPathComponent(manifest.modelFile)
        let data = try read(modelURL)
        let digest = SHA256Digest.hex(of: data)
        guard digest == manifest.modelSHA256 else {
            throw VigilError(.package, "\(modelURL.path): SHA-256 is \(digest) but manifest.json says \(manifest.modelSHA256); the model file is not the one the manifest describes")
        }
        let (ir, format) = try ModelFileLoader.load(data: data, fileName: modelURL.path, expected: manifest.modelFormat)
        guard ir.objective.taskName == manifest.task else {
            throw VigilError(.package, "manifest.json: task '\(manifest.task)' but the model file is \(ir.objective.summary)")
        }
        if let image = manifest.imageInput {
            try checkImageInput(image, manifest: manifest, ir: ir)
        } else if case .convNet(let net, _) = ir, net.sampleInputShape.count == 3 {
            throw VigilError(.package, "manifest.json: the model takes images \(net.sampleInputShape) but the manifest has no `input` object (kind image, shape, channel_order, scale, mean, std)")
        } else {
            guard manifest.features.count == ir.featureCount else {
                throw VigilError(.package, "manifest.json lists \(manifest.features.count) features but the model file has \(ir.featureCount)")
            }
        }
        if let names = ir.featureNames {
            for (i, (a, b)) in zip(manifest.features.names, names).enumerated() where a != b {
                throw VigilError(.package, "manifest.json feature \(i) is '\(a)' but the model file names it '\(b)'; the order must match the model's")
            }
        }
        var warnings: [String] = []
        var files = [PackageDigest.File(path: Manifest.fileName, sha256: SHA256Digest.hex(of: manifestData)),
                     PackageDigest.File(path: manifest.modelFile, sha256: digest)]
        let policy: GuardrailPolicy
        let policyURL: URL? = switch policySource {
        case .packageFile: dir.appendingPathComponent(PackageDigest.policyFile)
        case .file(let path): URL(fileURLWithPath: path)
        case .skipped: nil
        }
        if let policyURL, policySource != .packageFile || FileManager.default.fileExists(atPath: policyURL.path) {
            policy = try attachPolicy(policyURL, name: manifest.name, version: manifest.version, modelURL: modelURL, sha256: digest, warnings: &warnings)
            files.append(PackageDigest.File(path: PackageDigest.policyFile, sha256: policy.sha256))
        } else {
            policy = .defaultHalf
            if policySource == .packageFile, case .binaryLogistic = ir.objective {
                warnings.append("no policy.json in \(dir.path): a single global threshold of 0.5 applies")
            }
        }
        let cardURL = dir.appendingPathComponent(PackageDigest.modelCardFile)
        if FileManager.default.fileExists(atPath: cardURL.path) {
            files.append(PackageDigest.File(path: PackageDigest.modelCardFile, sha256: try SHA256Digest.hex(ofFileAt: cardURL)))
        }
        return try VigilModel(
            name: manifest.name, version: manifest.version, format: format, sha256: digest, modelURL: modelURL,
            ir: ir, schema: manifest.features, groups: manifest.groups, policy: policy, manifest: manifest,
            loadWarnings: warnings, idField: manifest.idField ?? "id", imageInput: manifest.imageInput,
            packageContents: PackageDigest(files: files))
    }

    /// Reads a policy file and checks that it may decide for this model file
    /// (`GuardrailPolicy.checkBinding`): refused when bound to another SHA-256, a warning when
    /// bound to none.
    private static func attachPolicy(_ url: URL, name: String, version: String, modelURL: URL, sha256: String, warnings: inout [String]) throws -> GuardrailPolicy {
        let policy = try GuardrailPolicy.load(data: try read(url), file: url.path)
        if let note = try policy.checkBinding(policyFile: url.path, modelName: name, modelVersion: version, modelFile: modelURL.path, modelSHA256: sha256) {
            warnings.append(note)
        }
        return policy
    }

    /// An image manifest must describe the model's own input: one image feature, and the
    /// `input` shape equal to the net's `[C, H, W]`.
    private static func checkImageInput(_ image: ImageInputSpec, manifest: Manifest, ir: ModelIR) throws {
        guard case .convNet(let net, _) = ir else {
            throw VigilError(.package, "manifest.json declares an image input but the model file is not a CNN (\(ir.objective.summary))")
        }
        guard net.sampleInputShape == image.shape else {
            throw VigilError(.package, "manifest.json: input shape \(image.shape) but the model's input '\(net.tensors[net.input].name)' takes \(net.sampleInputShape) per image")
        }
        guard manifest.features.count == 1, manifest.features.features[0].kind == .image else {
            throw VigilError(.package, "manifest.json: an image model lists exactly one feature, of type image (found \(manifest.features.names))")
        }
    }

    private static func loadBare(_ url: URL, policySource: PolicySource) throws -> VigilModel {
        if [Manifest.fileName, "policy.json"].contains(url.lastPathComponent) {
            throw VigilError(.usage, "\(url.path): this is a package's \(url.lastPathComponent), not a model file; give the package folder (\(url.deletingLastPathComponent().path)) or the model file itself")
        }
        let data = try read(url)
        let (ir, format) = try ModelFileLoader.load(data: data, fileName: url.path)
        var schema: FeatureSchema
        var warnings = ["no manifest: features are \(ir.featureNames == nil ? "positional (f0, f1, ...)" : "named by the model file"), no valid ranges are checked, no groups are assigned"]
        if let names = ir.featureNames {
            schema = try FeatureSchema(names.map { FeatureSpec(name: $0) })
        } else {
            schema = .positional(count: ir.featureCount)
        }
        var imageInput: ImageInputSpec?
        if case .convNet(let net, _) = ir, net.sampleInputShape.count == 3 {
            imageInput = try ImageInputSpec.unnormalized(shape: net.sampleInputShape)
            schema = try FeatureSchema([FeatureSpec(name: "image", kind: .image, missingAllowed: false)])
            warnings = ["no manifest: images are decoded as \(imageInput!.channelOrder.rawValue), scaled to [0, 1] with no mean/std normalisation, resized to \(net.sampleInputShape) if needed; no groups are assigned"]
        }
        let stem = url.deletingPathExtension().lastPathComponent
        let digest = SHA256Digest.hex(of: data)
        var policy = GuardrailPolicy.defaultHalf
        if case .file(let path) = policySource {
            policy = try attachPolicy(URL(fileURLWithPath: path), name: stem, version: "unversioned", modelURL: url, sha256: digest, warnings: &warnings)
        } else if policySource == .packageFile, case .binaryLogistic = ir.objective {
            warnings.append("no policy: a single global threshold of 0.5 applies")
        }
        return try VigilModel(
            name: stem, version: "unversioned", format: format, sha256: digest, modelURL: url,
            ir: ir, schema: schema, groups: [], policy: policy, manifest: nil, loadWarnings: warnings,
            idField: "id", imageInput: imageInput)
    }

    /// The same model with its features named `names` (in model order): for a bare model file
    /// whose features have no names or other names than the cohort's header (skl2onnx's
    /// `float_input`, LightGBM's `Column_0...`). Throws unless there is one distinct, non-empty
    /// name per feature; image models and groups read from a feature keep their names.
    package func renamingFeatures(_ names: [String]) throws -> VigilModel {
        guard imageInput == nil else {
            throw VigilError(.usage, "--feature-names: \(name) takes images; its features cannot be renamed")
        }
        guard names.count == schema.count else {
            throw VigilError(.usage, "--feature-names: \(names.count) names for a model of \(schema.count) features (\(schema.names.prefix(8).joined(separator: ", "))\(schema.count > 8 ? ", ..." : ""))")
        }
        if let g = groups.first(where: { $0.source == .feature }) {
            throw VigilError(.usage, "--feature-names: group '\(g.name)' reads feature '\(g.field)'; rename the features in manifest.json instead")
        }
        var specs = schema.features
        for j in specs.indices {
            let n = names[j].trimmingCharacters(in: .whitespaces)
            guard !n.isEmpty else { throw VigilError(.usage, "--feature-names: name \(j + 1) is empty") }
            specs[j].name = n
        }
        let renamed: FeatureSchema
        do { renamed = try FeatureSchema(specs) } catch { throw VigilError(.usage, "--feature-names: \(error.message)") }
        return try VigilModel(
            name: name, version: version, format: format, sha256: sha256, modelURL: modelURL, ir: ir, schema: renamed,
            groups: groups, policy: policy, manifest: manifest, loadWarnings: loadWarnings, idField: idField, imageInput: imageInput,
            packageContents: packageContents)
    }

    /// Whether records carry a threshold and decision (binary models).
    public var makesDecisions: Bool {
        if case .binaryLogistic = ir.objective { return true }
        return false
    }

    /// Output column names: `risk`, `risk_<k>` per class, or `prediction`.
    public var outputNames: [String] {
        switch ir.objective {
        case .binaryLogistic: return ["risk"]
        case .multiclassSoftmax(let k): return (0..<k).map { "risk_\($0)" }
        case .regression: return ["prediction"]
        }
    }
}

extension VigilModel {
    /// The names attributions are reported under, one per model input value: the schema's
    /// feature names for a tabular model; for an image model one per tensor element,
    /// `<channel>_<row>_<column>` (`R_12_5`, channels named by the manifest's channel order, or
    /// `c0`, `c1`, ... when it has none that fits), safe as CSV column names.
    public var attributionNames: [String] {
        guard let image = imageInput else { return schema.names }
        let letters = image.channelOrder.rawValue.map(String.init)
        let channels = letters.count == image.channels ? letters : (0..<image.channels).map { "c\($0)" }
        var names: [String] = []
        names.reserveCapacity(image.count)
        for c in channels {
            for y in 0..<image.height {
                for x in 0..<image.width { names.append("\(c)_\(y)_\(x)") }
            }
        }
        return names
    }
}
