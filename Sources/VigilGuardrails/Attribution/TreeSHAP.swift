internal import VigilKernels
package import VigilCore

/// Exact path-dependent TreeSHAP over a `TreeEnsemble` (Lundberg, Erion & Lee 2018, "Consistent
/// individualized feature attribution for tree ensembles", Algorithm 2): the Shapley values of
/// the game v(S) = E[f(x) | x_S], where a split on a feature outside S sends the row down both
/// children, weighted by each child's share of the node's cover (LightGBM's data counts,
/// XGBoost's `sum_hessian`). The same quantity as LightGBM `pred_contrib=True` and XGBoost
/// `pred_contribs=True`.
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
    /// Path elements one walk needs: (D + 1)(D + 2) / 2 for the deepest tree's depth D (one path
    /// copy per level, each at most as long as the level is deep).
    let pathCapacity: Int

    /// Immutable per-model tables in memory of their own, so that the hot loop reads plain
    /// pointers (no array access checks, no nested `withUnsafeBufferPointer`).
    final class Tables: @unchecked Sendable {
        /// Per node: its cover divided by its parent's (the share of the parent's training data
        /// that reaches it); 1 for a root.
        let coverFraction: UnsafeMutableBufferPointer<Double>
        /// Per tree: the depth of its deepest leaf (0 for a single leaf, which TreeSHAP skips).
        let treeDepth: UnsafeMutableBufferPointer<Int32>
        /// 1/k for k = 0...D + 1 (entry 0 unused), so the inner loops multiply instead of dividing.
        let reciprocal: UnsafeMutableBufferPointer<Double>

        init(coverFraction: [Double], treeDepth: [Int32], reciprocal: [Double]) {
            func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
                let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, a.count))
                _ = p.initialize(from: a)
                return p
            }
            self.coverFraction = copy(coverFraction)
            self.treeDepth = copy(treeDepth)
            self.reciprocal = copy(reciprocal)
        }

        deinit {
            coverFraction.deallocate()
            treeDepth.deallocate()
            reciprocal.deallocate()
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
        pathCapacity = (d + 1) * (d + 2) / 2
        tables = Tables(
            coverFraction: fraction, treeDepth: depth, reciprocal: (0...(d + 1)).map { $0 == 0 ? 0 : 1 / Double($0) })
    }

    /// `rows x outputCount x (featureCount + 1)`: contributions then the base value, per output.
    /// Each partition allocates its path buffer and row scratch once; nothing is allocated per row.
    package func explain(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, threads: Int?) {
        let f = ensemble.featureCount
        let k = ensemble.outputCount
        let stride = k * (f + 1)
        let divisor = ensemble.divisor
        let tables = self.tables
        ensemble.withWalker { walker in
            ensemble.roots.withUnsafeBufferPointer { roots in
                ensemble.treeOutput.withUnsafeBufferPointer { outputs in
                    let ctx = UncheckedSendable((walker, roots, outputs, x, out))
                    Parallel.forEachChunk(count: rows, minChunk: 16, threads: threads ?? Parallel.cores) { range in
                        let (walker, roots, outputs, x, out) = ctx.value
                        let path = UnsafeMutablePointer<PathElement>.allocate(capacity: max(1, pathCapacity))
                        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: f)
                        defer {
                            path.deallocate()
                            scratch.deallocate()
                        }
                        for r in range {
                            let row = ensemble.canonicalRow(x + r * f, scratch: scratch)
                            let o = out + r * stride
                            o.update(repeating: 0, count: stride)
                            for t in 0..<roots.count where tables.treeDepth[t] > 0 {
                                let walk = PathWalk(
                                    walker: walker, fraction: UnsafePointer(tables.coverFraction.baseAddress!), row: row,
                                    phi: o + Int(outputs[t]) * (f + 1), reciprocal: UnsafePointer(tables.reciprocal.baseAddress!))
                                walk.recurse(Int(roots[t]), path, 0, 1, 1, -1)
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

/// One element of a TreeSHAP path: a feature seen on the way from the root, the fraction of the
/// "feature unknown" mass (`zero`: product of cover shares) and of the "feature known" mass
/// (`one`: 1 if the row's value follows this path, else 0) that reach here, and the weight of the
/// permutations in which `index` of the path's features come before the one being attributed.
struct PathElement {
    var feature: Int32
    var zero: Double
    var one: Double
    var weight: Double
}

/// The recursion of one tree for one row (Algorithm 2), over raw pointers.
///
/// `path` holds the current level's copy of the path, `u + 1` elements with element 0 a
/// placeholder (feature -1); each child gets its own copy just past the current one, so the
/// whole walk fits in `TreeSHAP.pathCapacity` elements.
struct PathWalk {
    let walker: Walker
    let fraction: UnsafePointer<Double>
    let row: UnsafePointer<Double>
    /// The output's `featureCount` contributions, accumulated.
    let phi: UnsafeMutablePointer<Double>
    /// 1/k for k = 0...maxDepth + 1 (entry 0 unused).
    let reciprocal: UnsafePointer<Double>

    func recurse(
        _ j: Int, _ path: UnsafeMutablePointer<PathElement>, _ depth: Int, _ zero: Double, _ one: Double, _ feature: Int32
    ) {
        extend(path, depth, zero, one, feature)
        let node = walker.nodes[j]
        if node.isLeaf {
            // Each feature on the path: its Shapley weight with it unwound, times the difference
            // its being known makes at this leaf: unwoundSum(i) · (one − zero) · value. For a
            // feature the row does not follow here (one = 0) the unwound sum is
            // (u + 1) / zero · Σⱼ weightⱼ / (u − j), so its term is −(u + 1) · Σⱼ weightⱼ / (u − j)
            // · value, the same for every such feature: computed once per leaf.
            guard depth > 0 else { return }
            var coldTerm: Double?
            for i in 1...depth {
                let e = path[i]
                if e.one != 0 {
                    phi[Int(e.feature)] += unwoundSum(path, depth, i) * (e.one - e.zero) * node.value
                } else {
                    if coldTerm == nil {
                        var s = 0.0
                        var j = depth - 1
                        while j >= 0 {
                            s += path[j].weight * reciprocal[depth - j]
                            j -= 1
                        }
                        coldTerm = -Double(depth + 1) * s * node.value
                    }
                    phi[Int(e.feature)] += coldTerm!
                }
            }
            return
        }
        let left = walker.goesLeft(node, row[Int(node.feature)])
        let hot = Int(left ? node.left : node.right)
        let cold = Int(left ? node.right : node.left)
        // A feature met before on this path is taken out and re-entered with both of its
        // fractions combined, so each feature appears once.
        var u = depth
        var incomingZero = 1.0, incomingOne = 1.0
        var k = 1
        while k <= u && path[k].feature != node.feature { k += 1 }
        if k <= u {
            incomingZero = path[k].zero
            incomingOne = path[k].one
            unwind(path, u, k)
            u -= 1
        }
        let next = path + (u + 1)
        // A child that neither fraction reaches adds exactly 0 to every contribution; skipping
        // it also keeps 0/0 out of `unwind`.
        let hotZero = incomingZero * fraction[hot]
        if hotZero != 0 || incomingOne != 0 {
            next.update(from: path, count: u + 1)
            recurse(hot, next, u + 1, hotZero, incomingOne, node.feature)
        }
        let coldZero = incomingZero * fraction[cold]
        if coldZero != 0 {
            next.update(from: path, count: u + 1)
            recurse(cold, next, u + 1, coldZero, 0, node.feature)
        }
    }

    /// Appends a feature with fractions (`zero`, `one`) as element `u` and updates the
    /// permutation weights: a path of u features has u + 1 subset sizes.
    @inline(__always)
    func extend(_ path: UnsafeMutablePointer<PathElement>, _ u: Int, _ zero: Double, _ one: Double, _ feature: Int32) {
        path[u] = PathElement(feature: feature, zero: zero, one: one, weight: u == 0 ? 1 : 0)
        let inverseN = reciprocal[u + 1]
        var i = u - 1
        while i >= 0 {
            let w = path[i].weight
            path[i + 1].weight += one * w * Double(i + 1) * inverseN
            path[i].weight = zero * w * Double(u - i) * inverseN
            i -= 1
        }
    }

    /// Undoes `extend` for element `k` of a path whose last element is `u`, in place.
    @inline(__always)
    func unwind(_ path: UnsafeMutablePointer<PathElement>, _ u: Int, _ k: Int) {
        let one = path[k].one, zero = path[k].zero
        let n = Double(u + 1), inverseN = reciprocal[u + 1]
        var i = u - 1
        if one != 0 {
            // `one` is 1 here: a product of "the row goes this way" indicators.
            var carry = path[u].weight
            while i >= 0 {
                let w = path[i].weight
                path[i].weight = carry * n * reciprocal[i + 1]
                carry = w - path[i].weight * zero * Double(u - i) * inverseN
                i -= 1
            }
        } else {
            let scale = n / zero
            while i >= 0 {
                path[i].weight *= scale * reciprocal[u - i]
                i -= 1
            }
        }
        var m = k
        while m < u {
            path[m].feature = path[m + 1].feature
            path[m].zero = path[m + 1].zero
            path[m].one = path[m + 1].one
            m += 1
        }
    }

    /// The total weight the path would have with element `k` unwound, without changing it: the
    /// inner loop of TreeSHAP (once per leaf and path element), so it multiplies by the
    /// precomputed `reciprocal`s instead of dividing.
    @inline(__always)
    func unwoundSum(_ path: UnsafeMutablePointer<PathElement>, _ u: Int, _ k: Int) -> Double {
        let one = path[k].one, zero = path[k].zero
        let n = Double(u + 1), inverseN = reciprocal[u + 1]
        var total = 0.0
        var i = u - 1
        if one != 0 {
            var carry = path[u].weight
            while i >= 0 {
                let w = carry * n * reciprocal[i + 1]
                total += w
                carry = path[i].weight - w * zero * Double(u - i) * inverseN
                i -= 1
            }
        } else {
            while i >= 0 {
                total += path[i].weight * reciprocal[u - i]
                i -= 1
            }
            total *= n / zero
        }
        return total
    }
}
