/// Tree traversal. Exact: the same comparisons, in the same precision, as the producing library.
/// No allocation per row: scratch buffers are allocated once per call.
extension TreeEnsemble {
    /// Rows traversed together through each tree by `predictRaw`.
    static let rowBlock = 16

    /// Raw margins for `rows` rows of `featureCount` values each (row-major, NaN = missing),
    /// written to `out` as `rows x outputCount`.
    ///
    /// From `FlatForest.blockedFrom` rows on, through `quick` where there is one (no categorical
    /// split, at most 32 leaves per tree: `QuickScorer`, measured faster than the blocked kernel
    /// on every such model tried, from 5 to 500 trees, LightGBM and XGBoost); otherwise through
    /// `flat` (every ensemble without categorical splits): blocks of rows through one tree at a
    /// time, or for fewer rows, all trees of one row at a time (`FlatForest.predictBlocked`,
    /// `predictRows`). Otherwise `predictRawWalker`. Sums are taken in the same order as
    /// `predictRawReference` (tree order per row), so all give bit-identical results.
    package func predictRaw(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>) {
        guard let flat else {
            predictRawWalker(x, rows: rows, into: out)
            return
        }
        baseMargin.withUnsafeBufferPointer { bm in
            if rows >= FlatForest.blockedFrom, let quick {
                quick.predict(
                    x, rows: rows, into: out, precision: inputPrecision, baseMargin: bm.baseAddress!,
                    outputCount: outputCount, divisor: divisor)
            } else if rows >= FlatForest.blockedFrom {
                flat.predictBlocked(
                    x, rows: rows, into: out, precision: inputPrecision, baseMargin: bm.baseAddress!,
                    outputCount: outputCount, divisor: divisor)
            } else {
                flat.predictRows(
                    x, rows: rows, into: out, precision: inputPrecision, baseMargin: bm.baseAddress!,
                    outputCount: outputCount, divisor: divisor)
            }
        }
    }

    /// `predictRaw` through `Walker`, for any ensemble (categorical splits included).
    ///
    /// Rows go through each tree in blocks of `rowBlock`, one level at a time for the whole
    /// block, so the independent node loads of different rows overlap instead of each row
    /// waiting on its own chain of loads.
    package func predictRawWalker(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>) {
        let k = outputCount
        let f = featureCount
        let block = Self.rowBlock
        let float32 = inputPrecision == .float32
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: inputPrecision == .double ? 0 : block * f)
        let index = UnsafeMutablePointer<Int32>.allocate(capacity: block)
        let rowPtr = UnsafeMutablePointer<UnsafePointer<Double>>.allocate(capacity: block)
        let accD = UnsafeMutablePointer<Double>.allocate(capacity: block * k)
        let accF = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
        defer {
            scratch.deallocate(); index.deallocate(); rowPtr.deallocate(); accD.deallocate(); accF.deallocate()
        }
        withWalker { walker in
            roots.withUnsafeBufferPointer { rootBuf in
                treeOutput.withUnsafeBufferPointer { outBuf in
                    let nodesP = walker.nodes
                    var start = 0
                    while start < rows {
                        let bn = min(block, rows - start)
                        for i in 0..<bn { rowPtr[i] = canonicalRow(x + (start + i) * f, scratch: scratch + i * f) }
                        for i in 0..<bn {
                            for c in 0..<k {
                                accF[i * k + c] = Float(baseMargin[c])
                                accD[i * k + c] = 0
                            }
                        }
                        for t in 0..<rootBuf.count {
                            let root = rootBuf[t]
                            for i in 0..<bn { index[i] = root }
                            var active = true
                            while active {
                                active = false
                                for i in 0..<bn {
                                    let node = nodesP[Int(index[i])]
                                    if node.feature >= 0 {
                                        index[i] = walker.goesLeft(node, rowPtr[i][Int(node.feature)]) ? node.left : node.right
                                        active = true
                                    }
                                }
                            }
                            let c = Int(outBuf[t])
                            if float32 {
                                for i in 0..<bn { accF[i * k + c] += Float(nodesP[Int(index[i])].value) }
                            } else {
                                for i in 0..<bn { accD[i * k + c] += nodesP[Int(index[i])].value }
                            }
                        }
                        for i in 0..<bn {
                            let o = out + (start + i) * k
                            for c in 0..<k {
                                o[c] = float32 ? Double(accF[i * k + c]) : baseMargin[c] + accD[i * k + c] / divisor
                            }
                        }
                        start += bn
                    }
                }
            }
        }
    }

    /// The plain twin of `predictRaw`: one row at a time, one tree at a time. The tests hold the
    /// blocked kernel to bit-identical results against this one.
    package func predictRawReference(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>) {
        let k = outputCount
        let f = featureCount
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: inputPrecision == .double ? 0 : f)
        defer { scratch.deallocate() }
        withWalker { walker in
            let nodeBuf = walker.nodes
            roots.withUnsafeBufferPointer { rootBuf in
                treeOutput.withUnsafeBufferPointer { outBuf in
                    for r in 0..<rows {
                        let row = canonicalRow(x + r * f, scratch: scratch)
                        let o = out + r * k
                        if inputPrecision == .float32 {
                            // XGBoost: float32 running sums from the base margin.
                            for c in 0..<k {
                                var acc = Float(baseMargin[c])
                                for t in 0..<rootBuf.count where Int(outBuf[t]) == c {
                                    acc += Float(nodeBuf[walker.leaf(from: Int(rootBuf[t]), row: row)].value)
                                }
                                o[c] = Double(acc)
                            }
                            continue
                        }
                        for c in 0..<k { o[c] = 0 }
                        for t in 0..<rootBuf.count {
                            let leaf = walker.leaf(from: Int(rootBuf[t]), row: row)
                            o[Int(outBuf[t])] += nodeBuf[leaf].value
                        }
                        for c in 0..<k { o[c] = baseMargin[c] + o[c] / divisor }
                    }
                }
            }
        }
    }

    /// `row` as the trees see it (`inputPrecision`): either `row` itself or `scratch` filled with
    /// the canonical values. `scratch` must hold `featureCount` values unless the precision is `.double`.
    @inline(__always)
    package func canonicalRow(_ row: UnsafePointer<Double>, scratch: UnsafeMutablePointer<Double>) -> UnsafePointer<Double> {
        switch inputPrecision {
        case .double:
            return row
        case .doubleFlushingTinyToZero:
            let z = InputPrecision.lightGBMZeroThreshold
            for j in 0..<featureCount {
                let v = row[j]
                scratch[j] = (v >= -z && v <= z) ? 0 : v
            }
            return UnsafePointer(scratch)
        case .float32:
            for j in 0..<featureCount { scratch[j] = Double(Float(row[j])) }
            return UnsafePointer(scratch)
        }
    }

    /// The leaf node index that tree `t` routes `row` to (row already in `inputPrecision`).
    package func leafIndex(tree t: Int, row: UnsafePointer<Double>) -> Int {
        withWalker { $0.leaf(from: Int(roots[t]), row: row) }
    }

    /// Whether `node` sends value `x` to its left child (the routing rule, shared by traversal
    /// and by TreeSHAP).
    package func goesLeft(node: Int, value x: Double) -> Bool {
        withWalker { $0.goesLeft($0.nodes[node], x) }
    }
}

