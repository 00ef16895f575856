package import Foundation

extension ValidationPlan {
    /// Largest plan file read, in bytes.
    package static let maxFileBytes = 1 << 20
    /// Most group fields a plan may name (the audit computes every intersection: 2^f - 1 views).
    package static let maxGroupFields = 4
    /// Most criteria (and, separately, non-inferiority margins) a plan may hold.
    package static let maxCriteria = 1000
    /// Longest id, name, version, note or group text, in bytes.
    package static let maxTextBytes = 512

    /// Reads a plan file (docs/FORMATS.md, "Validation plan"), strictly: unknown keys, a wrong
    /// type, a non-finite number, a metric or view that does not exist, or a criterion with no
    /// rule or two rules is refused, naming the file, the JSON path, the value and the rule.
    package static func load(path: String) throws -> ValidationPlan {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
            guard size <= maxFileBytes else { throw VigilError(.usage, "\(path): \(size) bytes; a validation plan is at most \(maxFileBytes) bytes") }
            data = try Data(contentsOf: url)
        } catch let e as VigilError {
            throw e
        } catch {
            throw VigilError(.io, "\(path): cannot read the validation plan (\(error.localizedDescription))")
        }
        return try load(data: data, file: url.lastPathComponent)
    }

    package static func load(data: Data, file: String) throws -> ValidationPlan {
        do {
            return try read(try JSONNode.parse(data, file: file), sha256: SHA256Digest.hex(of: data))
        } catch let e as VigilError where e.kind == .modelFormat {
            throw VigilError(.usage, e.message)
        }
    }

    private static func read(_ root: JSONNode, sha256: String) throws -> ValidationPlan {
        guard case .object = root.value else { throw root.fail("a validation plan is a JSON object, found \(root.typeName)") }
        try root.requireKeys(in: ["schema", "name", "version", "description", "group_fields", "confidence", "bootstrap", "cluster",
                                  "min_group_size", "criteria", "non_inferiority", "allowed_changes"])
        let schemaNode = try root["schema"]
        let schema = try text(schemaNode)
        guard schema == Self.schema else {
            throw schemaNode.fail("'\(Untrusted.quote(schema))' is not a supported plan schema (\(Self.schema) is)")
        }
        let name = try text(try root["name"])
        let version = try text(try root["version"])
        if let d = root.optional("description") { _ = try text(d, limit: 1 << 16) }
        let fieldsNode = try root["group_fields"]
        let fields = try fieldsNode.array().map { try text($0) }
        guard !fields.isEmpty, fields.count <= maxGroupFields else {
            throw fieldsNode.fail("\(fields.count) group fields; a plan names 1 to \(maxGroupFields) of the manifest's group fields")
        }
        guard Set(fields).count == fields.count else { throw fieldsNode.fail("a group field is listed twice in \(fields)") }
        let confidence = try root.optional("confidence").map { try number($0, in: 0.5...0.999, rule: "a confidence level in [0.5, 0.999] (0.95: a two-sided 95% interval)") } ?? 0.95
        var replicates = 2000
        var seed: UInt64 = 20240601
        if let b = root.optional("bootstrap") {
            guard case .object = b.value else { throw b.fail("expected an object {\"replicates\", \"seed\"}, found \(b.typeName)") }
            try b.requireKeys(in: ["replicates", "seed"])
            if let r = b.optional("replicates") { replicates = try integer(r, in: 100...100_000, rule: "bootstrap replicates in [100, 100000]") }
            if let s = b.optional("seed") { seed = UInt64(try integer(s, in: 0...(1 << 53) - 1, rule: "a seed in [0, 2^53)")) }
        }
        let cluster = try root.optional("cluster").flatMap { $0.isNull ? nil : try text($0) }
        let minGroupSize = try root.optional("min_group_size").map { try integer($0, in: 0...1_000_000_000, rule: "a row count in [0, 10^9]") } ?? 30

        let criteriaNode = try root["criteria"]
        let criteriaNodes = try criteriaNode.array()
        guard !criteriaNodes.isEmpty, criteriaNodes.count <= maxCriteria else {
            throw criteriaNode.fail("\(criteriaNodes.count) criteria; a plan holds 1 to \(maxCriteria)")
        }
        var ids = Set<String>()
        func uniqueID(_ node: JSONNode) throws -> String {
            let idNode = try node["id"]
            let id = try text(idNode)
            guard ids.insert(id).inserted else { throw idNode.fail("id '\(Untrusted.quote(id))' is used twice; every criterion needs its own id") }
            return id
        }
        let criteria = try criteriaNodes.map { c -> Criterion in
            guard case .object = c.value else { throw c.fail("a criterion is an object, found \(c.typeName)") }
            try c.requireKeys(in: ["id", "metric", "view", "group", "min", "max", "range", "max_gap", "min_ratio", "min_rows", "min_positives", "small_groups", "note"])
            let id = try uniqueID(c)
            let scope = try readScope(c, fields: fields)
            let rules = ["min", "max", "range", "max_gap", "min_ratio", "min_rows"].filter { c.optional($0) != nil }
            guard rules.count == 1 else {
                throw c.fail(rules.isEmpty ? "criterion '\(Untrusted.quote(id))' has no rule: give one of min, max, range, max_gap, min_ratio, min_rows"
                                           : "criterion '\(Untrusted.quote(id))' has \(rules.count) rules (\(rules.joined(separator: ", "))); give one per criterion")
            }
            if c.optional("min_positives") != nil, rules[0] != "min_rows" { throw c.fail("min_positives belongs with min_rows") }
            var metric: Metric?
            if rules[0] == "min_rows" {
                if let m = c.optional("metric") { throw m.fail("a min_rows criterion counts rows and positives; it takes no metric") }
                guard scope != .overall else { throw c.fail("criterion '\(Untrusted.quote(id))': min_rows needs a view (the groups it counts)") }
            } else {
                let mNode = try c["metric"]
                let mName = try text(mNode)
                guard let m = ValidationPlan.metric(named: mName) else {
                    throw mNode.fail("'\(Untrusted.quote(mName))' is not a metric (\(Metric.allCases.filter { !$0.isCount }.map(\.rawValue).joined(separator: ", ")), or sensitivity, specificity, precision, recall)")
                }
                metric = m
            }
            let node = try c[rules[0]]
            let rule: Rule
            switch rules[0] {
            case "min": rule = .min(try number(node, in: -1e6...1e6, rule: "a finite number"))
            case "max": rule = .max(try number(node, in: -1e6...1e6, rule: "a finite number"))
            case "range":
                let pair = try node.array()
                guard pair.count == 2 else { throw node.fail("expected [low, high], found \(pair.count) values") }
                let lo = try number(pair[0], in: -1e6...1e6, rule: "a finite number"), hi = try number(pair[1], in: -1e6...1e6, rule: "a finite number")
                guard lo <= hi else { throw node.fail("[\(lo), \(hi)]: low must not exceed high") }
                rule = .range(lo, hi)
            case "max_gap": rule = .maxGap(try number(node, in: 0...1e6, rule: "a difference >= 0"))
            case "min_ratio": rule = .minRatio(try number(node, in: 0...1, rule: "a ratio in [0, 1]"))
            default:
                rule = .minSize(rows: try integer(node, in: 0...1_000_000_000, rule: "a row count in [0, 10^9]"),
                                positives: try c.optional("min_positives").map { try integer($0, in: 0...1_000_000_000, rule: "a count in [0, 10^9]") } ?? 0)
            }
            if rule.isBetweenGroups {
                guard case .view = scope else { throw c.fail("criterion '\(Untrusted.quote(id))': \(rules[0]) compares the groups of a view: give \"view\" and no \"group\"") }
            }
            let skip = try smallGroups(c)
            let note = try c.optional("note").map { try text($0, limit: 4096) }
            return Criterion(id: id, metric: metric, scope: scope, rule: rule, skipSmallGroups: skip, note: note)
        }
        var margins: [NonInferiority] = []
        if let ni = root.optional("non_inferiority") {
            let nodes = try ni.array()
            guard nodes.count <= maxCriteria else { throw ni.fail("\(nodes.count) margins; at most \(maxCriteria)") }
            margins = try nodes.map { c in
                guard case .object = c.value else { throw c.fail("a non-inferiority margin is an object, found \(c.typeName)") }
                try c.requireKeys(in: ["id", "metric", "view", "group", "margin", "small_groups", "note"])
                let id = try uniqueID(c)
                let mNode = try c["metric"]
                let mName = try text(mNode)
                guard let m = metric(named: mName), m.direction != nil else {
                    throw mNode.fail("'\(Untrusted.quote(mName))' is not a metric with a better direction (\(Metric.allCases.filter { $0.direction != nil }.map(\.rawValue).joined(separator: ", ")))")
                }
                if let n = c.optional("note") { _ = try text(n, limit: 4096) }
                return NonInferiority(id: id, metric: m, scope: try readScope(c, fields: fields),
                                      margin: try number(try c["margin"], in: 0...1e6, rule: "a margin >= 0"), skipSmallGroups: try smallGroups(c))
            }
        }
        let allowed = try root.optional("allowed_changes").map { a -> [String] in
            let items = try a.array().map { try text($0) }
            for (i, t) in items.enumerated() where ChangeKind(rawValue: t) == nil {
                throw try a.array()[i].fail("'\(Untrusted.quote(t))' is not a change type (\(ChangeKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return items
        } ?? []
        return ValidationPlan(name: name, version: version, sha256: sha256, groupFields: fields, confidence: confidence, replicates: replicates, seed: seed,
                              cluster: cluster, minGroupSize: minGroupSize, criteria: criteria, nonInferiority: margins, allowedChanges: allowed)
    }

    /// `small_groups`: "fail" (default: a group below min_group_size cannot be judged, which fails
    /// the plan) or "skip".
    private static func smallGroups(_ c: JSONNode) throws -> Bool {
        guard let s = c.optional("small_groups") else { return false }
        switch try text(s) {
        case "fail": return false
        case "skip": return true
        case let other: throw s.fail("'\(Untrusted.quote(other))' must be \"fail\" (a group below min_group_size fails the criterion) or \"skip\"")
        }
    }

    /// `view` (group fields joined by `|`, in any order; named in the plan's order) and `group`.
    private static func readScope(_ c: JSONNode, fields: [String]) throws -> Scope {
        guard let v = c.optional("view") else {
            if let g = c.optional("group") { throw g.fail("a group needs the view it belongs to (\"view\")") }
            return .overall
        }
        let name = try text(v)
        if name == "overall" {
            if let g = c.optional("group") { throw g.fail("the overall view has no groups") }
            return .overall
        }
        let parts = name.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard Set(parts).count == parts.count, parts.allSatisfy(fields.contains) else {
            throw v.fail("'\(Untrusted.quote(name))' is not a view of the plan's group_fields \(fields): one or more of them joined by '|', each once")
        }
        let view = fields.filter(parts.contains).joined(separator: "|")
        guard let g = c.optional("group") else { return .view(view) }
        // A group key follows the view's field order; the plan may write it in its own order.
        let key = try text(g)
        let labels = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard labels.count == parts.count else {
            throw g.fail("'\(Untrusted.quote(key))' has \(labels.count) labels; a group of \(name) has \(parts.count), joined by '|'")
        }
        let byField = Dictionary(uniqueKeysWithValues: zip(parts, labels))
        return .group(view: view, key: fields.filter(parts.contains).map { byField[$0]! }.joined(separator: "|"))
    }

    private static func text(_ n: JSONNode, limit: Int = maxTextBytes) throws -> String {
        guard case .string(let s) = n.value else { throw n.fail("expected a string, found \(n.typeName)") }
        guard !s.isEmpty else { throw n.fail("must not be empty") }
        guard s.utf8.count <= limit else { throw n.fail("value '\(Untrusted.quote(s))' is longer than \(limit) bytes") }
        guard !Untrusted.containsControlCharacter(s, allowingNewline: true) else {
            throw n.fail("value '\(Untrusted.quote(s))' holds a control character")
        }
        return s
    }

    private static func number(_ n: JSONNode, in range: ClosedRange<Double>, rule: String) throws -> Double {
        guard case .number(let d) = n.value else { throw n.fail("expected a number (\(rule)), found \(n.typeName)") }
        guard d.isFinite, range.contains(d) else { throw n.fail("\(d) is not \(rule)") }
        return d
    }

    private static func integer(_ n: JSONNode, in range: ClosedRange<Int>, rule: String) throws -> Int {
        guard case .number(let d) = n.value else { throw n.fail("expected an integer (\(rule)), found \(n.typeName)") }
        guard d.isFinite, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound), let i = Int(exactly: d) else {
            throw n.fail("\(d) is not \(rule)")
        }
        return i
    }
}
