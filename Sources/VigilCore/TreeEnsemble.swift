/// One node of a tree ensemble, packed into 24 bytes so a traversal touches one cache line
/// per node. Trees are flat arrays indexed by node (treelite's `Tree`, Hummingbird's trie).
///
/// - Split node (`feature >= 0`): a numeric split sends `x` left when `x <= value`; a categorical
///   split (`flags.isCategorical`) uses `value` as the index of its category set.
/// - Leaf (`feature == -1`): `value` is the leaf's output.
package struct TreeNode: Sendable, Equatable {
    package var value: Double
    package var feature: Int32
    package var left: Int32
    package var right: Int32
    package var flags: NodeFlags

    package init(value: Double, feature: Int32, left: Int32, right: Int32, flags: NodeFlags) {
        self.value = value
        self.feature = feature
        self.left = left
        self.right = right
        self.flags = flags
    }

    package static func leaf(_ value: Double) -> TreeNode {
        TreeNode(value: value, feature: -1, left: -1, right: -1, flags: NodeFlags())
    }

    @inlinable package var isLeaf: Bool { feature < 0 }
}

/// How a split treats a missing value (NaN). The loaders map each format's rules onto these.
package enum MissingRule: UInt8, Sendable, Equatable, CaseIterable {
    /// NaN is read as 0.0 and compared like any value (LightGBM missing type None).
    case asZero = 0
    /// NaN takes the default child (LightGBM missing type NaN, XGBoost, categorical splits).
    case defaultChild = 1
    /// NaN and zero (|x| <= 1e-35) take the default child (LightGBM missing type Zero).
    case zeroOrNaNDefault = 2
}

/// Bit-packed per-node flags: default direction, missing rule, categorical, match side.
package struct NodeFlags: Sendable, Equatable {
    package var rawValue: UInt8

    package init() { rawValue = 0 }

    package init(
        defaultLeft: Bool, missing: MissingRule, categorical: Bool = false, categoryMatchGoesLeft: Bool = true
    ) {
        rawValue = (defaultLeft ? 1 : 0) | (missing.rawValue << 1)
            | (categorical ? 0b1000 : 0) | (categoryMatchGoesLeft ? 0b1_0000 : 0)
    }

    /// Where a missing value goes when the missing rule sends it to the default child.
    @inlinable package var defaultLeft: Bool { rawValue & 1 != 0 }
    package var missingRule: MissingRule { MissingRule(rawValue: (rawValue >> 1) & 0b11) ?? .defaultChild }
    @inlinable package var isCategorical: Bool { rawValue & 0b1000 != 0 }
    /// For a categorical split: a value whose category is in the set goes left (LightGBM) or
    /// right (XGBoost's partition splits).
    @inlinable package var categoryMatchGoesLeft: Bool { rawValue & 0b1_0000 != 0 }
    @inlinable var missingBits: UInt8 { (rawValue >> 1) & 0b11 }
}

/// How an input value becomes a category id for a categorical split.
package enum CategoryDecoding: UInt8, Sendable, Equatable {
    /// Truncate toward zero; a negative result or a non-finite value is no category
    /// (LightGBM: `static_cast<int>(fval) < 0` goes right; -0.5 is category 0).
    case truncate = 0
    /// A negative value, a value >= 2^24 or a non-finite one is no category; otherwise truncate
    /// (XGBoost's `InvalidCat`: -0.5 is no category).
    case nonNegativeThenTruncate = 1
}

/// How input values are canonicalised before any comparison, and how leaf values are summed.
package enum InputPrecision: UInt8, Sendable, Equatable {
    /// Compare the `Double` input as it is; sum in `Double`.
    case double = 0
    /// LightGBM: a value with |x| <= 1e-35f (`kZeroThreshold`) is read as 0 before the trees see
    /// it (its C API drops such values from a row); sums in `Double`, in tree order.
    case doubleFlushingTinyToZero = 2
    /// XGBoost: each input is rounded to `Float`, and leaf values are summed in `Float` in tree
    /// order starting from the base margin, as its CPU predictor does.
    case float32 = 1

    /// `Double(Float(1e-35))`, LightGBM's `kZeroThreshold`.
    package static let lightGBMZeroThreshold = Double(Float(1e-35))
}

