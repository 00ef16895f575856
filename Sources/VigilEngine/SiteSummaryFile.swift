package import Foundation

/// `vigil.site_summary/1` files (docs/FORMATS.md, "Site summary"): written by `vigil audit
/// --export-summary` and `vigil monitor export`, read strictly by `vigil audit --merge` (each
/// site's file is untrusted input to the others): unknown keys, wrong types, negative or
/// non-integer counts, counts that do not add up, bins outside the grid, overlapping or unordered
/// bins, or a reported number below the file's own `min_cell` are refused, naming the file, the
/// JSON path, the value and the rule.
extension SiteSummary {
    package static let maxFileBytes = 64 << 20
    package static let maxCells = 100_000
    package static let maxCount = 1 << 40
    package static let maxBins = 10_000

    package var json: JSONOutput {
        func histogram(_ b: [Bin]) -> JSONOutput { .array(b.map { .array([.int($0.lo), .int($0.hi), .int($0.count)]) }) }
        return .object([
            ("schema", .string(Self.schema)),
            ("site", .string(site)),
            ("model", .object([("name", .string(model)), ("version", .string(modelVersion)), ("sha256", .string(modelSHA256))])),
            ("group_fields", .array(groupFields.map { .string($0) })),
            ("score_bins", .int(bins)),
            ("min_cell", .int(minCell)),
            ("suppressed", .object([("cells", .int(suppressedCells)), ("rows", .int(suppressedRows))])),
            ("features", .array(features.map { f in
                .object([("name", .string(f.name)), ("edges", .array(f.edges.map { .number($0) })), ("counts", .array(f.counts.map { .int($0) })), ("suppressed", .int(f.suppressed))])
            })),
            ("cells", .array(cells.map { c in
                .object([
                    ("labels", .array(c.labels.map { .string($0) })), ("n", .int(c.n)),
                    ("tp", .int(c.tp)), ("fp", .int(c.fp)), ("tn", .int(c.tn)), ("fn", .int(c.fn)),
                    ("positive_scores", histogram(c.positiveScores)), ("negative_scores", histogram(c.negativeScores)),
                ])
            })),
        ])
    }

