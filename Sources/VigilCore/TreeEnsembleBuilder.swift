/// Builds a `TreeEnsemble`, checking every rule the evaluators rely on, so that no malformed
/// file can make traversal read out of bounds or loop: children in range, every node reached
/// exactly once from the root, split features below `featureCount`, category sets present,
/// leaf values finite. Errors name the tree and node.
package struct TreeEnsembleBuilder: Sendable {
    package let featureCount: Int
    package let objective: Objective
    package var inputPrecision: InputPrecision
    package var categoryDecoding: CategoryDecoding
    package var featureNames: [String]?
    /// Added to each output's margin; zeros unless set.
    package var baseMargin: [Double]
    /// The sum of leaf values is divided by this (random-forest averaging).
    package var divisor: Double = 1
    package var notes: [String: String] = [:]

    private var nodes: [TreeNode] = []
    private var cover: [Double] = []
    private var roots: [Int32] = []
    private var treeOutput: [Int32] = []
    private var categorySets: [CategorySet] = []
    private var categoryBits: [UInt32] = []

    package init(
        featureCount: Int, objective: Objective, inputPrecision: InputPrecision = .double,
        categoryDecoding: CategoryDecoding = .truncate, featureNames: [String]? = nil
    ) {
        self.featureCount = featureCount
        self.objective = objective
        self.inputPrecision = inputPrecision
        self.categoryDecoding = categoryDecoding
        self.featureNames = featureNames
        self.baseMargin = Array(repeating: 0, count: objective.outputCount)
    }

    package var treeCount: Int { roots.count }

    /// Adds a category set given as bitset words (LightGBM `cat_threshold`); returns its index.
    package mutating func addCategorySet(words: [UInt32]) -> Int {
        categorySets.append(CategorySet(offset: Int32(categoryBits.count), words: Int32(words.count)))
        categoryBits.append(contentsOf: words)
        return categorySets.count - 1
    }

    /// Adds a category set given as a list of category ids (XGBoost `categories`); returns its index.
    package mutating func addCategorySet(categories: [Int]) throws -> Int {
        var words: [UInt32] = []
        for c in categories {
            guard c >= 0, c < 1 << 24 else {
                throw VigilError.modelInvalid("category id \(c) is outside 0..<\(1 << 24)")
            }
            let w = c / 32
            if words.count <= w { words.append(contentsOf: repeatElement(0, count: w + 1 - words.count)) }
            words[w] |= UInt32(1) << UInt32(c % 32)
        }
        return addCategorySet(words: words)
    }

    /// Adds one tree. `treeNodes` use indices local to the tree, root at 0. `treeCover`, if given,
    /// has one entry per node.
    package mutating func addTree(nodes treeNodes: [TreeNode], cover treeCover: [Double]? = nil, output: Int) throws {
        let t = roots.count
        guard !treeNodes.isEmpty else { throw VigilError.modelInvalid("tree \(t) has no nodes") }
        guard output >= 0, output < objective.outputCount else {
            throw VigilError.modelInvalid("tree \(t) adds to output \(output) but the model has \(objective.outputCount) output(s)")
        }
        if let c = treeCover {
            guard c.count == treeNodes.count else {
                throw VigilError.modelInvalid("tree \(t): \(c.count) cover values for \(treeNodes.count) nodes")
            }
            if let i = c.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw VigilError.modelInvalid("tree \(t), node \(i): cover \(c[i]) must be finite and >= 0")
            }
        }
        let n = treeNodes.count
        for (i, node) in treeNodes.enumerated() {
            if node.isLeaf {
                guard node.value.isFinite else {
                    throw VigilError.modelInvalid("tree \(t), leaf node \(i): value \(node.value) is not finite")
                }
                continue
            }
            guard Int(node.feature) < featureCount else {
                throw VigilError.modelInvalid("tree \(t), node \(i): splits on feature index \(node.feature) but the model has \(featureCount) features (valid: 0..<\(featureCount))")
            }
            guard node.left >= 0, Int(node.left) < n, node.right >= 0, Int(node.right) < n else {
                throw VigilError.modelInvalid("tree \(t), node \(i): child \(node.left)/\(node.right) is outside the tree's \(n) nodes")
            }
            guard node.flags.missingBits <= 2 else {
                throw VigilError.modelInvalid("tree \(t), node \(i): unknown missing-value rule \(node.flags.missingBits)")
            }
            if node.flags.isCategorical {
                let idx = Int(exactly: node.value) ?? -1
                guard idx >= 0, idx < categorySets.count else {
                    throw VigilError.modelInvalid("tree \(t), node \(i): category set \(node.value) does not exist (\(categorySets.count) sets)")
                }
            } else if node.value.isNaN {
                throw VigilError.modelInvalid("tree \(t), node \(i): threshold is NaN")
            }
        }
        // Every node reached exactly once from the root: a tree, no cycle, no orphan.
        var seen = [Bool](repeating: false, count: n)
        var stack: [Int] = [0]
        var visited = 0
        while let i = stack.popLast() {
            guard !seen[i] else {
                throw VigilError.modelInvalid("tree \(t): node \(i) is reached twice (the nodes do not form a tree)")
            }
            seen[i] = true
            visited += 1
            let node = treeNodes[i]
            if !node.isLeaf {
                stack.append(Int(node.left))
                stack.append(Int(node.right))
            }
        }
        guard visited == n else {
            let orphan = seen.firstIndex(of: false) ?? -1
            throw VigilError.modelInvalid("tree \(t): node \(orphan) cannot be reached from the root")
        }
        let base = Int32(nodes.count)
        roots.append(base)
        treeOutput.append(Int32(output))
        for var node in treeNodes {
            if !node.isLeaf {
                node.left += base
                node.right += base
            }
            nodes.append(node)
        }
        cover.append(contentsOf: treeCover ?? Array(repeating: 0, count: n))
    }

    package func build() throws -> TreeEnsemble {
        guard featureCount > 0 else { throw VigilError.modelInvalid("a tree model needs at least one feature") }
        guard !roots.isEmpty else { throw VigilError.modelInvalid("the model has no trees") }
        guard baseMargin.count == objective.outputCount, baseMargin.allSatisfy(\.isFinite) else {
            throw VigilError.modelInvalid("base margin \(baseMargin) must have \(objective.outputCount) finite value(s)")
        }
        guard divisor.isFinite, divisor > 0 else { throw VigilError.modelInvalid("averaging divisor \(divisor) must be > 0") }
        if let names = featureNames, names.count != featureCount {
            throw VigilError.modelInvalid("\(names.count) feature names for \(featureCount) features")
        }
        if case .binaryLogistic(let scale) = objective, !(scale.isFinite && scale > 0) {
            throw VigilError.modelInvalid("logistic scale \(scale) must be finite and > 0")
        }
        if case .multiclassSoftmax(let k) = objective, k < 2 {
            throw VigilError.modelInvalid("a multiclass model needs at least 2 classes, got \(k)")
        }
        return TreeEnsemble(
            featureCount: featureCount, objective: objective, nodes: nodes, cover: cover, roots: roots,
            treeOutput: treeOutput, categorySets: categorySets, categoryBits: categoryBits,
            baseMargin: baseMargin, divisor: divisor, inputPrecision: inputPrecision,
            categoryDecoding: categoryDecoding, featureNames: featureNames, notes: notes)
    }
}
