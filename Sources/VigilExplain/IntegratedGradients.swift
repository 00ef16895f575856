#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import VigilCore
internal import VigilKernels

/// Integrated gradients (Sundararajan, Taly & Yan 2017) for a CNN's margins: for input x and
/// baseline x′, φᵢ = (xᵢ − x′ᵢ) · ∫₀¹ ∂F/∂xᵢ(x′ + α(x − x′)) dα, the gradients from
/// `ConvNet.gradient` (a backward pass through every operator).
///
/// The integral is an adaptive midpoint rule. The path starts as `steps` equal intervals, each
/// integrated with the gradient at its midpoint. Each interval's own completeness error is known
/// exactly — its share of Σφ against F(end) − F(start), both measured — and their sum is the
/// row's completeness error, Σφ − (F(x) − F(x′)). While that exceeds `tolerance` · |F(x) −
/// F(x′)|, the intervals with the largest errors are halved (two new gradients each), up to
/// `maxSteps` gradients. A ReLU net's gradient is piecewise constant along the path, so an
/// interval without a kink is integrated exactly and refinement goes where the kinks are. Every
/// result reports its steps and final error.
///
/// F is the net's raw output (the margin: the log-odds for a binary model with a sigmoid link),
/// like TreeSHAP's and linear SHAP's space, so base + Σφ ≈ margin.
public struct IntegratedGradients: Sendable {
    /// Initial intervals (gradients) per row (measured on the retinopathy model:
    /// docs/ATTRIBUTION.md).
    package static let defaultSteps = 64
    /// The most gradients a row's refinement may take.
    package static let defaultMaxSteps = 1024
    /// Refinement keeps one gradient per interval: at most this many floats per thread, so a
    /// large input gets a lower step limit (`maxSteps`).
    package static let gradientBudget = 64 << 20
    /// Relative completeness target: |Σφ − (F(x) − F(x′))| ≤ tolerance · |F(x) − F(x′)|.
    package static let defaultTolerance = 0.01

    package let net: ConvNet
    package let baseline: [Float]
    /// What the baseline is, for records and reports (e.g. "black image").
    package let baselineName: String
    public let steps: Int
    package let maxSteps: Int
    package let tolerance: Double
    /// F(baseline), per output.
    package let base: [Double]

    /// One row's integrated gradients.
    public struct Result: Sendable, Equatable {
        /// `outputCount x inputCount`, row-major by output.
        public var attributions: [Double]
        /// F(baseline) and F(x), per output.
        public var base: [Double]
        public var margins: [Double]
        /// The gradients (interval midpoints) this row needed.
        public var steps: Int
        /// Per output: |Σφ − (F(x) − F(baseline))|.
        public var completenessError: [Double]

        /// The largest completeness error relative to |F(x) − F(baseline)| over the outputs (0
        /// where the two margins are equal and the error is 0).
        public var relativeError: Double {
            zip(completenessError, zip(margins, base)).map { e, mb in
                let d = abs(mb.0 - mb.1)
                return d > 0 ? e / d : (e == 0 ? 0 : .infinity)
            }.max() ?? 0
        }
    }