    package func write(to path: String) throws {
        do { try Data(json.text(indent: 1).utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw VigilError(.io, "\(path): cannot write the site summary (\(error.localizedDescription))")
        }
    }

    package static func read(path: String) throws -> SiteSummary {
        let data: Data
        do {
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
            guard size <= maxFileBytes else { throw VigilError(.input, "\(path): \(size) bytes; a site summary is at most \(maxFileBytes) bytes") }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let e as VigilError {
            throw e
        } catch {
            throw VigilError(.io, "\(path): cannot read the site summary (\(error.localizedDescription))")
        }
        do {
            return try read(try JSONNode.parse(data, file: path))
        } catch let e as VigilError where e.kind == .modelFormat {
            throw VigilError(.input, e.message)
        }
    }

    static func read(_ root: JSONNode) throws -> SiteSummary {
        guard case .object = root.value else { throw root.fail("a site summary is a JSON object, found \(root.typeName)") }
        try root.requireKeys(in: ["schema", "site", "model", "group_fields", "score_bins", "min_cell", "suppressed", "features", "cells"])
        let schemaNode = try root["schema"]
        guard try text(schemaNode) == schema else { throw schemaNode.fail("is not \(schema)") }
        let site = try text(try root["site"])
        let m = try root["model"]
        try m.requireKeys(in: ["name", "version", "sha256"])
        let fields = try (try root["group_fields"]).array().map { try text($0) }
        guard (1...8).contains(fields.count), Set(fields).count == fields.count else {
            throw try root["group_fields"].fail("1 to 8 distinct group fields, found \(fields.count)")
        }
        let bins = try integer(try root["score_bins"], in: 1...maxBins)
        let minCell = try integer(try root["min_cell"], in: 1...1_000_000)
        let sup = try root["suppressed"]
        try sup.requireKeys(in: ["cells", "rows"])
        var cells: [Cell] = []
        var seen = Set<[String]>()
        let cellNodes = try (try root["cells"]).array()
        guard cellNodes.count <= maxCells else { throw try root["cells"].fail("\(cellNodes.count) cells; at most \(maxCells)") }
        for node in cellNodes {
            try node.requireKeys(in: ["labels", "n", "tp", "fp", "tn", "fn", "positive_scores", "negative_scores"])
            let labelsNode = try node["labels"]
            let labels = try labelsNode.array().map { try text($0) }
            guard labels.count == fields.count else { throw labelsNode.fail("\(labels.count) labels for \(fields.count) group fields") }
            guard seen.insert(labels).inserted else { throw labelsNode.fail("the cell \(labels) is listed twice") }
            let n = try integer(try node["n"], in: 0...maxCount)
            let (tp, fp, tn, fn) = (try integer(try node["tp"], in: 0...maxCount), try integer(try node["fp"], in: 0...maxCount),
                                    try integer(try node["tn"], in: 0...maxCount), try integer(try node["fn"], in: 0...maxCount))
            guard tp + fp + tn + fn == n else { throw node.fail("tp + fp + tn + fn = \(tp + fp + tn + fn), not n = \(n)") }
            guard n >= minCell, tp + fn >= minCell, fp + tn >= minCell else {
                throw node.fail("n \(n), positives \(tp + fn), negatives \(fp + tn): a cell below min_cell \(minCell) must not leave a site")
            }
            func histogram(_ key: String, total: Int) throws -> [Bin] {
                let h = try node[key]
                var out: [Bin] = []
                for b in try h.array() {
                    let v = try b.array()
                    guard v.count == 3 else { throw b.fail("a bin is [lo, hi, count]") }
                    let bin = Bin(lo: try integer(v[0], in: 0...bins - 1), hi: try integer(v[1], in: 1...bins), count: try integer(v[2], in: 1...maxCount))
                    guard bin.lo < bin.hi, bin.lo >= (out.last?.hi ?? 0) else { throw b.fail("bins must be increasing and must not overlap") }
                    guard bin.count >= minCell else { throw b.fail("a bin of \(bin.count) scores is below min_cell \(minCell)") }
                    out.append(bin)
                }
                let sum = out.reduce(0) { $0 + $1.count }
                guard sum == total else { throw h.fail("holds \(sum) scores, not the cell's \(total)") }
                return out
            }
            cells.append(Cell(labels: labels, n: n, tp: tp, fp: fp, tn: tn, fn: fn,
                              positiveScores: try histogram("positive_scores", total: tp + fn), negativeScores: try histogram("negative_scores", total: fp + tn)))
        }
        var features: [FeatureHistogram] = []
        if let fnode = root.optional("features") {
            let items = try fnode.array()
            guard items.count <= 10_000 else { throw fnode.fail("\(items.count) features; at most 10000") }
            for item in items {
                try item.requireKeys(in: ["name", "edges", "counts", "suppressed"])
                let name = try text(try item["name"])
                let edgesNode = try item["edges"]
                let edges = try edgesNode.array().map { n -> Double in
                    guard case .number(let d) = n.value, d.isFinite else { throw n.fail("an edge is a finite number") }
                    return d
                }
                guard edges.count <= 1000, zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) else { throw edgesNode.fail("at most 1000 strictly increasing edges") }
                let countsNode = try item["counts"]
                let counts = try countsNode.array().map { try integer($0, in: 0...maxCount) }
                guard counts.count == edges.count + 2 else { throw countsNode.fail("\(counts.count) counts for \(edges.count) edges; k edges give k + 1 buckets and missing") }
                if let small = counts.first(where: { $0 > 0 && $0 < minCell }) {
                    throw countsNode.fail("a bucket of \(small) is below min_cell \(minCell)")
                }
                guard !features.contains(where: { $0.name == name }) else { throw item.fail("feature '\(Untrusted.quote(name))' twice") }
                features.append(FeatureHistogram(name: name, edges: edges, counts: counts, suppressed: try integer(try item["suppressed"], in: 0...maxCount)))
            }
        }
        return SiteSummary(site: site, model: try text(try m["name"]), modelVersion: try text(try m["version"]), modelSHA256: try text(try m["sha256"]),
                           groupFields: fields, bins: bins, minCell: minCell, cells: cells,
                           suppressedCells: try integer(try sup["cells"], in: 0...maxCount), suppressedRows: try integer(try sup["rows"], in: 0...maxCount),
                           features: features)
    }

    private static func text(_ n: JSONNode) throws -> String {
        guard case .string(let s) = n.value else { throw n.fail("expected a string, found \(n.typeName)") }
        guard !s.isEmpty, s.utf8.count <= 512, !Untrusted.containsControlCharacter(s) else {
            throw n.fail("value '\(Untrusted.quote(s))' must be 1-512 bytes without control characters")
        }
        return s
    }

    private static func integer(_ n: JSONNode, in range: ClosedRange<Int>) throws -> Int {
        guard case .number(let d) = n.value, d.isFinite, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound), let i = Int(exactly: d) else {
            throw n.fail("value \(Untrusted.quote("\(n.value)")) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }
}
