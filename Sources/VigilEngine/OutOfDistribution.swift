package import Foundation
internal import VigilKernels

/// The out-of-distribution guard (manifest `reference.ood`, docs/FORMATS.md "Out-of-distribution
/// reference"): how far a row lies from the training rows, as a Mahalanobis distance under a
/// shrunk covariance, against the training distances' quantile.
///
/// Fitted (`OODReference.fit`, `vigil reference`) on the training rows X (n x p, NaN missing):
/// 1. per feature the mean and population standard deviation of its observed values (a feature
///    with fewer than 2 observed values or no spread takes no part);
/// 2. standardised values z = (x - mean) / sd, 0 where missing;
/// 3. S = Zᵀ Z / n and the Ledoit-Wolf shrinkage s toward mu I (mu = trace S / p), exactly as
///    scikit-learn's `ledoit_wolf(Z, assume_centered=True)`: Σ = (1 - s) S + s mu I;
/// 4. L = the Cholesky factor of Σ (LAPACKE `dpotrf`).
/// A row's score: over its observed features o, d² = z_oᵀ Σ_oo⁻¹ z_o (the marginal distance:
/// missing features are integrated out, not imputed; the factor of Σ_oo is computed once per
/// missingness pattern and cached, L itself for complete rows), divided by |o|. A row whose score
/// exceeds the `quantile` (default 0.995) of the training rows' scores is flagged; a row with no
/// observed feature is not scored.
package struct OODReference: Sendable, Equatable {
    package var features: [String]
    package var mean: [Double]
    package var scale: [Double]
    package var shrinkage: Double
    /// Row-major `p x p` lower Cholesky factor of Σ.
    package var cholesky: [Double]
    package var quantile: Double
    package var threshold: Double
    package var rows: Int

    package var count: Int { features.count }

    // MARK: - Fitting

    /// Accumulates the fit over batches of rows (`features` of the model, in model order).
    package struct Fitter {
        let names: [String]
        let p: Int
        var n = 0
        var observed: [Int]
        var sum: [Double]
        var sumSquares: [Double]

        package init(names: [String]) {
            self.names = names
            p = names.count
            observed = Array(repeating: 0, count: p)
            sum = Array(repeating: 0, count: p)
            sumSquares = Array(repeating: 0, count: p)
        }

        /// Pass 1: the means and spreads.
        package mutating func addMoments(_ x: [Double], rows: Int) {
            n += rows
            for r in 0..<rows {
                for j in 0..<p {
                    let v = x[r * p + j]
                    if !v.isNaN { observed[j] += 1; sum[j] += v }
                }
            }
        }

        /// Pass 1b (after `addMoments` over every row): the squared deviations, for the spread.
        package mutating func addDeviations(_ x: [Double], rows: Int) {
            for r in 0..<rows {
                for j in 0..<p where observed[j] > 0 {
                    let v = x[r * p + j]
                    if !v.isNaN { let d = v - sum[j] / Double(observed[j]); sumSquares[j] += d * d }
                }
            }
        }

        /// The features kept (observed twice or more, with spread), their means and sds.
        package func moments() -> (kept: [Int], mean: [Double], scale: [Double]) {
            var kept: [Int] = [], mean: [Double] = [], scale: [Double] = []
            for j in 0..<p where observed[j] >= 2 {
                let m = sum[j] / Double(observed[j])
                let sd = (sumSquares[j] / Double(observed[j])).squareRoot()
                guard sd > 0, sd.isFinite else { continue }
                kept.append(j); mean.append(m); scale.append(sd)
            }
            return (kept, mean, scale)
        }
    }

    /// Standardised values of the kept features, 0 where missing (`rows x kept.count`).
    static func standardise(_ x: [Double], rows: Int, p: Int, kept: [Int], mean: [Double], scale: [Double]) -> [Double] {
        let k = kept.count
        var z = [Double](repeating: 0, count: rows * k)
        for r in 0..<rows {
            for (c, j) in kept.enumerated() {
                let v = x[r * p + j]
                if !v.isNaN { z[r * k + c] = (v - mean[c]) / scale[c] }
            }
        }
        return z
    }

    /// Pass 2 accumulators: Zᵀ Z and (Z²)ᵀ (Z²) (for the Ledoit-Wolf estimate), lower triangles.
    package struct Gram {
        package let k: Int
        package var n = 0
        package var zz: [Double]
        package var z2z2: [Double]
        package init(k: Int) {
            self.k = k
            zz = Array(repeating: 0, count: k * k)
            z2z2 = Array(repeating: 0, count: k * k)
        }
        package mutating func add(_ z: [Double], rows: Int) {
            guard rows > 0, k > 0 else { return }
            n += rows
            let z2 = z.map { $0 * $0 }
            z.withUnsafeBufferPointer { a in zz.withUnsafeMutableBufferPointer { LAPACK.addGram(a.baseAddress!, rows: rows, n: k, into: $0.baseAddress!) } }
            z2.withUnsafeBufferPointer { a in z2z2.withUnsafeMutableBufferPointer { LAPACK.addGram(a.baseAddress!, rows: rows, n: k, into: $0.baseAddress!) } }
        }

        /// Σ (full, symmetric) and the shrinkage, as scikit-learn's ledoit_wolf(assume_centered=True).
        package func shrunk() -> (sigma: [Double], shrinkage: Double) {
            let nn = Double(n), p = Double(k)
            func full(_ m: [Double], _ i: Int, _ j: Int) -> Double { i >= j ? m[i * k + j] : m[j * k + i] }
            var s = [Double](repeating: 0, count: k * k)
            for i in 0..<k { for j in 0..<k { s[i * k + j] = full(zz, i, j) / nn } }
            var trace = 0.0
            for i in 0..<k { trace += s[i * k + i] }
            let mu = trace / p
            var beta_ = 0.0, delta_ = 0.0
            for i in 0..<k { for j in 0..<k { beta_ += full(z2z2, i, j); let g = full(zz, i, j); delta_ += g * g } }
            delta_ /= nn * nn
            var beta = 1.0 / (p * nn) * (beta_ / nn - delta_)
            var delta = delta_ - 2.0 * mu * trace + p * mu * mu
            delta /= p
            beta = min(beta, delta)
            let shrinkage = beta == 0 ? 0 : beta / delta
            var sigma = s.map { $0 * (1 - shrinkage) }
            for i in 0..<k { sigma[i * k + i] += shrinkage * mu }
            return (sigma, shrinkage)
        }
    }

    // MARK: - Scores

    /// The score of one row (model feature order, NaN missing): d² / |o|, nil when no kept
    /// feature is observed. `z` and `idx` are the caller's scratch buffers (no allocation per
    /// row); `cache` holds the factors of the patterns seen.
    func score(_ row: UnsafePointer<Double>, kept: [Int], cache: OODGuard.FactorCache, z: inout [Double], idx: inout [Int]) -> Double? {
        let k = features.count
        z.removeAll(keepingCapacity: true)
        idx.removeAll(keepingCapacity: true)
        var mask: UInt64 = 0
        for (c, j) in kept.enumerated() {
            let v = row[j]
            if !v.isNaN {
                z.append((v - mean[c]) / scale[c])
                idx.append(c)
                if c < 64 { mask |= 1 << UInt64(c) }
            }
        }
        guard !z.isEmpty else { return nil }
        let m = idx.count
        if m == k {
            z.withUnsafeMutableBufferPointer { zp in cholesky.withUnsafeBufferPointer { LAPACK.solveLower($0.baseAddress!, n: k, zp.baseAddress!) } }
        } else {
            let factor = k <= 64 ? cache.factor(mask: mask, idx, of: self) : cache.factor(idx, of: self)
            z.withUnsafeMutableBufferPointer { zp in factor.withUnsafeBufferPointer { LAPACK.solveLower($0.baseAddress!, n: m, zp.baseAddress!) } }
        }
        var d2 = 0.0
        for v in z { d2 += v * v }
        return d2 / Double(m)
    }

    func score(_ row: UnsafePointer<Double>, kept: [Int], cache: OODGuard.FactorCache) -> Double? {
        var z: [Double] = [], idx: [Int] = []
        return score(row, kept: kept, cache: cache, z: &z, idx: &idx)
    }

    /// The lower Cholesky factor of Σ restricted to the coordinates `idx` (Σ = L Lᵀ rebuilt).
    func subFactor(_ idx: [Int]) -> [Double] {
        let k = features.count, m = idx.count
        var a = [Double](repeating: 0, count: m * m)
        for (r, i) in idx.enumerated() {
            for (c, j) in idx.enumerated() where c <= r {
                var s = 0.0
                for t in 0...min(i, j) { s += cholesky[i * k + t] * cholesky[j * k + t] }
                a[r * m + c] = s
                a[c * m + r] = s
            }
        }
        let ok = a.withUnsafeMutableBufferPointer { LAPACK.choleskyLower($0.baseAddress!, n: m) }
        precondition(ok, "a principal submatrix of a positive-definite matrix is positive definite")
        return a
    }
}

