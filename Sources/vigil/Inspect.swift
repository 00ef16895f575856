import ArgumentParser
import Foundation
import VigilEngine

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model: format, objective, trees and leaves or coefficients, features, SHA-256, policy.")

    @Option(name: .long, help: "Model package folder or bare model file.")
    var model: String

    @Option(name: .long, help: "A policy.json to apply instead of the package's own (or to a bare model file); refused when it names another model's SHA-256.")
    var policy: String?

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        try runReportingErrors {
            let m = try VigilModel.load(path: model, policy: policy.map { VigilModel.PolicySource.file($0) } ?? .packageFile)
            var notes: [String: String] = [:]
            var facts: [(String, String)] = [
                ("name", m.name), ("version", m.version), ("file", m.modelURL.path),
                ("format", m.format.displayName), ("sha256", m.sha256), ("objective", m.ir.objective.summary),
                ("features", String(m.schema.count)),
            ]
            switch m.ir {
            case .trees(let t):
                facts += [("trees", String(t.treeCount)), ("leaves", String(t.leafCount)), ("max depth", String(t.maxDepth)),
                          ("base margin", t.baseMargin.map { "\($0)" }.joined(separator: ", "))]
                if t.divisor != 1 { facts.append(("averaging", "sum / \(t.divisor)")) }
                notes = t.notes
            case .linear(let l):
                facts.append(("outputs", String(l.outputCount)))
                facts.append(("intercepts", l.intercepts.map { "\($0)" }.joined(separator: ", ")))
            case .convNet(let net, _):
                facts += graphFacts(net, image: m.imageInput)
                notes = net.notes
            }
            // What the loader noted (a file's own format line, folding counts): shown after the
            // facts, a key already used by a fact shown as "KEY (file)", so that no key repeats
            // (a repeated key trapped Dictionary(uniqueKeysWithValues:) below).
            var used = Set(facts.map(\.0))
            for (k, v) in notes.sorted(by: { $0.key < $1.key }) {
                var key = k
                while used.contains(key) { key += " (file)" }
                used.insert(key)
                facts.append((key, v))
            }
            facts.append(("policy", "\(m.policy.version) (\(m.policy.rule.isEmpty ? m.policy.constraint : m.policy.rule))"))
            facts.append(("policy sha256", m.policy.sha256.isEmpty ? "none (no policy file)" : m.policy.sha256))
            facts.append(("policy fitted for", policyBindingText(m)))
            facts.append(("fallback threshold", "\(m.policy.fallbackThreshold)"))
            facts.append(("package digest", m.packageContents.map { "\($0.hex) (over \($0.files.map(\.path).joined(separator: ", ")))" } ?? "none (a bare model file has only its sha256)"))
            if !m.groups.isEmpty { facts.append(("groups", m.groups.map { "\($0.name) (from \($0.source.rawValue) '\($0.field)')" }.joined(separator: ", "))) }
            var featureRows: [[String]] = []
            for (j, f) in m.schema.features.enumerated() {
                var row = [f.name, f.kind.rawValue, f.unit ?? "", f.range.map { "[\($0.lowerBound), \($0.upperBound)]" } ?? "", f.missingAllowed ? "yes" : "no"]
                if case .linear(let l) = m.ir { row.append("\(l.weights[j])") }
                featureRows.append(row)
            }
            if json {
                var obj: [String: Any] = Dictionary(facts, uniquingKeysWith: { first, _ in first })
                obj["feature_list"] = featureRows.map { ["name": $0[0], "type": $0[1], "unit": $0[2], "range": $0[3], "missing_allowed": $0[4]] }
                if case .convNet(let net, _) = m.ir {
                    obj["graph"] = graphRows(net).map {
                        ["node": $0[0], "operator": $0[1], "output_shape": $0[2], "parameters": Int($0[3]) ?? 0, "kernel": $0[4]]
                    }
                }
                obj["warnings"] = m.loadWarnings
                // Structured forms of the package and binding facts, for tools.
                obj["package_digest"] = (m.packageDigest as Any?) ?? NSNull()
                obj["package_files"] = m.packageContents?.files.map { ["path": $0.path, "sha256": $0.sha256] } ?? []
                obj["policy_sha256"] = m.policy.sha256.isEmpty ? NSNull() as Any : m.policy.sha256
                obj["policy_bound"] = m.policy.modelBinding != nil
                if let b = m.policy.modelBinding {
                    obj["policy_model"] = ["name": (b.name as Any?) ?? NSNull(), "version": (b.version as Any?) ?? NSNull(), "sha256": b.sha256] as [String: Any]
                } else {
                    obj["policy_model"] = NSNull()
                }
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let width = facts.map(\.0.count).max() ?? 0
            for (k, v) in facts { print("\(k.padding(toLength: width, withPad: " ", startingAt: 0))  \(v)") }
            for w in m.loadWarnings { print("warning: \(w)") }
            print("")
            if case .convNet(let net, _) = m.ir {
                printTable(header: ["node", "operator", "output shape", "parameters", "kernel"], rows: graphRows(net))
                print("")
            }
            var header = ["feature", "type", "unit", "valid range", "missing ok"]
            if case .linear = m.ir { header.append("coefficient") }
            printTable(header: header, rows: featureRows)
        }
    }
}