extension TreeEnsemble {
    /// Runs `body` with a walker over this ensemble's storage: the routing seam for code outside
    /// VigilCore that must route exactly as prediction does (TreeSHAP). The walker's pointers are
    /// valid only inside `body`.
    package func withWalker<R>(_ body: (Walker) throws -> R) rethrows -> R {
        try nodes.withUnsafeBufferPointer { nodeBuf in
            try categoryBits.withUnsafeBufferPointer { bits in
                try categorySets.withUnsafeBufferPointer { sets in
                    try body(Walker(nodes: nodeBuf.baseAddress!, sets: sets.baseAddress, bits: bits.baseAddress, decoding: categoryDecoding))
                }
            }
        }
    }
}

/// The traversal kernel over raw pointers.
@usableFromInline
package struct Walker {
    package let nodes: UnsafePointer<TreeNode>
    let sets: UnsafePointer<CategorySet>?
    let bits: UnsafePointer<UInt32>?
    let decoding: CategoryDecoding

    /// LightGBM's `kZeroThreshold`: |x| <= 1e-35 counts as zero for missing type Zero.
    static let zeroThreshold = 1e-35

    /// The leaf that the tree rooted at node `root` routes `row` to (row in `inputPrecision`).
    @inline(__always)
    package func leaf(from root: Int, row: UnsafePointer<Double>) -> Int {
        var i = root
        while true {
            let node = nodes[i]
            if node.feature < 0 { return i }
            i = Int(goesLeft(node, row[Int(node.feature)]) ? node.left : node.right)
        }
    }

    /// Whether split `node` sends `value` (already in `inputPrecision`) to its left child.
    @inline(__always)
    package func goesLeft(_ node: TreeNode, _ value: Double) -> Bool {
        var x = value
        let flags = node.flags
        if flags.isCategorical {
            if x.isNaN { return flags.defaultLeft }
            return categoryMatch(setIndex: Int(node.value), x) == flags.categoryMatchGoesLeft
        }
        switch flags.missingBits {
        case 0:  // asZero
            if x.isNaN { x = 0 }
        case 1:  // defaultChild
            if x.isNaN { return flags.defaultLeft }
        default:  // zeroOrNaNDefault
            if x.isNaN || (x >= -Walker.zeroThreshold && x <= Walker.zeroThreshold) { return flags.defaultLeft }
        }
        return x <= node.value
    }

    @inline(__always)
    func categoryMatch(setIndex: Int, _ x: Double) -> Bool {
        guard x.isFinite else { return false }
        switch decoding {
        case .truncate:
            break
        case .nonNegativeThenTruncate:
            if x < 0 || x >= 16_777_216 { return false }
        }
        let c = x.rounded(.towardZero)
        guard c >= 0, c < 2_147_483_648 else { return false }
        let id = Int(c)
        let set = sets![setIndex]
        let word = id >> 5
        guard word < Int(set.words) else { return false }
        return (bits![Int(set.offset) + word] >> UInt32(id & 31)) & 1 == 1
    }
}