/// A set of category ids stored as a bitset of 32-bit words (id `c` is bit `c % 32` of word `c / 32`).
package struct CategorySet: Sendable, Equatable {
    package var offset: Int32
    package var words: Int32
}

/// A checked, immutable tree ensemble. Built only through `TreeEnsembleBuilder`.
///
/// margin_k = baseMargin[k] + (sum of the leaf values of the trees whose `treeOutput` is k) / divisor
///
/// Numerical contract: traversal is exact (the same comparisons as the producing library);
/// sums run in tree order in `Double`.
package struct TreeEnsemble: Sendable {
    package let featureCount: Int
    package let objective: Objective
    package let nodes: [TreeNode]
    /// Node count of the tree (used by TreeSHAP); the cover of each node: LightGBM's data count,
    /// XGBoost's `sum_hessian`.
    package let cover: [Double]
    package let roots: [Int32]
    package let treeOutput: [Int32]
    package let categorySets: [CategorySet]
    package let categoryBits: [UInt32]
    package let baseMargin: [Double]
    /// 1, or the number of iterations for a random forest averaged like LightGBM's `average_output`.
    package let divisor: Double
    package let inputPrecision: InputPrecision
    package let categoryDecoding: CategoryDecoding
    package let featureNames: [String]?
    /// Free-form facts the loader wants `inspect` to show (format version, objective string).
    package let notes: [String: String]
    /// The branch-free layout `predictRaw` uses for fewer than `FlatForest.blockedFrom` rows, and
    /// for batches when there is no `quick`; built here once; nil when a split is categorical.
    package let flat: FlatForest?
    /// The QuickScorer layout `predictRaw` uses for batches, built here once; nil when a split
    /// is categorical or a tree has more than 32 leaves (with up to 64, `QuickScorer`'s
    /// `UInt64` kernel measured slower than `flat`: xgb500, depth 6, 133k vs 228k rows/s).
    package let quick: QuickScorer?

    package var outputCount: Int { objective.outputCount }
    package var treeCount: Int { roots.count }
    package var leafCount: Int { nodes.reduce(0) { $0 + ($1.isLeaf ? 1 : 0) } }

    /// Maximum depth over all trees (a single-leaf tree has depth 0).
    package var maxDepth: Int {
        var best = 0
        for root in roots {
            var stack: [(Int32, Int)] = [(root, 0)]
            while let (n, d) = stack.popLast() {
                let node = nodes[Int(n)]
                if node.isLeaf { best = max(best, d) } else {
                    stack.append((node.left, d + 1))
                    stack.append((node.right, d + 1))
                }
            }
        }
        return best
    }

    init(
        featureCount: Int, objective: Objective, nodes: [TreeNode], cover: [Double], roots: [Int32],
        treeOutput: [Int32], categorySets: [CategorySet], categoryBits: [UInt32], baseMargin: [Double],
        divisor: Double, inputPrecision: InputPrecision, categoryDecoding: CategoryDecoding,
        featureNames: [String]?, notes: [String: String]
    ) {
        self.featureCount = featureCount
        self.objective = objective
        self.nodes = nodes
        self.cover = cover
        self.roots = roots
        self.treeOutput = treeOutput
        self.categorySets = categorySets
        self.categoryBits = categoryBits
        self.baseMargin = baseMargin
        self.divisor = divisor
        self.inputPrecision = inputPrecision
        self.categoryDecoding = categoryDecoding
        self.featureNames = featureNames
        self.notes = notes
        self.flat = FlatForest(nodes: nodes, roots: roots, treeOutput: treeOutput, featureCount: featureCount)
        self.quick = QuickScorer(nodes: nodes, roots: roots, treeOutput: treeOutput, featureCount: featureCount, leafLimit: 32)
    }
}