// MARK: - Binding

/// Which model the policy names: `readmission 1.0.0 (sha256 ...), this model file`, or that it
/// names none. A policy naming another model never gets here: the load refuses it.
func policyBindingText(_ m: VigilModel) -> String {
    guard let b = m.policy.modelBinding else {
        return m.policy.sha256.isEmpty ? "no policy" : "unbound: the policy names no model, so nothing checks it was fitted for this one"
    }
    return "\(b.description), this model file"
}

// MARK: - Graphs

/// Facts about a CNN: input and output shapes, batch mode, node and parameter counts, preprocessing.
func graphFacts(_ net: ConvNet, image: ImageInputSpec?) -> [(String, String)] {
    let batch = net.batchMode == .dynamic ? "N" : nil
    func shape(_ s: [Int]) -> String { "[" + ([batch].compactMap { $0 } + s.map(String.init)).joined(separator: ", ") + "]" }
    var facts: [(String, String)] = [
        ("input", "'\(net.tensors[net.input].name)' \(shape(net.sampleInputShape)) float32"),
        ("output", "\(shape(net.sampleOutputShape)) (margins; the link is the objective)"),
        ("batch", net.batchMode == .dynamic ? "dynamic (chunks of \(net.chunkCapacity) per thread)" : "fixed (one input at a time)"),
        ("nodes", String(net.nodes.count)),
        ("parameters", "\(net.parameterCount) (after folding)"),
    ]
    if let image {
        let mean = image.mean.map { "\($0)" }.joined(separator: ", "), std = image.std.map { "\($0)" }.joined(separator: ", ")
        facts.append(("preprocessing", "\(image.channelOrder.rawValue) \(image.width)x\(image.height), x * \(image.scale), mean [\(mean)], std [\(std)], resize \(image.resize.rawValue)"))
    }
    return facts
}

/// One row per node: name, operators, output shape, constant parameters it reads, and for a
/// convolution the kernel that computes it on this CPU.
func graphRows(_ net: ConvNet) -> [[String]] {
    net.nodes.enumerated().map { i, node in
        let t = net.tensors[node.output]
        let dims = t.isBatched && net.batchMode == .dynamic ? ["N"] + t.shape.dropFirst().map(String.init) : t.shape.map(String.init)
        let params = node.inputs.filter { net.tensors[$0].kind == .constant }.reduce(0) { $0 + net.tensors[$1].count }
        return [node.name, node.opType, "[" + dims.joined(separator: ", ") + "]", String(params), net.convolutionKernel(ofNode: i) ?? ""]
    }
}