    /// - Throws: `VigilError` (`.usage`) for a baseline of the wrong size or non-finite values,
    ///   or step counts out of range.
    package init(
        net: ConvNet, baseline: [Float], baselineName: String, steps: Int = defaultSteps, maxSteps: Int = defaultMaxSteps,
        tolerance: Double = defaultTolerance
    ) throws(VigilError) {
        guard baseline.count == net.inputCount else {
            throw VigilError(.usage, "integrated gradients: the baseline has \(baseline.count) values; the net's input has \(net.inputCount)")
        }
        guard baseline.allSatisfy(\.isFinite) else { throw VigilError(.usage, "integrated gradients: the baseline must be finite") }
        guard (2...4096).contains(steps) else { throw VigilError(.usage, "integrated gradients: steps must be 2...4096, got \(steps)") }
        guard maxSteps >= steps, maxSteps <= 65536 else {
            throw VigilError(.usage, "integrated gradients: the step limit \(maxSteps) must be >= steps (\(steps)) and <= 65536")
        }
        guard tolerance.isFinite, tolerance >= 0 else { throw VigilError(.usage, "integrated gradients: tolerance must be >= 0, got \(tolerance)") }
        self.net = net
        self.baseline = baseline
        self.baselineName = baselineName
        self.steps = steps
        self.maxSteps = max(steps, min(maxSteps, Self.gradientBudget / max(1, net.inputCount)))
        self.tolerance = tolerance
        var out = [Float](repeating: 0, count: net.outputCount)
        baseline.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { net.predict(b.baseAddress!, samples: 1, into: $0.baseAddress!) }
        }
        base = out.map(Double.init)
    }

    /// The baseline of an image model: a black image (every pixel 0) through the model's
    /// preprocessing, i.e. (0 − mean) / std per channel. Black carries no evidence in a fundus
    /// photograph (its border is black), so attributions there are 0 by construction.
    package static func blackImage(_ spec: ImageInputSpec) -> [Float] {
        let plane = spec.height * spec.width
        var x = [Float](repeating: 0, count: spec.count)
        for c in 0..<spec.channels {
            let v = (0 - spec.mean[c]) / spec.std[c]
            for i in 0..<plane { x[c * plane + i] = v }
        }
        return x
    }

    /// Integrated gradients of every output for one input (`net.inputCount` values).
    public func explain(_ x: UnsafePointer<Float>) -> Result {
        let f = net.inputCount, k = net.outputCount
        var margins = [Float](repeating: 0, count: k)
        net.predict(x, samples: 1, into: &margins)
        var attributions = [Double](repeating: 0, count: k * f)
        var errors = [Double](repeating: 0, count: k)
        var used = 0
        for output in 0..<k {
            let r = integrate(x, output: output, margin: Double(margins[output]))
            for i in 0..<f { attributions[output * f + i] = r.attributions[i] }
            errors[output] = r.error
            used = max(used, r.steps)
        }
        return Result(attributions: attributions, base: base, margins: margins.map(Double.init), steps: used, completenessError: errors)
    }

    /// `rows` inputs over `threads` partitions; results in input order.
    public func explain(_ x: UnsafePointer<Float>, rows: Int, threads: Int? = nil) -> [Result] {
        let results = ResultSlots(count: rows)
        let box = UncheckedSendable(x)
        Parallel.forEachChunk(count: rows, minChunk: 1, threads: threads ?? Parallel.cores) { range in
            for r in range { results.set(r, explain(box.value + r * net.inputCount)) }
        }
        return results.values
    }

    /// The adaptive midpoint rule for one output (see the type's documentation).
    private func integrate(_ x: UnsafePointer<Float>, output: Int, margin: Double) -> (attributions: [Double], error: Double, steps: Int) {
        let f = net.inputCount, k = net.outputCount
        let chunk = net.batchMode == .dynamic ? max(2, net.chunkCapacity) : 1
        var points = [Float](repeating: 0, count: chunk * f)
        var grads = [Float](repeating: 0, count: chunk * f)
        var outs = [Float](repeating: 0, count: chunk * k)
        var seeds = [Float](repeating: 0, count: chunk * k)
        for s in 0..<chunk { seeds[s * k + output] = 1 }
        var delta = [Double](repeating: 0, count: f)
        for i in 0..<f { delta[i] = Double(x[i]) - Double(baseline[i]) }

        /// Gradients (and F) at the given α, in chunks; `body` gets each point's α index, F and
        /// gradient.
        func evaluate(_ alphas: [Double], _ body: (Int, Double, UnsafeBufferPointer<Float>) -> Void) {
            var lo = 0
            while lo < alphas.count {
                let n = net.batchMode == .dynamic ? min(chunk, alphas.count - lo) : 1
                for s in 0..<n {
                    let a = Float(alphas[lo + s])
                    for i in 0..<f { points[s * f + i] = baseline[i] + a * (x[i] - baseline[i]) }
                }
                points.withUnsafeBufferPointer { p in
                    seeds.withUnsafeBufferPointer { sd in
                        grads.withUnsafeMutableBufferPointer { g in
                            outs.withUnsafeMutableBufferPointer { o in
                                net.gradient(p.baseAddress!, samples: n, seeds: sd.baseAddress!, into: g.baseAddress!, outputs: o.baseAddress!)
                            }
                        }
                    }
                }
                grads.withUnsafeBufferPointer { g in
                    for s in 0..<n {
                        body(lo + s, Double(outs[s * k + output]), UnsafeBufferPointer(rebasing: g[(s * f)..<((s + 1) * f)]))
                    }
                }
                lo += n
            }
        }

        // The intervals: bounds, F at the bounds and at the midpoint, the midpoint gradient, and
        // the interval's Σφ share.
        struct Interval {
            var lo: Double, hi: Double, fLo: Double, fHi: Double, fMid = 0.0
            var gradient: [Float] = []
            var share = 0.0
            var error: Double { share - (fHi - fLo) }
        }
        var sums = [Double](repeating: 0, count: f)
        func admit(_ iv: inout Interval, _ fMid: Double, _ g: UnsafeBufferPointer<Float>) {
            let len = iv.hi - iv.lo
            var share = 0.0
            for i in 0..<f {
                let w = len * Double(g[i])
                sums[i] += w
                share += w * delta[i]
            }
            iv.fMid = fMid
            iv.share = share
            iv.gradient = Array(g)
        }

        // Start: `steps` equal intervals, F at their inner bounds from one batched forward pass.
        let n0 = steps
        var boundsF = [Double](repeating: 0, count: n0 + 1)
        boundsF[0] = base[output]
        boundsF[n0] = margin
        if n0 > 1 {
            var inner = [Float](repeating: 0, count: (n0 - 1) * f)
            for j in 1..<n0 {
                let a = Float(Double(j) / Double(n0))
                for i in 0..<f { inner[(j - 1) * f + i] = baseline[i] + a * (x[i] - baseline[i]) }
            }
            var y = [Float](repeating: 0, count: (n0 - 1) * k)
            inner.withUnsafeBufferPointer { p in
                y.withUnsafeMutableBufferPointer { o in
                    if net.batchMode == .dynamic {
                        net.predict(p.baseAddress!, samples: n0 - 1, into: o.baseAddress!)
                    } else {
                        for j in 0..<(n0 - 1) { net.predict(p.baseAddress! + j * f, samples: 1, into: o.baseAddress! + j * k) }
                    }
                }
            }
            for j in 1..<n0 { boundsF[j] = Double(y[(j - 1) * k + output]) }
        }
        var intervals = (0..<n0).map { j in
            Interval(lo: Double(j) / Double(n0), hi: Double(j + 1) / Double(n0), fLo: boundsF[j], fHi: boundsF[j + 1])
        }
        evaluate(intervals.map { ($0.lo + $0.hi) / 2 }) { j, fMid, g in admit(&intervals[j], fMid, g) }
        var used = n0
        let target = tolerance * abs(margin - base[output])
        var total = intervals.reduce(0.0) { $0 + $1.error }

        // Refine: halve the intervals with the largest errors, a chunk at a time.
        while abs(total) > target && used + 2 <= maxSteps {
            // Up to a chunk's worth of the worst intervals, but only those within 8x of the
            // worst: intervals already integrated exactly are not split.
            let m = max(1, min(chunk / 2, (maxSteps - used) / 2))
            let order = intervals.indices.sorted { abs(intervals[$0].error) > abs(intervals[$1].error) }
            let cutoff = abs(intervals[order[0]].error) / 8
            let worst = order.prefix(m).filter { abs(intervals[$0].error) >= cutoff }
            var halves: [Interval] = []
            for j in worst {
                let iv = intervals[j]
                let mid = (iv.lo + iv.hi) / 2
                for i in 0..<f { sums[i] -= (iv.hi - iv.lo) * Double(iv.gradient[i]) }
                halves.append(Interval(lo: iv.lo, hi: mid, fLo: iv.fLo, fHi: iv.fMid))
                halves.append(Interval(lo: mid, hi: iv.hi, fLo: iv.fMid, fHi: iv.fHi))
            }
            evaluate(halves.map { ($0.lo + $0.hi) / 2 }) { j, fMid, g in admit(&halves[j], fMid, g) }
            used += halves.count
            for j in worst.sorted(by: >) { intervals.remove(at: j) }
            intervals += halves
            total = intervals.reduce(0.0) { $0 + $1.error }
        }
        var attributions = [Double](repeating: 0, count: f)
        var sum = 0.0
        for i in 0..<f {
            attributions[i] = delta[i] * sums[i]
            sum += attributions[i]
        }
        return (attributions, abs(sum - (margin - base[output])), used)
    }
}

/// Per-row results written by parallel partitions (each index written by one partition once,
/// through a raw buffer: no shared Swift array is mutated concurrently).
private final class ResultSlots: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<IntegratedGradients.Result?>
    private let count: Int
    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: max(count, 1))
        slots.initialize(repeating: nil, count: count)
    }
    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }
    func set(_ i: Int, _ r: IntegratedGradients.Result) { slots[i] = r }
    var values: [IntegratedGradients.Result] { (0..<count).map { slots[$0]! } }
}
