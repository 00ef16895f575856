package import Foundation
package import VigilCore
internal import VigilJSON

/// Reads XGBoost's JSON model format (`Booster.save_model("model.json")`, XGBoost 1.x to 3.x)
/// into a checked `TreeEnsemble`. XGBoost quirks stop here:
///
/// - features are read as `float32` and a split sends `x` left when `x < split_condition`
///   (strict, in float32). The IR compares `x <= t` on float32-rounded inputs, so the loader
///   stores `t.nextDown` (in `Float`): for float32 values, `x < t` ⇔ `x <= t.nextDown`;
/// - leaves are nodes whose `left_children` is -1; their value is `split_conditions[i]`;
/// - `base_score` is written as `"5E-1"` (1.x, 2.x) or `"[5E-1]"` / `"[a,b,c]"` (3.x), in the
///   objective's output space: logistic objectives turn it into a margin with logit;
/// - categorical splits (`split_type` 1) list the categories that go RIGHT; a negative value,
///   a value >= 2^24 or an unknown category goes LEFT; NaN takes the default child;
/// - `dart` boosters scale each tree by its `weight_drop`.
package struct XGBoostJSONLoader: Sendable {
    package let fileName: String

    /// Most 32-bit words all categorical bitsets of a model may take (64 MiB).
    static let maxCategoryWords = 1 << 24

    package init(fileName: String = "model.json") {
        self.fileName = fileName
    }

    package func load(data: Data) throws -> TreeEnsemble {
        let root = try JSONNode.parse(data, file: fileName)
        guard root.optional("learner") != nil else {
            throw root.fail("not an XGBoost JSON model: there is no 'learner' object")
        }
        let learner = try root["learner"]
        let params = try learner["learner_model_param"]
        let featureCount = try params["num_feature"].int()
        guard (1...1_000_000).contains(featureCount) else {
            throw try params["num_feature"].fail("num_feature \(featureCount) must be in 1...1000000")
        }
        let numClass = try params.optional("num_class")?.int() ?? 0
        guard (0...100_000).contains(numClass) else {
            throw try params["num_class"].fail("num_class \(numClass) must be in 0...100000")
        }
        let numTarget = try params.optional("num_target")?.int() ?? 1
        guard numTarget == 1 else {
            throw try params["num_target"].fail("multi-target models (num_target=\(numTarget)) are not supported")
        }
        let objectiveNode = try learner["objective"]["name"]
        let objectiveName = try objectiveNode.string()

        let objective: Objective
        let logisticBase: Bool
        switch objectiveName {
        case "binary:logistic", "reg:logistic":
            objective = .binaryLogistic(scale: 1); logisticBase = true
        case "reg:squarederror", "reg:linear", "reg:pseudohubererror", "reg:absoluteerror", "reg:quantileerror":
            objective = .regression; logisticBase = false
        case "multi:softprob", "multi:softmax":
            guard numClass >= 2 else { throw try params["num_class"].fail("\(objectiveName) needs num_class >= 2, found \(numClass)") }
            objective = .multiclassSoftmax(classes: numClass); logisticBase = false
        default:
            throw objectiveNode.fail("objective '\(objectiveName)' is not supported (binary:logistic, reg:logistic, reg:squarederror and multi:softprob are)")
        }

        // base_score: "5E-1", "[5E-1]" or "[a,b,c]", in output space.
        let baseNode = try params["base_score"]
        let baseText = try baseNode.string().trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
        let baseValues = try baseText.split(separator: ",").map { s -> Double in
            guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                throw baseNode.fail("base_score '\(s)' is not a finite number")
            }
            return v
        }
        let k = objective.outputCount
        guard baseValues.count == 1 || baseValues.count == k else {
            throw baseNode.fail("base_score has \(baseValues.count) values; expected 1 or \(k)")
        }
        var baseMargin = (0..<k).map { baseValues.count == 1 ? baseValues[0] : baseValues[$0] }
        if logisticBase {
            for (i, p) in baseMargin.enumerated() {
                guard p > 0, p < 1 else { throw baseNode.fail("base_score \(p) must be in (0, 1) for \(objectiveName)") }
                // XGBoost's ProbToMargin, in float32 as it computes it: -log(1/p - 1).
                let b = Float(p)
                baseMargin[i] = Double(-logf(1 / b - 1))
            }
        }

        var names: [String]?
        if let fn = learner.optional("feature_names") {
            let list = try fn.array().map { try $0.string() }
            if !list.isEmpty {
                guard list.count == featureCount else { throw fn.fail("\(list.count) feature names for num_feature=\(featureCount)") }
                names = list
            }
        }

        // gbtree, or dart (a gbtree plus per-tree weights).
        let booster = try learner["gradient_booster"]
        let boosterName = try booster["name"].string()
        let model: JSONNode
        var treeWeights: [Double]?
        switch boosterName {
        case "gbtree":
            model = try booster["model"]
        case "dart":
            model = try booster["gbtree"]["model"]
            treeWeights = try booster["weight_drop"].doubles()
        default:
            throw try booster["name"].fail("booster '\(boosterName)' is not supported (gbtree and dart are)")
        }
        let trees = try model["trees"].array()
        let treeInfoNode = try model["tree_info"]
        let treeInfo = try treeInfoNode.ints()
        guard treeInfo.count == trees.count else {
            throw treeInfoNode.fail("tree_info has \(treeInfo.count) entries for \(trees.count) trees")
        }
        if let w = treeWeights, w.count != trees.count {
            throw try booster["weight_drop"].fail("weight_drop has \(w.count) entries for \(trees.count) trees")
        }

        var builder = TreeEnsembleBuilder(
            featureCount: featureCount, objective: objective, inputPrecision: .float32,
            categoryDecoding: .nonNegativeThenTruncate, featureNames: names)
        builder.baseMargin = baseMargin
        builder.notes["format"] = "XGBoost JSON" + ((try? root["version"].ints()).map { " (written by \($0.map(String.init).joined(separator: ".")))" } ?? "")
        builder.notes["objective"] = objectiveName
        builder.notes["base_score"] = try baseNode.string()
        builder.notes["booster"] = boosterName

        var categoryWords = 0
        for (t, tree) in trees.enumerated() {
            let output = treeInfo[t]
            guard output >= 0, output < k else {
                throw JSONNode(value: .number(Double(output)), path: "\(treeInfoNode.path)[\(t)]", file: fileName).fail("tree \(t) belongs to output \(output) but the model has \(k)")
            }
            try addTree(t, tree, weight: treeWeights?[t] ?? 1, output: output, categoryWords: &categoryWords, into: &builder)
        }
        do {
            return try builder.build()
        } catch let e as VigilError {
            throw VigilError(e.kind, "\(fileName): \(e.message)")
        }
    }

    private func addTree(_ t: Int, _ tree: JSONNode, weight: Double, output: Int, categoryWords: inout Int, into builder: inout TreeEnsembleBuilder) throws {
        let leftNode = try tree["left_children"]
        let left = try leftNode.ints()
        let n = left.count
        func column(_ key: String) throws -> [Double] {
            let node = try tree[key]
            let v = try node.doubles()
            guard v.count == n else { throw node.fail("\(v.count) entries for \(n) nodes") }
            return v
        }
        // Integer columns go through ints(), which refuses fractions and out-of-range numbers
        // (an Int(_:) of a file's 1e300 traps).
        func intColumn(_ key: String) throws -> [Int] {
            let node = try tree[key]
            let v = try node.ints()
            guard v.count == n else { throw node.fail("\(v.count) entries for \(n) nodes") }
            return v
        }
        let right = try intColumn("right_children")
        let splitIndex = try intColumn("split_indices")
        let condition = try column("split_conditions")
        let defaultLeft = try column("default_left")
        let hessian = try tree.optional("sum_hessian") != nil ? column("sum_hessian") : nil
        let splitType = try tree.optional("split_type") != nil ? intColumn("split_type") : Array(repeating: 0, count: n)

        // Categorical splits: node id → category list.
        var categoriesOf: [Int: [Int]] = [:]
        if let nodesNode = tree.optional("categories_nodes") {
            let catNodes = try nodesNode.ints()
            let segments = try tree["categories_segments"].ints()
            let sizes = try tree["categories_sizes"].ints()
            let cats = try tree["categories"].ints()
            guard segments.count == catNodes.count, sizes.count == catNodes.count else {
                throw nodesNode.fail("categories_nodes, categories_segments and categories_sizes differ in length")
            }
            for (j, node) in catNodes.enumerated() {
                let lo = segments[j]
                let (hi, overflow) = segments[j].addingReportingOverflow(sizes[j])
                guard !overflow, lo >= 0, sizes[j] >= 0, hi <= cats.count else {
                    throw nodesNode.fail("category segment \(j) [\(lo), \(lo) + \(sizes[j])) is outside the \(cats.count) categories")
                }
                categoriesOf[node] = Array(cats[lo..<hi])
            }
        }

        // Relabel the nodes reachable from the root (pruned nodes may stay in the arrays),
        // breadth-first; the builder then checks that the result is a tree.
        guard n > 0 else { throw leftNode.fail("tree \(t) has no nodes") }
        var order: [Int] = [0]
        var newIndex = [Int](repeating: -1, count: n)
        newIndex[0] = 0
        var head = 0
        while head < order.count {
            let i = order[head]; head += 1
            guard left[i] != -1 else { continue }
            for c in [left[i], right[i]] {
                guard c >= 0, c < n else { throw leftNode.fail("tree \(t), node \(i): child \(c) is outside the \(n) nodes") }
                guard newIndex[c] == -1 else { throw leftNode.fail("tree \(t), node \(c) is reached twice (the nodes do not form a tree)") }
                newIndex[c] = order.count
                order.append(c)
            }
        }
        var nodes: [TreeNode] = []
        nodes.reserveCapacity(order.count)
        for i in order {
            if left[i] == -1 {
                nodes.append(.leaf(Double(Float(condition[i])) * weight))
                continue
            }
            let feature = splitIndex[i]
            guard feature >= 0, feature < Int(Int32.max) else { throw try tree["split_indices"].fail("tree \(t), node \(i): feature index \(feature) is invalid") }
            switch splitType[i] {
            case 0:
                let t32 = Float(condition[i])
                guard !t32.isNaN else { throw try tree["split_conditions"].fail("tree \(t), node \(i): the split condition is NaN") }
                nodes.append(TreeNode(
                    value: Double(t32.nextDown), feature: Int32(feature),
                    left: Int32(newIndex[left[i]]), right: Int32(newIndex[right[i]]),
                    flags: NodeFlags(defaultLeft: defaultLeft[i] != 0, missing: .defaultChild)))
            case 1:
                guard let cats = categoriesOf[i] else {
                    throw try tree["split_type"].fail("tree \(t), node \(i) is a categorical split with no entry in categories_nodes")
                }
                // A set is a bitset up to its largest category: bound the words all sets take,
                // so a small file cannot ask for gigabytes (each id may be up to 2^24).
                let words = (cats.max().map { $0 < 0 ? 0 : min($0, 1 << 24) / 32 + 1 }) ?? 0
                let (total, overflow) = categoryWords.addingReportingOverflow(words)
                guard !overflow, total <= Self.maxCategoryWords else {
                    throw try tree["categories"].fail("tree \(t), node \(i): the category sets need more than \(Self.maxCategoryWords) 32-bit words in all")
                }
                categoryWords = total
                let set = try builder.addCategorySet(categories: cats)
                nodes.append(TreeNode(
                    value: Double(set), feature: Int32(feature),
                    left: Int32(newIndex[left[i]]), right: Int32(newIndex[right[i]]),
                    flags: NodeFlags(defaultLeft: defaultLeft[i] != 0, missing: .defaultChild, categorical: true, categoryMatchGoesLeft: false)))
            default:
                throw try tree["split_type"].fail("tree \(t), node \(i): split type \(splitType[i]) is unknown (0 numeric, 1 categorical)")
            }
        }
        let cover = hessian.map { h in order.map { h[$0] } }
        do {
            try builder.addTree(nodes: nodes, cover: cover, output: output)
        } catch let e as VigilError {
            throw tree.fail(e.message)
        }
    }
}
