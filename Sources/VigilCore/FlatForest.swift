/// A prediction-only copy of a `TreeEnsemble` laid out for branch-free traversal: every split is
/// one `value <= threshold` comparison on a precomputed column, children are adjacent (the right
/// child is `left + 1`), and a leaf is a node that routes to itself. Built at load for every
/// ensemble without categorical splits; `TreeEnsemble.predictRaw` uses it when present, except
/// for batches that `QuickScorer` takes.
///
/// Columns. Each row is expanded once into `columnCount` values, per feature `f`:
///
/// - `f`: the canonical value (`inputPrecision`), NaN kept. `NaN <= t` is false, so a missing
///   value goes right.
/// - `F + f`: the same with NaN replaced by -∞, which is `<=` every threshold, so a missing value
///   goes left.
/// - only when some split has the `zeroOrNaNDefault` rule, `2F + f` and `3F + f`: as the two
///   above, with a value in [-1e-35, 1e-35] also treated as missing (`Walker.zeroThreshold`).
/// - the last column is -∞: a leaf compares it with its own value and stays where it is.
///
/// Each split picks the column that reproduces its missing-value rule: `defaultChild` picks `f`
/// or `F + f` by its default direction; `asZero` picks by where 0 goes (`0 <= t`), since a
/// NaN read as 0 takes that side; `zeroOrNaNDefault` picks `2F + f` or `3F + f` by its default
/// direction. For every non-missing value the comparison is the walker's `x <= t` on the same
/// `Double`, so routing is exactly `Walker.goesLeft` (thresholds are never NaN; leaf values are
/// finite, so -∞ <= leaf value holds).
///
/// Numerical contract: the leaf each row reaches in each tree is the walker's; leaf values are
/// summed per row in tree order, in `Double` (or in `Float` from the base margin for
/// `InputPrecision.float32`), exactly as `predictRawReference` does, so results are bit-identical.
package final class FlatForest: @unchecked Sendable {
    /// A split (`column < leafColumn`) or a leaf (`column == leafColumn`, `threshold` = its value,
    /// `left` = its own index). 16 bytes, so four nodes share a cache line.
    struct Node {
        var threshold: Double
        var column: Int32
        var left: Int32
    }

    let nodes: UnsafeMutablePointer<Node>
    /// Per tree: its root's index in `nodes`, the depth of its deepest leaf, its output.
    let roots: UnsafeMutablePointer<Int32>
    let depths: UnsafeMutablePointer<Int32>
    let outputs: UnsafeMutablePointer<Int32>
    let nodeCount: Int
    let treeCount: Int
    let featureCount: Int
    /// Whether columns 2F..<4F (the zero-as-missing views) exist.
    let zeroAsMissing: Bool
    let columnCount: Int
    var leafColumn: Int { columnCount - 1 }
    let maxDepth: Int

    /// nil when the ensemble has a categorical split (those go through `Walker`). The arguments
    /// are a checked ensemble's (`TreeEnsembleBuilder`).
    init?(nodes src: [TreeNode], roots treeRoots: [Int32], treeOutput: [Int32], featureCount f: Int) {
        if src.contains(where: { !$0.isLeaf && $0.flags.isCategorical }) { return nil }
        zeroAsMissing = src.contains { !$0.isLeaf && $0.flags.missingRule == .zeroOrNaNDefault }
        columnCount = (zeroAsMissing ? 4 : 2) * f + 1
        featureCount = f
        treeCount = treeRoots.count
        nodeCount = src.count
        nodes = .allocate(capacity: max(1, src.count))
        roots = .allocate(capacity: treeCount)
        depths = .allocate(capacity: treeCount)
        outputs = .allocate(capacity: treeCount)
        let leafColumn = Int32(columnCount - 1)
        var next = 0
        var deepest = 0
        // Breadth-first per tree, the two children of a split placed side by side.
        var queue: [(source: Int, slot: Int, depth: Int)] = []
        for t in 0..<treeCount {
            queue.removeAll(keepingCapacity: true)
            queue.append((Int(treeRoots[t]), next, 0))
            roots[t] = Int32(next)
            outputs[t] = treeOutput[t]
            next += 1
            var head = 0
            var depth = 0
            while head < queue.count {
                let (s, slot, d) = queue[head]
                head += 1
                depth = max(depth, d)
                let node = src[s]
                if node.isLeaf {
                    (nodes + slot).initialize(to: Node(threshold: node.value, column: leafColumn, left: Int32(slot)))
                    continue
                }
                let column: Int
                switch node.flags.missingRule {
                case .defaultChild: column = node.flags.defaultLeft ? f + Int(node.feature) : Int(node.feature)
                case .asZero: column = 0 <= node.value ? f + Int(node.feature) : Int(node.feature)
                case .zeroOrNaNDefault: column = (node.flags.defaultLeft ? 3 : 2) * f + Int(node.feature)
                }
                (nodes + slot).initialize(to: Node(threshold: node.value, column: Int32(column), left: Int32(next)))
                queue.append((Int(node.left), next, d + 1))
                queue.append((Int(node.right), next + 1, d + 1))
                next += 2
            }
            depths[t] = Int32(depth)
            deepest = max(deepest, depth)
        }
        maxDepth = deepest
    }

    deinit {
        nodes.deallocate()
        roots.deallocate()
        depths.deallocate()
        outputs.deallocate()
    }

    /// Writes the columns of one row (`featureCount` values, NaN = missing) to `c`, column `j` at
    /// `c[j * stride]`.
    @inline(__always)
    func expand(_ row: UnsafePointer<Double>, precision: InputPrecision, into c: UnsafeMutablePointer<Double>, stride: Int) {
        let f = featureCount
        let z = InputPrecision.lightGBMZeroThreshold
        for j in 0..<f {
            var v = row[j]
            switch precision {
            case .double: break
            case .doubleFlushingTinyToZero: v = (v >= -z && v <= z) ? 0 : v
            case .float32: v = Double(Float(v))
            }
            c[j &* stride] = v
            c[(f &+ j) &* stride] = v.isNaN ? -.infinity : v
            if zeroAsMissing {
                let zt = Walker.zeroThreshold
                let missing = v.isNaN || (v >= -zt && v <= zt)
                c[(2 &* f &+ j) &* stride] = missing ? .nan : v
                c[(3 &* f &+ j) &* stride] = missing ? -.infinity : v
            }
        }
        c[(columnCount &- 1) &* stride] = -.infinity
    }

    /// Rows per block of the batch kernel: their columns (2F + 1 doubles each) stay in L2 while
    /// every tree's nodes stay in L1. The block's columns are stored column by column, so rows
    /// that read the same column read neighbouring memory.
    static let rowBlock = 128
    /// Steps every row of a block takes through a tree before the rows still inside a split are
    /// gathered into a list (most rows reach a leaf within a few levels of a LightGBM tree).
    static let firstSteps = 3
    /// Steps over the gathered list between gatherings.
    static let laterSteps = 4
    /// `firstSteps` of the per-row kernel, whose lanes are trees (nodes from L2, not L1).
    static let rowFirstSteps = 4
    /// From this many rows on, `predictRaw` takes the blocked kernel.
    static let blockedFrom = 16

    /// Margins for `rows` rows, `rows x outputCount` into `out` (see `TreeEnsemble.predictRaw`).
    ///
    /// Blocks of `rowBlock` rows go through one tree at a time. Within a tree every row takes the
    /// same number of steps, without a branch per row: a row that reached its leaf stays there.
    /// The root's step reads one column for the whole block. After `firstSteps` steps the rows
    /// not yet at a leaf are listed, and only they step on, `laterSteps` at a time, until the
    /// list is empty.
    func predictBlocked(
        _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>,
        precision: InputPrecision, baseMargin: UnsafePointer<Double>, outputCount k: Int, divisor: Double
    ) {
        let f = featureCount
        let cc = columnCount
        let block = Self.rowBlock
        let cols = UnsafeMutablePointer<Double>.allocate(capacity: block * cc)
        let index = UnsafeMutablePointer<Int32>.allocate(capacity: block)
        let liveRow = UnsafeMutablePointer<Int32>.allocate(capacity: block)
        let liveIndex = UnsafeMutablePointer<Int32>.allocate(capacity: block)
        let accD = UnsafeMutablePointer<Double>.allocate(capacity: block * k)
        let accF = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
        defer {
            cols.deallocate(); index.deallocate(); liveRow.deallocate(); liveIndex.deallocate()
            accD.deallocate(); accF.deallocate()
        }
        let float32 = precision == .float32
        let leafColumn = Int32(self.leafColumn)
        let nodes = self.nodes
        var start = 0
        while start < rows {
            let bn = min(block, rows - start)
            for i in 0..<bn { expand(x + (start &+ i) &* f, precision: precision, into: cols + i, stride: block) }
            for i in 0..<(bn &* k) { accD[i] = 0 }
            for i in 0..<bn { for c in 0..<k { accF[i &* k &+ c] = Float(baseMargin[c]) } }
            for t in 0..<treeCount {
                let root = nodes[Int(roots[t])]
                let depth = Int(depths[t])
                let c = Int(outputs[t])
                if depth == 0 {
                    if float32 {
                        for i in 0..<bn { accF[i &* k &+ c] += Float(root.threshold) }
                    } else {
                        for i in 0..<bn { accD[i &* k &+ c] += root.threshold }
                    }
                    continue
                }
                let rootColumn = cols + Int(root.column) &* block
                for i in 0..<bn { index[i] = root.left &+ (rootColumn[i] <= root.threshold ? 0 : 1) }
                let first = min(depth, Self.firstSteps)
                for _ in 1..<first {
                    for i in 0..<bn {
                        let n = nodes[Int(index[i])]
                        index[i] = n.left &+ (cols[Int(n.column) &* block &+ i] <= n.threshold ? 0 : 1)
                    }
                }
                var done = first
                if done < depth {
                    // The rows still inside a split, with their nodes side by side, so the steps
                    // below read and write one array instead of going through the row's slot.
                    var count = 0
                    for i in 0..<bn {
                        let at = index[i]
                        liveRow[count] = Int32(i)
                        liveIndex[count] = at
                        count &+= nodes[Int(at)].column != leafColumn ? 1 : 0
                    }
                    while count > 0 {
                        let steps = min(depth - done, Self.laterSteps)
                        for _ in 0..<steps {
                            for a in 0..<count {
                                let n = nodes[Int(liveIndex[a])]
                                liveIndex[a] = n.left &+ (cols[Int(n.column) &* block &+ Int(liveRow[a])] <= n.threshold ? 0 : 1)
                            }
                        }
                        done &+= steps
                        if done >= depth {
                            for a in 0..<count { index[Int(liveRow[a])] = liveIndex[a] }
                            break
                        }
                        var kept = 0
                        for a in 0..<count {
                            let i = liveRow[a], at = liveIndex[a]
                            index[Int(i)] = at
                            liveRow[kept] = i
                            liveIndex[kept] = at
                            kept &+= nodes[Int(at)].column != leafColumn ? 1 : 0
                        }
                        count = kept
                    }
                }
                if float32 {
                    for i in 0..<bn { accF[i &* k &+ c] += Float(nodes[Int(index[i])].threshold) }
                } else {
                    for i in 0..<bn { accD[i &* k &+ c] += nodes[Int(index[i])].threshold }
                }
            }
            for i in 0..<bn {
                let o = out + (start &+ i) &* k
                for c in 0..<k {
                    o[c] = float32 ? Double(accF[i &* k &+ c]) : baseMargin[c] + accD[i &* k &+ c] / divisor
                }
            }
            start &+= bn
        }
    }

    /// Margins for a few rows, one row at a time: all trees of the row step together (the trees
    /// are the lanes), then the leaves are summed in tree order. Scratch lives on the stack when
    /// it is small enough; nothing else is allocated.
    func predictRows(
        _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>,
        precision: InputPrecision, baseMargin: UnsafePointer<Double>, outputCount k: Int, divisor: Double
    ) {
        let f = featureCount
        let trees = treeCount
        let leafColumn = Int32(self.leafColumn)
        let nodes = self.nodes
        withUnsafeTemporaryAllocation(of: Double.self, capacity: columnCount) { colBuf in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * trees) { laneBuf in
                let cols = colBuf.baseAddress!
                let index = laneBuf.baseAddress!
                let live = index + trees
                for r in 0..<rows {
                    expand(x + r &* f, precision: precision, into: cols, stride: 1)
                    for t in 0..<trees { index[t] = roots[t] }
                    for _ in 0..<min(maxDepth, Self.rowFirstSteps) {
                        for t in 0..<trees {
                            let n = nodes[Int(index[t])]
                            index[t] = n.left &+ (cols[Int(n.column)] <= n.threshold ? 0 : 1)
                        }
                    }
                    var count = 0
                    if maxDepth > Self.rowFirstSteps {
                        for t in 0..<trees {
                            live[count] = Int32(t)
                            count &+= nodes[Int(index[t])].column != leafColumn ? 1 : 0
                        }
                    }
                    var done = Self.rowFirstSteps
                    while count > 0 {
                        let steps = min(maxDepth - done, Self.laterSteps)
                        for _ in 0..<steps {
                            for a in 0..<count {
                                let t = Int(live[a])
                                let n = nodes[Int(index[t])]
                                index[t] = n.left &+ (cols[Int(n.column)] <= n.threshold ? 0 : 1)
                            }
                        }
                        done &+= steps
                        if done >= maxDepth { break }
                        var kept = 0
                        for a in 0..<count {
                            let t = live[a]
                            live[kept] = t
                            kept &+= nodes[Int(index[Int(t)])].column != leafColumn ? 1 : 0
                        }
                        count = kept
                    }
                    let o = out + r &* k
                    if precision == .float32 {
                        for c in 0..<k {
                            var acc = Float(baseMargin[c])
                            for t in 0..<trees where Int(outputs[t]) == c { acc += Float(nodes[Int(index[t])].threshold) }
                            o[c] = Double(acc)
                        }
                    } else {
                        for c in 0..<k { o[c] = 0 }
                        for t in 0..<trees { o[Int(outputs[t])] += nodes[Int(index[t])].threshold }
                        for c in 0..<k { o[c] = baseMargin[c] + o[c] / divisor }
                    }
                }
            }
        }
    }
}
