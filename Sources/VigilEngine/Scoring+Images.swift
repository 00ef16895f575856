internal import Foundation
internal import VigilKernels
public import VigilExplain
public import VigilGuard

/// Images to score, already decoded and preprocessed into the model's input tensor.
public struct ImageBatch: Sendable {
    public var count: Int
    public var ids: [String]
    /// `count x imageInput.count` float32 values: each image's NCHW tensor.
    public var tensors: [Float]
    /// `count x model.fieldGroups.count`, row-major; nil = absent or missing.
    public var groupRaw: [String?]
    /// Where each image came from (its path), for messages.
    public var origins: [String]
    /// Per image, what preprocessing changed (resized, alpha dropped, converted), as warnings.
    public var notes: [[String]]

    public init(count: Int, ids: [String], tensors: [Float], groupRaw: [String?], origins: [String], notes: [[String]]) {
        self.count = count
        self.ids = ids
        self.tensors = tensors
        self.groupRaw = groupRaw
        self.origins = origins
        self.notes = notes
    }
}

extension VigilModel {
    /// Scores preprocessed images: the net's margins over all cores (batch partitions, one
    /// buffer arena per thread), the link, groups from the input fields, the policy's threshold
    /// and the decision, as `score(_: RowBatch)` does for tabular rows. With `explain`, each
    /// record also carries its integrated gradients (one contribution per input value, in
    /// `attributionNames` order, with the steps and completeness error), computed with
    /// `integrationSteps` initial path intervals (default `IntegratedGradients.defaultSteps`).
    public func score(
        _ batch: ImageBatch, threads: Int? = nil, explain: Bool = false, integrationSteps: Int? = nil
    ) throws -> [PredictionRecord] {
        guard let image = imageInput else {
            throw VigilError(.usage, "\(name) is a tabular model: score a RowBatch (CSV or JSON Lines)")
        }
        guard batch.tensors.count == batch.count * image.count else {
            throw VigilError(.input, "ImageBatch of \(batch.count) images needs \(batch.count * image.count) tensor values (\(image.count) per image); got \(batch.tensors.count)")
        }
        let k = ir.outputCount
        let outputs = batch.tensors.withUnsafeBufferPointer {
            predictImages($0.baseAddress!, count: batch.count, threads: threads ?? Parallel.cores)
        }
        var explained: [IntegratedGradients.Result]?
        var integrator: IntegratedGradients?
        if explain {
            guard var ig = try explainer.get().integratedGradients else {
                throw VigilError(.usage, "\(name): no integrated-gradients explainer for this model")
            }
            if let steps = integrationSteps, steps != ig.steps {
                ig = try IntegratedGradients(
                    net: ig.net, baseline: ig.baseline, baselineName: ig.baselineName, steps: steps,
                    maxSteps: max(steps, ig.maxSteps), tolerance: ig.tolerance)
            }
            integrator = ig
            explained = batch.tensors.withUnsafeBufferPointer { ig.explain($0.baseAddress!, rows: batch.count, threads: threads) }
        }
        // Out of distribution: the penultimate activations against the training images'.
        var oodScores: [Double?]?
        if let g = oodGuard, let net = activationNet {
            let acts = batch.tensors.withUnsafeBufferPointer { activations($0.baseAddress!, count: batch.count, threads: threads ?? Parallel.cores) }
            oodScores = g.scores(acts, rows: batch.count, featureCount: net.outputCount, threads: threads ?? Parallel.cores)
        }
        let fieldGroupCount = fieldGroups.count
        let slots = groups.indices.map { i in groups[i].source == .field ? groups[..<i].filter { $0.source == .field }.count : -1 }
        var records: [PredictionRecord] = []
        records.reserveCapacity(batch.count)
        for r in 0..<batch.count {
            let labels = groups.indices.map { i -> String in
                // A group from a feature has nothing to read in an image: it is missing.
                slots[i] < 0 ? groups[i].label(raw: nil) : groups[i].label(raw: batch.groupRaw[r * fieldGroupCount + slots[i]])
            }
            let o = Array(outputs[(r * k)..<(r * k + k)])
            var record = PredictionRecord(
                id: batch.ids[r], outputs: o, groupLabels: labels, groupKey: "", threshold: nil, thresholdSource: nil,
                decision: nil, warnings: batch.notes[r] + (oodScores.flatMap { oodGuard?.warning($0[r]) }.map { [$0] } ?? []))
            if let explained, let integrator {
                let result = explained[r]
                let values = batch.tensors[(r * image.count)..<((r + 1) * image.count)].map(Double.init)
                record.attribution = Attribution(
                    method: .integratedGradients, space: AttributionSpace(ir.objective), featureCount: image.count,
                    base: result.base, contributions: result.attributions, values: values,
                    integration: Integration(
                        baseline: integrator.baselineName, steps: result.steps,
                        completenessError: result.completenessError.max() ?? 0, relativeError: result.relativeError))
            }
            // The same guardrail step as tabular records (a randomized policy's draw included).
            applyPolicy(to: &record)
            records.append(record)
        }
        return records
    }

    /// Outputs (margins through the link), `count x outputCount`, for `count` preprocessed image
    /// tensors, over `threads` batch partitions: the raw path `vigil bench` measures.
    public func predictImages(_ tensors: UnsafePointer<Float>, count: Int, threads: Int = 1) -> [Double] {
        guard case .convNet(let net, let objective) = ir else {
            preconditionFailure("predictImages needs a CNN")
        }
        let k = net.outputCount
        var margins = [Float](repeating: 0, count: count * k)
        margins.withUnsafeMutableBufferPointer { m in
            if net.batchMode == .dynamic {
                net.predict(tensors, samples: count, into: m.baseAddress!, threads: threads)
            } else {
                for i in 0..<count {
                    net.predict(tensors + i * net.inputCount, samples: 1, into: m.baseAddress! + i * k, threads: 1)
                }
            }
        }
        var out = margins.map(Double.init)
        out.withUnsafeMutableBufferPointer { objective.transform($0.baseAddress!, rows: count) }
        return out
    }
}

extension VigilModel {
    /// OpenBLAS's thread count. Vigil keeps it at 1 (parallelism comes from batch partitions);
    /// benchmarks compare other settings.
    public static func setBLASThreads(_ count: Int) { BLAS.setThreads(count) }
    public static var blasThreads: Int { BLAS.threads }
}
