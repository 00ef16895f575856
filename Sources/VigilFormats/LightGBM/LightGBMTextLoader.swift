package import VigilCore

/// Reads LightGBM's text model format (`Booster.save_model`, format versions v3 and v4) into a
/// checked `TreeEnsemble`. Every LightGBM quirk stops here:
///
/// - leaf `k` is written as child `~k` (= -k-1); leaves become nodes after the split nodes;
/// - `decision_type` bits: 1 = categorical, 2 = default left, bits 2-3 = missing type
///   (0 None: NaN is read as 0; 1 Zero: zero and NaN take the default child; 2 NaN: NaN takes
///   the default child). Any other bit or missing type 3 is refused;
/// - a categorical split's `threshold` indexes `cat_boundaries`, whose range of `cat_threshold`
///   is a bitset of the categories that go left; NaN, negative and unknown categories go right;
/// - `objective=binary sigmoid:S` → logistic with scale S; `multiclass num_class:K` → softmax;
///   the regression family → identity; `average_output` → the sum is divided by the iterations.
///
/// Unknown objectives, linear trees and anything truncated or malformed throw `VigilError` naming
/// the line and key.
package struct LightGBMTextLoader: Sendable {
    package let fileName: String

    package init(fileName: String = "model.txt") {
        self.fileName = fileName
    }

    /// Whether `text` looks like a LightGBM text model (its first line is `tree`).
    package static func sniff(_ prefix: some Sequence<UInt8>) -> Bool {
        let head = String(decoding: Array(prefix.prefix(16)), as: UTF8.self)
        return head.hasPrefix("tree\n") || head.hasPrefix("tree\r\n")
    }

    package func load(text: String) throws -> TreeEnsemble {
        var lines = LineCursor(text: text)
        guard let first = lines.next(), first.text == "tree" else {
            throw error(line: 1, "not a LightGBM text model: the first line must be 'tree'")
        }

        // MARK: header
        var header: [String: (value: Substring, line: Int)] = [:]
        var averageOutput = false
        while let line = lines.peek(), !line.text.hasPrefix("Tree="), line.text != "end of trees" {
            _ = lines.next()
            if line.text.isEmpty { continue }
            if line.text == "average_output" { averageOutput = true; continue }
            guard let eq = line.text.firstIndex(of: "=") else {
                throw error(line: line.number, "header line '\(line.text.prefix(60))' is not key=value")
            }
            header[String(line.text[..<eq])] = (line.text[line.text.index(after: eq)...], line.number)
        }

        if let v = header["version"], !["v2", "v3", "v4"].contains(String(v.value)) {
            throw error(line: v.line, "format version '\(v.value.prefix(40))' is not supported (v2, v3, v4 are)")
        }
        let maxFeatureIdx = try headerInt(header, "max_feature_idx")
        guard maxFeatureIdx >= 0, maxFeatureIdx < 1_000_000 else {
            throw error(line: header["max_feature_idx"]?.line ?? 1, "max_feature_idx \(maxFeatureIdx) must be in 0..<1000000")
        }
        let featureCount = maxFeatureIdx + 1
        let numClass = try header["num_class"].map { _ in try headerInt(header, "num_class") } ?? 1
        guard (1...100_000).contains(numClass) else {
            throw error(line: header["num_class"]?.line ?? 1, "num_class \(numClass) must be in 1...100000")
        }
        let perIteration = try header["num_tree_per_iteration"].map { _ in try headerInt(header, "num_tree_per_iteration") } ?? numClass
        guard (1...100_000).contains(perIteration) else {
            throw error(line: header["num_tree_per_iteration"]?.line ?? 1, "num_tree_per_iteration \(perIteration) must be in 1...100000")
        }
        guard let objectiveEntry = header["objective"] else {
            throw error(line: first.number, "the header has no 'objective' line (the file may be truncated or not a model)")
        }
        let objective = try parseObjective(objectiveEntry.value, line: objectiveEntry.line, numClass: numClass)
        guard perIteration == objective.outputCount else {
            throw error(line: header["num_tree_per_iteration"]?.line ?? objectiveEntry.line,
                        "num_tree_per_iteration=\(perIteration) does not match objective '\(objectiveEntry.value.prefix(60))' (\(objective.outputCount) output(s))")
        }
        var names: [String]?
        if let entry = header["feature_names"] {
            let parts = entry.value.split(separator: " ").map(String.init)
            guard parts.count == featureCount else {
                throw error(line: entry.line, "feature_names lists \(parts.count) names but max_feature_idx says \(featureCount) features")
            }
            names = parts
        }

        var builder = TreeEnsembleBuilder(featureCount: featureCount, objective: objective, inputPrecision: .doubleFlushingTinyToZero, categoryDecoding: .truncate, featureNames: names)
        builder.notes["format"] = "LightGBM text \(header["version"].map { String($0.value) } ?? "(no version line)")"
        builder.notes["objective"] = String(objectiveEntry.value)

        // MARK: trees
        var sawEnd = false
        while let line = lines.next() {
            if line.text.isEmpty { continue }
            if line.text == "end of trees" { sawEnd = true; break }
            guard line.text.hasPrefix("Tree=") else {
                throw error(line: line.number, "expected 'Tree=N' or 'end of trees', found '\(line.text.prefix(60))'")
            }
            let expected = builder.treeCount
            guard Int(line.text.dropFirst(5)) == expected else {
                throw error(line: line.number, "found '\(line.text.prefix(40))' where Tree=\(expected) was expected")
            }
            var fields: [String: (value: Substring, line: Int)] = [:]
            while let l = lines.peek(), !l.text.isEmpty, !l.text.hasPrefix("Tree="), l.text != "end of trees" {
                _ = lines.next()
                guard let eq = l.text.firstIndex(of: "=") else {
                    throw error(line: l.number, "Tree=\(expected): line '\(l.text.prefix(60))' is not key=value")
                }
                fields[String(l.text[..<eq])] = (l.text[l.text.index(after: eq)...], l.number)
            }
            try addTree(expected, fields: fields, treeLine: line.number, perIteration: perIteration, into: &builder)
        }
        guard sawEnd else {
            throw error(line: lines.lastNumber, "the file ends before 'end of trees' after \(builder.treeCount) tree(s): it is truncated")
        }
        if let sizes = header["tree_sizes"] {
            let count = sizes.value.split(separator: " ").count
            guard count == builder.treeCount else {
                throw error(line: sizes.line, "tree_sizes lists \(count) trees but the file has \(builder.treeCount)")
            }
        }
        guard builder.treeCount % perIteration == 0 else {
            throw error(line: lines.lastNumber, "\(builder.treeCount) trees is not a multiple of num_tree_per_iteration=\(perIteration)")
        }
        if averageOutput {
            builder.divisor = Double(builder.treeCount / perIteration)
            builder.notes["averaging"] = "average_output (random forest): sum / \(builder.treeCount / perIteration) iterations"
        }
        do {
            return try builder.build()
        } catch let e as VigilError {
            throw VigilError(e.kind, "\(fileName): \(e.message)")
        }
    }

    // MARK: - Parts

    private func parseObjective(_ value: Substring, line: Int, numClass: Int) throws -> Objective {
        let parts = value.split(separator: " ")
        guard let name = parts.first else { throw error(line: line, "the objective is empty") }
        var options: [Substring: Substring] = [:]
        for p in parts.dropFirst() {
            if let c = p.firstIndex(of: ":") {
                options[p[..<c]] = p[p.index(after: c)...]
            } else {
                options[p] = ""
            }
        }
        switch name {
        case "binary":
            let scale = try options["sigmoid"].map { s -> Double in
                guard let v = Double(s), v.isFinite, v > 0 else { throw error(line: line, "sigmoid:\(s.prefix(40)) must be a positive number") }
                return v
            } ?? 1
            return .binaryLogistic(scale: scale)
        case "cross_entropy", "xentropy":
            return .binaryLogistic(scale: 1)
        case "multiclass", "softmax":
            let k = options["num_class"].flatMap { Int($0) } ?? numClass
            guard k >= 2, k == numClass else {
                throw error(line: line, "multiclass num_class:\(options["num_class"]?.prefix(40) ?? "?") must be >= 2 and equal num_class=\(numClass)")
            }
            return .multiclassSoftmax(classes: k)
        case "regression", "regression_l2", "l2", "mean_squared_error", "mse", "regression_l1", "l1",
             "mean_absolute_error", "mae", "huber", "fair", "quantile", "mape":
            if options["sqrt"] != nil {
                throw error(line: line, "objective '\(value.prefix(60))': the 'sqrt' transform is not supported")
            }
            return .regression
        default:
            throw error(line: line, "objective '\(value.prefix(60))' is not supported (binary, cross_entropy, multiclass and the regression family are)")
        }
    }

    private func addTree(
        _ t: Int, fields: [String: (value: Substring, line: Int)], treeLine: Int, perIteration: Int,
        into builder: inout TreeEnsembleBuilder
    ) throws {
        func field(_ key: String) throws -> (value: Substring, line: Int) {
            guard let f = fields[key] else {
                throw error(line: treeLine, "Tree=\(t) has no '\(key)' line (the file may be truncated)")
            }
            return f
        }
        func numbers<T>(_ key: String, count: Int, _ parse: (Substring) -> T?) throws -> [T] {
            let f = try field(key)
            let parts = f.value.split(separator: " ")
            guard parts.count == count else {
                throw error(line: f.line, "Tree=\(t), \(key): \(parts.count) values where \(count) are needed")
            }
            return try parts.enumerated().map { i, p in
                guard let v = parse(p) else {
                    throw error(line: f.line, "Tree=\(t), \(key)[\(i)]: '\(p.prefix(40))' is not a valid number")
                }
                return v
            }
        }
        if let linear = fields["is_linear"], linear.value != "0" {
            throw error(line: linear.line, "Tree=\(t) is a linear tree (is_linear=\(linear.value.prefix(20))); linear trees are not supported")
        }
        let numLeavesEntry = try field("num_leaves")
        guard let numLeaves = Int(numLeavesEntry.value), numLeaves >= 1, numLeaves <= 1 << 24 else {
            throw error(line: numLeavesEntry.line, "Tree=\(t), num_leaves '\(numLeavesEntry.value.prefix(40))' must be an integer in 1...\(1 << 24)")
        }
        let output = t % perIteration
        let leafValues = try numbers("leaf_value", count: numLeaves) { Double($0) }
        let leafCounts = fields["leaf_count"] != nil ? try numbers("leaf_count", count: numLeaves) { Double($0) } : nil
        if numLeaves == 1 {
            try builder.addTree(nodes: [.leaf(leafValues[0])], cover: leafCounts.map { [$0[0]] }, output: output)
            return
        }
        let splitCount = numLeaves - 1
        let splitFeature = try numbers("split_feature", count: splitCount) { Int32($0) }
        let threshold = try numbers("threshold", count: splitCount) { Double($0) }
        let decisionType = try numbers("decision_type", count: splitCount) { Int($0) }
        let left = try numbers("left_child", count: splitCount) { Int32($0) }
        let right = try numbers("right_child", count: splitCount) { Int32($0) }
        let internalCount = fields["internal_count"] != nil ? try numbers("internal_count", count: splitCount) { Double($0) } : nil
        let numCat = try fields["num_cat"].map { f -> Int in
            // Each categorical split names one set, so a tree holds at most splitCount sets (this
            // also keeps numCat + 1 below overflow).
            guard let v = Int(f.value), v >= 0, v <= splitCount else {
                throw error(line: f.line, "Tree=\(t), num_cat '\(f.value.prefix(40))' must be an integer in 0...\(splitCount) (the tree's split count)")
            }
            return v
        } ?? 0

        // Categorical bitsets: set k is cat_threshold[cat_boundaries[k] ..< cat_boundaries[k+1]].
        var setIndex: [Int] = []
        if numCat > 0 {
            let boundaries = try numbers("cat_boundaries", count: numCat + 1) { Int($0) }
            let thrField = try field("cat_threshold")
            let words = try thrField.value.split(separator: " ").enumerated().map { i, p -> UInt32 in
                guard let v = UInt32(p) else { throw error(line: thrField.line, "Tree=\(t), cat_threshold[\(i)]: '\(p.prefix(20))' is not a 32-bit word") }
                return v
            }
            for k in 0..<numCat {
                let lo = boundaries[k], hi = boundaries[k + 1]
                guard lo >= 0, lo <= hi, hi <= words.count else {
                    throw error(line: try field("cat_boundaries").line, "Tree=\(t), cat_boundaries[\(k)...\(k + 1)] = \(lo)...\(hi) is outside cat_threshold's \(words.count) words")
                }
                setIndex.append(builder.addCategorySet(words: Array(words[lo..<hi])))
            }
        }

        // Split nodes first (0..<splitCount), then leaves (splitCount + k for LightGBM leaf ~k).
        func child(_ c: Int32, _ key: String) throws -> Int32 {
            if c >= 0 {
                guard c < splitCount else { throw error(line: try field(key).line, "Tree=\(t), \(key) \(c) is outside the \(splitCount) split nodes") }
                return c
            }
            let leaf = ~c
            guard leaf < numLeaves else { throw error(line: try field(key).line, "Tree=\(t), \(key) \(c) names leaf \(leaf) but the tree has \(numLeaves) leaves") }
            return Int32(splitCount) + leaf
        }
        var nodes: [TreeNode] = []
        nodes.reserveCapacity(splitCount + numLeaves)
        let dtLine = try field("decision_type").line
        for i in 0..<splitCount {
            let dt = decisionType[i]
            guard dt >= 0, dt & ~0b1111 == 0, let missing = MissingRule.lightGBM(missingType: (dt >> 2) & 3) else {
                throw error(line: dtLine, "Tree=\(t), decision_type[\(i)] = \(dt) is not a known LightGBM decision type (bit 0 categorical, bit 1 default-left, bits 2-3 missing type 0-2)")
            }
            let categorical = dt & 1 != 0
            var value = threshold[i]
            let flags: NodeFlags
            if categorical {
                guard let k = Int(exactly: value), k >= 0, k < setIndex.count else {
                    throw error(line: try field("threshold").line, "Tree=\(t), threshold[\(i)] = \(value) names category set \(value) but num_cat=\(numCat)")
                }
                value = Double(setIndex[k])
                // LightGBM sends NaN (and negative or unknown categories) right.
                flags = NodeFlags(defaultLeft: false, missing: .defaultChild, categorical: true, categoryMatchGoesLeft: true)
            } else {
                flags = NodeFlags(defaultLeft: dt & 2 != 0, missing: missing)
            }
            guard splitFeature[i] >= 0 else {
                throw error(line: try field("split_feature").line, "Tree=\(t), split_feature[\(i)] = \(splitFeature[i]) is negative")
            }
            nodes.append(TreeNode(value: value, feature: splitFeature[i], left: try child(left[i], "left_child"), right: try child(right[i], "right_child"), flags: flags))
        }
        for v in leafValues { nodes.append(.leaf(v)) }
        var cover: [Double]?
        if let ic = internalCount, let lc = leafCounts { cover = ic + lc }
        do {
            try builder.addTree(nodes: nodes, cover: cover, output: output)
        } catch let e as VigilError {
            throw error(line: treeLine, e.message)
        }
    }

    private func headerInt(_ header: [String: (value: Substring, line: Int)], _ key: String) throws -> Int {
        guard let entry = header[key] else { throw error(line: 1, "the header has no '\(key)' line") }
        guard let v = Int(entry.value) else { throw error(line: entry.line, "\(key) '\(entry.value.prefix(40))' is not an integer") }
        return v
    }

    private func error(line: Int, _ message: String) -> VigilError {
        .modelFormat(fileName, at: "line \(line)", message)
    }
}

extension MissingRule {
    /// LightGBM's `MissingType` (decision_type bits 2-3): 0 None, 1 Zero, 2 NaN.
    static func lightGBM(missingType: Int) -> MissingRule? {
        switch missingType {
        case 0: return .asZero
        case 1: return .zeroOrNaNDefault
        case 2: return .defaultChild
        default: return nil
        }
    }
}

/// Iterates the lines of a text with their 1-based numbers; strips a trailing `\r`.
struct LineCursor {
    private let lines: [Substring]
    private var index = 0

    init(text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    var lastNumber: Int { max(1, min(index, lines.count)) }

    mutating func next() -> (text: Substring, number: Int)? {
        guard let l = peek() else { return nil }
        index += 1
        return l
    }

    func peek() -> (text: Substring, number: Int)? {
        guard index < lines.count else { return nil }
        var l = lines[index]
        if l.hasSuffix("\r") { l = l.dropLast() }
        return (l, index + 1)
    }
}