/// A model's guard at scoring time: the reference with its features located in the model's
/// order and a bounded cache of pattern factors.
package final class OODGuard: Sendable {
    package let reference: OODReference
    /// For each reference feature, its index in the model's features.
    let kept: [Int]
    let cache = FactorCache()

    package init(_ reference: OODReference, schema: FeatureSchema) throws {
        self.reference = reference
        kept = try reference.features.map { name in
            guard let j = schema.index(of: name) else { throw VigilError(.package, "reference.ood: feature '\(Untrusted.quote(name))' is not a model feature") }
            return j
        }
    }

    /// Each row's score (d² per observed feature; nil when nothing is observed), over `threads`
    /// partitions of the rows.
    package func scores(_ features: [Double], rows: Int, featureCount f: Int, threads: Int = 1) -> [Double?] {
        var out = [Double?](repeating: nil, count: rows)
        features.withUnsafeBufferPointer { fp in
            out.withUnsafeMutableBufferPointer { op in
                let ctx = UncheckedSendable((fp.baseAddress!, op.baseAddress!))
                Parallel.forEachChunk(count: rows, minChunk: 2048, threads: threads) { range in
                    let (x, o) = ctx.value
                    let k = reference.count
                    var z = [Double](), idx = [Int]()
                    z.reserveCapacity(k)
                    idx.reserveCapacity(k)
                    // Complete rows: standardised into one block, one batched forward
                    // substitution (dtrsm); rows with missing values one by one.
                    var block = [Double](), complete = [Int]()
                    block.reserveCapacity(range.count * k)
                    // Rows with missing values, by pattern (up to 64 features: a bit mask), each
                    // pattern's rows solved together with its factor.
                    var byPattern: [UInt64: [Int]] = [:]
                    for r in range {
                        let row = x + r * f
                        var mask: UInt64 = 0, observed = 0
                        for (c, j) in kept.enumerated() where !row[j].isNaN {
                            observed += 1
                            if c < 64 { mask |= 1 << UInt64(c) }
                        }
                        if observed == k {
                            for (c, j) in kept.enumerated() { block.append((row[j] - reference.mean[c]) / reference.scale[c]) }
                            complete.append(r)
                        } else if observed == 0 {
                            o[r] = nil
                        } else if k <= 64 {
                            byPattern[mask, default: []].append(r)
                        } else {
                            o[r] = reference.score(row, kept: kept, cache: cache, z: &z, idx: &idx)
                        }
                    }
                    for (mask, rows) in byPattern {
                        let cols = (0..<k).filter { mask & (1 << UInt64($0)) != 0 }
                        let m = cols.count
                        let factor = cache.factor(mask: mask, cols, of: reference)
                        var zb = [Double](repeating: 0, count: rows.count * m)
                        for (i, r) in rows.enumerated() {
                            let row = x + r * f
                            for (t, c) in cols.enumerated() { zb[i * m + t] = (row[kept[c]] - reference.mean[c]) / reference.scale[c] }
                        }
                        zb.withUnsafeMutableBufferPointer { b in
                            factor.withUnsafeBufferPointer { LAPACK.solveLowerRows($0.baseAddress!, n: m, rows: rows.count, b.baseAddress!) }
                            for (i, r) in rows.enumerated() {
                                var d2 = 0.0
                                for t in 0..<m { let v = b[i * m + t]; d2 += v * v }
                                o[r] = d2 / Double(m)
                            }
                        }
                    }
                    guard !complete.isEmpty else { return }
                    block.withUnsafeMutableBufferPointer { b in
                        reference.cholesky.withUnsafeBufferPointer { LAPACK.solveLowerRows($0.baseAddress!, n: k, rows: complete.count, b.baseAddress!) }
                        for (i, r) in complete.enumerated() {
                            var d2 = 0.0
                            for c in 0..<k { let v = b[i * k + c]; d2 += v * v }
                            o[r] = d2 / Double(k)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The warning for a score above the threshold, nil otherwise.
    package func warning(_ score: Double?) -> String? {
        guard let score, score > reference.threshold else { return nil }
        return "ood: Mahalanobis distance² per feature \(Self.short(score)) is above the training rows' \(Self.short(reference.quantile * 100))% quantile \(Self.short(reference.threshold)): this row is unlike the data the model was trained on"
    }

    static func short(_ v: Double) -> String { String(format: "%.4g", v) }

    /// Factors of Σ_oo per missingness pattern, at most 4096 kept (then the oldest half dropped).
    final class FactorCache: @unchecked Sendable {
        private let lock = NSLock()
        private var factors: [[Int]: [Double]] = [:]
        private var order: [[Int]] = []
        private var byMask: [UInt64: [Double]] = [:]

        /// For up to 64 features: the pattern as a bit mask (no allocation per lookup).
        func factor(mask: UInt64, _ idx: [Int], of ref: OODReference) -> [Double] {
            lock.lock()
            if let f = byMask[mask] { lock.unlock(); return f }
            lock.unlock()
            let f = ref.subFactor(idx)
            lock.lock()
            defer { lock.unlock() }
            if byMask.count >= 4096 { byMask.removeAll(keepingCapacity: true) }
            byMask[mask] = f
            return f
        }

        func factor(_ idx: [Int], of ref: OODReference) -> [Double] {
            lock.lock()
            if let f = factors[idx] { lock.unlock(); return f }
            lock.unlock()
            let f = ref.subFactor(idx)
            lock.lock()
            defer { lock.unlock() }
            if factors[idx] == nil {
                if order.count >= 4096 {
                    for old in order.prefix(2048) { factors.removeValue(forKey: old) }
                    order.removeFirst(2048)
                }
                factors[idx] = f
                order.append(idx)
            }
            return f
        }
    }
}

extension OODReference {
    /// Fits the reference from a model's training rows, streamed three times by `batches` (each
    /// call starts the rows over): moments, deviations and Gram matrices, then the scores'
    /// quantile.
    package static func fit(names: [String], quantile: Double, batches: () throws -> () throws -> (features: [Double], rows: Int)?) throws -> OODReference {
        func each(_ body: ((features: [Double], rows: Int)) throws -> Void) throws {
            let next = try batches()
            while let b = try next() { try body(b) }
        }
        guard quantile > 0, quantile < 1 else { throw VigilError(.usage, "--quantile must be in (0, 1), got \(quantile)") }
        var fitter = Fitter(names: names)
        try each { fitter.addMoments($0.features, rows: $0.rows) }
        guard fitter.n >= 2 else { throw VigilError(.input, "the training input has \(fitter.n) rows; a reference needs at least 2") }
        try each { fitter.addDeviations($0.features, rows: $0.rows) }
        let (kept, mean, scale) = fitter.moments()
        guard !kept.isEmpty else { throw VigilError(.input, "no feature has two or more observed values with spread: nothing to measure distances on") }
        var gram = Gram(k: kept.count)
        try each { b in gram.add(standardise(b.features, rows: b.rows, p: names.count, kept: kept, mean: mean, scale: scale), rows: b.rows) }
        var (sigma, shrinkage) = gram.shrunk()
        let k = kept.count
        let ok = sigma.withUnsafeMutableBufferPointer { LAPACK.choleskyLower($0.baseAddress!, n: k) }
        guard ok else { throw VigilError(.input, "the shrunk covariance of the training rows is not positive definite (constant or duplicated features?)") }
        var ref = OODReference(features: kept.map { names[$0] }, mean: mean, scale: scale, shrinkage: shrinkage, cholesky: sigma,
                               quantile: quantile, threshold: .infinity, rows: fitter.n)
        let cache = OODGuard.FactorCache()
        var scores: [Double] = []
        try each { b in
            b.features.withUnsafeBufferPointer { fp in
                var z = [Double](), idx = [Int]()
                for r in 0..<b.rows { if let s = ref.score(fp.baseAddress! + r * names.count, kept: kept, cache: cache, z: &z, idx: &idx) { scores.append(s) } }
            }
        }
        ref.threshold = Self.quantile(scores, quantile)
        return ref
    }

    /// numpy's default quantile (linear interpolation between order statistics).
    package static func quantile(_ values: [Double], _ q: Double) -> Double {
        let v = values.sorted()
        guard !v.isEmpty else { return .infinity }
        let pos = q * Double(v.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, v.count - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - Double(lo))
    }

    /// The `reference.ood` JSON block.
    package var json: String {
        func list(_ xs: [Double]) -> String { "[" + xs.map(JSON.number).joined(separator: ",") + "]" }
        let k = count
        let rowsText = (0..<k).map { i in list(Array(cholesky[(i * k)..<(i * k + i + 1)])) }.joined(separator: ",\n    ")
        return "{\"method\": \"mahalanobis-ledoit-wolf\", \"rows\": \(rows), \"quantile\": \(JSON.number(quantile)), \"threshold\": \(JSON.number(threshold)),\n"
            + "  \"shrinkage\": \(JSON.number(shrinkage)), \"features\": [\(features.map(JSON.string).joined(separator: ", "))],\n"
            + "  \"mean\": \(list(mean)),\n  \"scale\": \(list(scale)),\n  \"cholesky\": [\n    \(rowsText)]}"
    }

    /// Reads `reference.ood` strictly: sizes agree, the factor is lower-triangular with a positive
    /// diagonal, every number finite.
    package init(_ node: JSONNode) throws {
        try node.requireKeys(in: ["method", "rows", "quantile", "threshold", "shrinkage", "features", "mean", "scale", "cholesky"])
        let method = try node["method"].string()
        guard method == "mahalanobis-ledoit-wolf" else { throw try node["method"].fail("'\(Untrusted.quote(method))' is not a method (mahalanobis-ledoit-wolf)") }
        features = try node["features"].array().map { try $0.string() }
        let k = features.count
        guard k >= 1, k <= 4096 else { throw try node["features"].fail("1-4096 features") }
        guard Set(features).count == k else { throw try node["features"].fail("a feature appears twice") }
        mean = try node["mean"].doubles()
        scale = try node["scale"].doubles()
        guard mean.count == k, scale.count == k else { throw node.fail("mean and scale need one value per feature (\(k))") }
        guard mean.allSatisfy(\.isFinite), scale.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw node.fail("means must be finite and scales positive") }
        let rowsNodes = try node["cholesky"].array()
        guard rowsNodes.count == k else { throw try node["cholesky"].fail("\(k) rows needed, got \(rowsNodes.count)") }
        var l = [Double](repeating: 0, count: k * k)
        for (i, r) in rowsNodes.enumerated() {
            let v = try r.doubles()
            guard v.count == i + 1 else { throw r.fail("row \(i) of the lower factor has \(i + 1) values, got \(v.count)") }
            guard v.allSatisfy(\.isFinite), v[i] > 0 else { throw r.fail("values must be finite and the diagonal positive") }
            for (j, x) in v.enumerated() { l[i * k + j] = x }
        }
        cholesky = l
        shrinkage = try node["shrinkage"].double()
        quantile = try node["quantile"].double()
        threshold = try node["threshold"].double()
        rows = try node["rows"].int()
        guard (0...1).contains(shrinkage), quantile > 0, quantile < 1, threshold.isFinite, threshold >= 0, rows >= 2 else {
            throw node.fail("shrinkage in [0, 1], quantile in (0, 1), a finite threshold >= 0 and rows >= 2")
        }
    }
}
