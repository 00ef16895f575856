import ArgumentParser
import Foundation
import VigilEngine

/// `vigil reference`: fits a package's out-of-distribution reference from its training rows.
struct Reference: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit the out-of-distribution reference (reference.ood) of a model from its training rows.",
        discussion: """
            Reads the training rows (CSV or JSON Lines with the model's features, as vigil score \
            reads a cohort) three times: means and spreads, then the standardised Gram matrices \
            (LAPACK dsyrk) for a Ledoit-Wolf shrunk covariance and its Cholesky factor (LAPACKE \
            dpotrf), then every training row's Mahalanobis distance squared per observed feature \
            (missing features integrated out), whose --quantile is the threshold. Writes the \
            reference.ood JSON block; models/training/add_ood.py puts it into a manifest. Scoring \
            with a package that carries it adds an 'ood' warning to every record above the threshold.
            """)

    @Option(name: .long, help: "Model package folder or bare model file (its features are read).")
    var model: String

    @Option(name: .long, help: "The training rows (CSV or JSON Lines).")
    var input: String

    @Option(name: .long, help: "The training scores' quantile that becomes the threshold (0-1).")
    var quantile = 0.995

    @Option(name: .long, help: "Write the JSON block here (default: standard output).")
    var output: String?

    func run() throws {
        try runReportingErrors {
            let model = try VigilModel.load(path: self.model)
            let url = URL(fileURLWithPath: input)
            let ref: OODReference
            let f: Int
            if model.imageInput != nil {
                // Image models: the penultimate layer's activations of the training images.
                guard let net = model.activationNet else { throw VigilError(.usage, "\(model.name): the net has no Gemm/MatMul head whose input could be measured") }
                f = net.outputCount
                ref = try OODReference.fit(names: VigilModel.activationNames(f), quantile: quantile) {
                    let reader = try ImageCohortReader(url: url, model: model)
                    return {
                        guard let b = try reader.nextBatch(maxImages: 256) else { return nil }
                        let acts = b.tensors.withUnsafeBufferPointer { model.activations($0.baseAddress!, count: b.count, threads: 1) }
                        return (acts, b.count)
                    }
                }
            } else {
                f = model.schema.count
                ref = try OODReference.fit(names: model.schema.names, quantile: quantile) {
                    let reader = try CohortReader(url: url, model: model)
                    return {
                        guard let b = try reader.nextBatch(maxRows: 8192) else { return nil }
                        return (b.features, b.count)
                    }
                }
            }
            let text = ref.json + "\n"
            if let output { try Data(text.utf8).write(to: URL(fileURLWithPath: output)) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
            FileHandle.standardError.write(Data("reference: \(ref.rows) rows, \(ref.count) of \(f) features, shrinkage \(String(format: "%.4f", ref.shrinkage)), threshold \(String(format: "%.4g", ref.threshold)) (quantile \(quantile))\n".utf8))
        }
    }
}
