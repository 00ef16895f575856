internal import VigilKernels
package import VigilCore

/// Exact path-dependent TreeSHAP over a `TreeEnsemble` (Lundberg, Erion & Lee 2018, "Consistent
/// individualized feature attribution for tree ensembles", Algorithm 2): the Shapley values of
/// the game v(S) = E[f(x) | x_S], where a split on a feature outside S sends the row down both
/// children, weighted by each child's share of the node's cover (LightGBM's data counts,
/// XGBoost's `sum_hessian`). The same quantity as LightGBM `pred_contrib=True` and XGBoost
/// `pred_contribs=True`.
///
/// Evaluated per leaf in closed form (`PolyWalk`): the path's hot features as the polynomial
/// Π (z_k + x), its cold features as one product, so a node costs O(hot features) and no
/// per-node permutation weights are kept (Algorithm 2's extend/unwind do the same sums).
///
/// Routing is the prediction's own (`TreeEnsemble.withWalker`, `canonicalRow`): missing values,
/// the missing-value rules, categorical splits and the input precision act exactly as they do
/// when scoring, so the hot path of each tree ends in the leaf `predictRaw` reaches.
///
/// Per output k (trees whose `treeOutput` is k):
///
///     base_k   = baseMargin_k + Σ_t E_t / divisor,   E_t = the tree's cover-weighted leaf mean
///     φ_kj     = Σ_t φ_tj / divisor
///     base_k + Σ_j φ_kj = baseMargin_k + Σ_t leaf_t(x) / divisor   (the margin)
///
/// so a random forest averaged by `divisor` gets averaged contributions. A single-leaf tree
/// contributes its value to the base and nothing to any feature.
///
/// Numerical contract: computed in `Double`. base + Σ φ equals the `Double` sum of the leaves the
/// row reaches (plus the base margin) to ~1e-12 relative; for a model whose margin Vigil sums in
/// `Float` (XGBoost, `InputPrecision.float32`), the margin itself carries that float32 rounding.
/// XGBoost computes its SHAP values in `Float`, LightGBM in `Double`.
package struct TreeSHAP: Sendable {
    package let ensemble: TreeEnsemble
    /// Per output: the base value (see the type's documentation).
    package let base: [Double]
    /// What the walk reads besides the nodes, computed once at init.
    let tables: Tables
    /// Frame stride of a walk: the deepest tree's depth D + 2 (a path holds at most D features,
    /// E at most D + 1 coefficients, and there are D + 1 levels).
    let stride: Int

    /// Immutable per-model tables in memory of their own, so that the hot loop reads plain
    /// pointers (no array access checks, no nested `withUnsafeBufferPointer`).
    final class Tables: @unchecked Sendable {
        /// Per node: its cover divided by its parent's (the share of the parent's training data
        /// that reaches it); 1 for a root.
        let coverFraction: UnsafeMutableBufferPointer<Double>
        /// Per tree: the depth of its deepest leaf (0 for a single leaf, which TreeSHAP skips).
        let treeDepth: UnsafeMutableBufferPointer<Int32>
        /// The Shapley weights w(s, d) = s!(d − 1 − s)!/d! at `d * stride + s`, d = 1...D.
        let weights: UnsafeMutableBufferPointer<Double>

        init(coverFraction: [Double], treeDepth: [Int32], weights: [Double]) {
            func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
                let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, a.count))
                _ = p.initialize(from: a)
                return p
            }
            self.coverFraction = copy(coverFraction)
            self.treeDepth = copy(treeDepth)
            self.weights = copy(weights)
        }

        deinit {
            coverFraction.deallocate()
            treeDepth.deallocate()
            weights.deallocate()
        }
    }

    /// Deeper trees are refused: the path buffers grow with the square of the depth.
    package static let maxSupportedDepth = 1024

    package init(_ ensemble: TreeEnsemble) throws(VigilError) {
        self.ensemble = ensemble
        let nodes = ensemble.nodes
        let cover = ensemble.cover
        var fraction = [Double](repeating: 1, count: nodes.count)
        var depth = [Int32](repeating: 0, count: ensemble.treeCount)
        var expected = [Double](repeating: 0, count: ensemble.outputCount)
        var order: [Int] = []  // preorder of one tree
        var nodeDepth = [Int32](repeating: 0, count: nodes.count)
        var mean = [Double](repeating: 0, count: nodes.count)
        for t in 0..<ensemble.treeCount {
            let root = Int(ensemble.roots[t])
            order.removeAll(keepingCapacity: true)
            var stack = [root]
            nodeDepth[root] = 0
            var deepest: Int32 = 0
            while let j = stack.popLast() {
                order.append(j)
                let node = nodes[j]
                deepest = max(deepest, nodeDepth[j])
                if node.isLeaf { continue }
                // A split needs a positive cover to share out; the builder has already checked
                // that covers are finite and >= 0.
                guard cover[j] > 0 else {
                    throw VigilError.modelInvalid("TreeSHAP needs the training cover of every split (LightGBM internal_count/leaf_count, XGBoost sum_hessian): tree \(t), node \(j - root) has cover \(cover[j])\(cover[root] == 0 ? "; the model file records no covers" : "")")
                }
                for child in [Int(node.left), Int(node.right)] {
                    fraction[child] = cover[child] / cover[j]
                    nodeDepth[child] = nodeDepth[j] + 1
                    stack.append(child)
                }
            }
            guard deepest <= Self.maxSupportedDepth else {
                throw VigilError.modelInvalid("TreeSHAP supports trees up to depth \(Self.maxSupportedDepth); tree \(t) has depth \(deepest)")
            }
            depth[t] = deepest
            // The tree's expected value, the v(∅) of the recursion: children before parents
            // (reverse preorder), each split the cover-weighted mean of its children. A child
            // with no cover adds nothing (its subtree is never reached when its feature is unknown).
            for j in order.reversed() {
                let node = nodes[j]
                if node.isLeaf {
                    mean[j] = node.value
                } else {
                    let l = Int(node.left), r = Int(node.right)
                    var m = 0.0
                    if fraction[l] != 0 { m += fraction[l] * mean[l] }
                    if fraction[r] != 0 { m += fraction[r] * mean[r] }
                    mean[j] = m
                }
            }
            expected[Int(ensemble.treeOutput[t])] += mean[root]
        }
        base = (0..<ensemble.outputCount).map { ensemble.baseMargin[$0] + expected[$0] / ensemble.divisor }
        let d = Int(depth.max() ?? 0)
        let stride = d + 2
        self.stride = stride
        var weights = [Double](repeating: 0, count: stride * stride)
        if d > 0 {
            for n in 1...d {
                // w(0, n) = 1/n; w(s + 1, n) = w(s, n) · (s + 1)/(n − 1 − s)
                var w = 1 / Double(n)
                for s in 0..<n {
                    weights[n * stride + s] = w
                    if s + 1 < n { w = w * Double(s + 1) / Double(n - 1 - s) }
                }
            }
        }
        tables = Tables(coverFraction: fraction, treeDepth: depth, weights: weights)
    }

    /// `rows x outputCount x (featureCount + 1)`: contributions then the base value, per output.
    /// Each partition allocates its walk frames and row scratch once; nothing is allocated per row.
    package func explain(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, threads: Int?) {
        let f = ensemble.featureCount
        let k = ensemble.outputCount
        let rowStride = k * (f + 1)
        let frame = self.stride
        let divisor = ensemble.divisor
        let tables = self.tables
        ensemble.withWalker { walker in
            ensemble.roots.withUnsafeBufferPointer { roots in
                ensemble.treeOutput.withUnsafeBufferPointer { outputs in
                    let ctx = UncheckedSendable((walker, roots, outputs, x, out))
                    Parallel.forEachChunk(count: rows, minChunk: 16, threads: threads ?? Parallel.cores) { range in
                        let (walker, roots, outputs, x, out) = ctx.value
                        let levels = frame + 1
                        let features = UnsafeMutablePointer<PathFeature>.allocate(capacity: frame)
                        features.initialize(repeating: PathFeature(feature: -1, hot: false, z: 0), count: frame)
                        let poly = UnsafeMutablePointer<Double>.allocate(capacity: levels * frame)
                        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: f)
                        defer {
                            features.deallocate()
                            poly.deallocate()
                            scratch.deallocate()
                        }
                        for r in range {
                            let row = ensemble.canonicalRow(x + r * f, scratch: scratch)
                            let o = out + r * rowStride
                            o.update(repeating: 0, count: rowStride)
                            for t in 0..<roots.count where tables.treeDepth[t] > 0 {
                                let walk = PolyWalk(
                                    walker: walker, fraction: UnsafePointer(tables.coverFraction.baseAddress!), row: row,
                                    phi: o + Int(outputs[t]) * (f + 1), weights: UnsafePointer(tables.weights.baseAddress!),
                                    features: features, poly: poly, stride: frame)
                                poly[0] = 1
                                walk.recurse(Int(roots[t]), 0, poly, 0, 0, 1)
                            }
                            for c in 0..<k {
                                let block = o + c * (f + 1)
                                if divisor != 1 {
                                    for j in 0..<f { block[j] /= divisor }
                                }
                                block[f] = base[c]
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One feature on the path from the root to the current node (each feature once): the share
/// `z` of the "feature unknown" mass that follows the path (product of the cover fractions of
/// its splits) and whether the row follows every split on it (`hot`).
struct PathFeature {
    var feature: Int32
    var hot: Bool
    var z: Double
}

/// The recursion of one tree for one row, in the polynomial form of path-dependent TreeSHAP.
///
/// For a leaf with value v whose path holds d distinct features U, with shares z_j and the
/// set H ⊆ U of features the row follows (the others are "cold"), the Shapley value of j is
///
///     φ_j = v (o_j − z_j) Σ_{S ⊆ H∖{j}} w(|S|, d) Π_{k ∈ U∖S∖{j}} z_k,   w(s, d) = s!(d−1−s)!/d!
///
/// (terms with a cold feature in S vanish, since o_k = 0 there). With e_s the coefficients of
/// E(x) = Π_{k∈H} (z_k + x) and c = Π_{k∉H} z_k:
///
///     cold j:  φ_j = −v · c · Σ_s w(s, d) e_s                     (the same for every cold j)
///     hot j:   φ_j = v (1 − z_j) · c · Σ_s w(s, d) e_s(E / (z_j + x))
///
/// The walk carries E's coefficients and c down the tree: a hot edge of a new feature multiplies
/// E by (q + x), a cold one multiplies c by q (q = the child's cover fraction); a feature met
/// again divides its old factor out of E and, if still hot, multiplies its new one in. So a node
/// costs O(h) for h hot features, and a leaf O(h²), with no per-node path weights to update.
/// Children whose c is 0 add exactly 0 and are skipped.
///
/// Frames: the path's features live in one list (`stride` = deepest depth + 2 entries), each
/// edge updating its feature's entry in place and restoring it on the way back; level l's E
/// lives at `poly + l * stride`: a child whose edge changes E writes its own copy one level
/// down, one whose edge does not (a cold edge, a feature already cold) reads its parent's.
struct PolyWalk {
    let walker: Walker
    let fraction: UnsafePointer<Double>
    let row: UnsafePointer<Double>
    /// The output's `featureCount` contributions, accumulated.
    let phi: UnsafeMutablePointer<Double>
    /// w(s, d) at `weights[d * stride + s]`.
    let weights: UnsafePointer<Double>
    let features: UnsafeMutablePointer<PathFeature>
    let poly: UnsafeMutablePointer<Double>
    let stride: Int

    /// Visits node `j` at depth `level`, with `d` path features (`h` of them hot) and E of degree
    /// `h` at `e` (its own frame or an ancestor's that no edge since has changed).
    func recurse(_ j: Int, _ level: Int, _ e: UnsafeMutablePointer<Double>, _ d: Int, _ h: Int, _ cold: Double) {
        let node = walker.nodes[j]
        if node.isLeaf {
            leaf(node.value, e, d, h, cold)
            return
        }
        let left = walker.goesLeft(node, row[Int(node.feature)])
        let hotChild = Int(left ? node.left : node.right)
        let coldChild = Int(left ? node.right : node.left)
        var k = 0
        while k < d && features[k].feature != node.feature { k &+= 1 }
        descend(hotChild, hot: true, node.feature, k, level, e, d, h, cold)
        descend(coldChild, hot: false, node.feature, k, level, e, d, h, cold)
    }

    /// Visits `child` through an edge on `feature`, which is path feature `k` (new when k == d):
    /// updates that feature's entry in place (restored afterwards), writes E one level down and
    /// visits the child unless its c is 0.
    @inline(__always)
    func descend(
        _ child: Int, hot edgeHot: Bool, _ feature: Int32, _ k: Int, _ level: Int, _ e: UnsafeMutablePointer<Double>,
        _ d: Int, _ h: Int, _ cold: Double
    ) {
        let q = fraction[child]
        var ce = e, nd = d, nh = h, nc = cold
        let saved = features[k]
        if k == d {
            features[d] = PathFeature(feature: feature, hot: edgeHot, z: q)
            nd = d &+ 1
            if edgeHot {
                ce = copy(e, h, level)
                Self.multiply(ce, h, by: q)
                nh = h &+ 1
            } else {
                nc = cold * q
            }
        } else if saved.hot {
            let z = saved.z
            ce = copy(e, h, level)
            Self.divide(ce, h, by: z)
            features[k].z = z * q
            if edgeHot {
                Self.multiply(ce, h &- 1, by: z * q)
            } else {
                features[k].hot = false
                nh = h &- 1
                nc = cold * (z * q)
            }
        } else {
            features[k].z = saved.z * q
            nc = cold * q
        }
        if nc != 0 { recurse(child, level &+ 1, ce, nd, nh, nc) }
        features[k] = saved
    }

    /// E's `h + 1` coefficients copied into the frame of depth `level + 1`.
    @inline(__always)
    func copy(_ e: UnsafeMutablePointer<Double>, _ h: Int, _ level: Int) -> UnsafeMutablePointer<Double> {
        let ne = poly + (level &+ 1) &* stride
        for s in 0...h { ne[s] = e[s] }
        return ne
    }

    /// Adds one leaf's contributions (see the type's documentation).
    @inline(__always)
    func leaf(_ v: Double, _ e: UnsafeMutablePointer<Double>, _ d: Int, _ h: Int, _ cold: Double) {
        guard d > 0 else { return }
        let w = weights + d &* stride
        var coldTerm = 0.0
        if h < d {
            var total = 0.0
            for s in 0...h { total += w[s] * e[s] }
            coldTerm = -v * cold * total
        }
        // Every feature's hot value is computed and the cold ones take `coldTerm` instead: a
        // select, not a branch on a pattern that changes from row to row.
        for i in 0..<d {
            let pf = features[i]
            // Σ_s w(s, d) q_s for q = E / (z + x), by synthetic division from the top.
            var carry = e[h]
            var total = 0.0
            var s = h &- 1
            while s >= 0 {
                total += w[s] * carry
                carry = e[s] - pf.z * carry
                s &-= 1
            }
            phi[Int(pf.feature)] += pf.hot ? v * (1 - pf.z) * cold * total : coldTerm
        }
    }

    /// E ← E · (z + x) for E of degree `h` (h + 2 coefficients afterwards).
    @inline(__always)
    static func multiply(_ e: UnsafeMutablePointer<Double>, _ h: Int, by z: Double) {
        e[h &+ 1] = e[h]
        var s = h
        while s > 0 {
            e[s] = z * e[s] + e[s &- 1]
            s &-= 1
        }
        e[0] = z * e[0]
    }

    /// E ← E / (z + x) for E of degree `h` that has that factor.
    @inline(__always)
    static func divide(_ e: UnsafeMutablePointer<Double>, _ h: Int, by z: Double) {
        var carry = e[h]
        var s = h &- 1
        while s >= 0 {
            let original = e[s]
            e[s] = carry
            carry = original - z * carry
            s &-= 1
        }
    }
}
