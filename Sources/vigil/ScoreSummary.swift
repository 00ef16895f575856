import Foundation
import VigilEngine
import VigilJSON

/// The summary `vigil score --summary FILE` writes: one JSON object on one line, so that the
/// summaries of the shards of a job concatenated (`cat shard-*.json`) are a JSON Lines file, and
/// `vigil merge-summaries` checks and adds them up into the summary of the whole cohort, the
/// same bytes as the unsharded run's summary:
///
///     {"summary":"vigil-score/1","shard":{"index":0,"count":4},
///      "rows":{"first":0,"count":256,"total":1000,"batch":64},
///      "input":{"name":"cohort.csv","hashed":"file","sha256":"..."},
///      "model":{"name":"sepsis","version":"1.0.0","sha256":"..."},
///      "scored":250,"with_warnings":3,
///      "groups":{"age=65+":{"rows":120,"positive":40,"negative":80},...}}
///
/// `groups` is keyed by the joint group label as the CSV output's `group` column writes it
/// (`all` for a model without group fields), in sorted order; `positive` and `negative` count
/// decisions (absent for a model that makes none). `input.sha256` is the SHA-256 of the input
/// file (`hashed: "file"`), or for a folder of images of its image file names, one a line in
/// scoring order (`hashed: "file names"`); every shard of one job must name the same input.
struct ScoreSummary: Equatable {
    static let schema = "vigil-score/1"

    struct Counts: Equatable {
        var rows = 0
        var positive = 0
        var negative = 0
    }

    var shard = Shard.whole
    var first = 0
    var count = 0
    var total = 0
    /// The batch size the shards were cut on (`Shard.rows(of:batch:)`).
    var batch = 1
    var inputName = ""
    var inputHashed = "file"
    var inputSHA256 = ""
    var modelName = ""
    var modelVersion = ""
    var modelSHA256 = ""
    var makesDecisions = true
    var scored = 0
    var withWarnings = 0
    var groups: [String: Counts] = [:]

    init() {}

    init(model: VigilModel) {
        modelName = model.name
        modelVersion = model.version
        modelSHA256 = model.sha256
        makesDecisions = model.makesDecisions
        groupNames = model.groups.map(\.name)
    }

    /// The model's group names, for the joint label (not part of the summary's text).
    private var groupNames: [String] = []

    mutating func add(_ records: [PredictionRecord]) {
        for r in records {
            scored += 1
            if !r.warnings.isEmpty { withWarnings += 1 }
            let key = groupNames.isEmpty ? "all" : zip(groupNames, r.groupLabels).map { "\($0)=\($1)" }.joined(separator: ";")
            var c = groups[key, default: Counts()]
            c.rows += 1
            if r.decision == true { c.positive += 1 }
            if r.decision == false { c.negative += 1 }
            groups[key] = c
        }
    }

    static func == (a: ScoreSummary, b: ScoreSummary) -> Bool { a.text == b.text }

    /// The summary's line, newline included.
    var text: String {
        var s = "{\"summary\":\"\(Self.schema)\",\"shard\":{\"index\":\(shard.index),\"count\":\(shard.count)}"
        s += ",\"rows\":{\"first\":\(first),\"count\":\(count),\"total\":\(total),\"batch\":\(batch)}"
        s += ",\"input\":{\"name\":\(JSON.string(inputName)),\"hashed\":\(JSON.string(inputHashed)),\"sha256\":\(JSON.string(inputSHA256))}"
        s += ",\"model\":{\"name\":\(JSON.string(modelName)),\"version\":\(JSON.string(modelVersion)),\"sha256\":\(JSON.string(modelSHA256))}"
        s += ",\"scored\":\(scored),\"with_warnings\":\(withWarnings),\"groups\":{"
        s += groups.keys.sorted().map { k in
            let c = groups[k]!
            return "\(JSON.string(k)):{\"rows\":\(c.rows)" + (makesDecisions ? ",\"positive\":\(c.positive),\"negative\":\(c.negative)}" : "}")
        }.joined(separator: ",")
        return s + "}}\n"
    }

    func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw VigilError(.io, "\(path): cannot write the --summary file")
        }
    }

    // MARK: - Reading and merging

    /// Largest summary file read (a summary is a few hundred bytes plus ~60 a group).
    static let maxFileBytes = 4 << 20
    /// Largest count a summary may hold (2^53: exact in a JSON number).
    static let maxCount = 1 << 53

    /// Reads the summaries in a file (one a line; blank lines skipped). Every field is checked:
    /// an error names the file, the line, the field, the value and the rule.
    static func read(file path: String) throws -> [ScoreSummary] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > maxFileBytes {
            throw VigilError(.input, "\(path): \(size) bytes; a summary file holds at most \(maxFileBytes)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw VigilError(.io, "\(path): cannot read the summary file") }
        var out: [ScoreSummary] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            out.append(try parse(Data(line), place: "\(path): line \(i + 1)"))
        }
        guard !out.isEmpty else { throw VigilError(.input, "\(path): no summary in the file (vigil score --summary writes one line)") }
        return out
    }

    static func parse(_ data: Data, place: String) throws -> ScoreSummary {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch {
            throw VigilError(.input, "\(place): not valid JSON (\(Untrusted.quote("\(error)"))); a summary is one JSON object a line")
        }
        guard case .object(let o) = value else { throw VigilError(.input, "\(place): not a JSON object") }
        func fail(_ key: String, _ v: JSONValue?, _ rule: String) -> VigilError {
            VigilError.input(at: place, field: key, value: v.map { Untrusted.quote("\($0)") } ?? "(absent)", rule: rule)
        }
        func object(_ o: [String: JSONValue], _ key: String, _ path: String) throws -> [String: JSONValue] {
            guard case .object(let inner)? = o[key] else { throw fail(path, o[key], "must be an object") }
            return inner
        }
        func string(_ o: [String: JSONValue], _ key: String, _ path: String) throws -> String {
            guard case .string(let s)? = o[key], s.utf8.count <= 4096 else { throw fail(path, o[key], "must be a string of at most 4096 bytes") }
            return s
        }
        func integer(_ o: [String: JSONValue], _ key: String, _ path: String, in range: ClosedRange<Int> = 0...maxCount) throws -> Int {
            guard case .number(let d)? = o[key], let n = Untrusted.integer(d, in: range) else {
                throw fail(path, o[key], "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return n
        }
        guard try string(o, "summary", "summary") == schema else { throw fail("summary", o["summary"], "must be \"\(schema)\" (a vigil score --summary file)") }
        var s = ScoreSummary()
        let shard = try object(o, "shard", "shard")
        let n = try integer(shard, "count", "shard.count", in: 1...Shard.maxCount)
        let i = try integer(shard, "index", "shard.index", in: 0...(n - 1))
        s.shard = Shard(index: i, count: n)
        let rows = try object(o, "rows", "rows")
        s.first = try integer(rows, "first", "rows.first")
        s.count = try integer(rows, "count", "rows.count")
        s.total = try integer(rows, "total", "rows.total")
        s.batch = try integer(rows, "batch", "rows.batch", in: 1...maxCount)
        let input = try object(o, "input", "input")
        s.inputName = try string(input, "name", "input.name")
        s.inputHashed = try string(input, "hashed", "input.hashed")
        s.inputSHA256 = try string(input, "sha256", "input.sha256")
        let model = try object(o, "model", "model")
        s.modelName = try string(model, "name", "model.name")
        s.modelVersion = try string(model, "version", "model.version")
        s.modelSHA256 = try string(model, "sha256", "model.sha256")
        s.scored = try integer(o, "scored", "scored")
        s.withWarnings = try integer(o, "with_warnings", "with_warnings")
        let groups = try object(o, "groups", "groups")
        guard groups.count <= 1 << 16 else { throw fail("groups", nil, "holds more than 65536 groups") }
        var decisions: Bool?
        for (k, v) in groups {
            guard k.utf8.count <= 4096, case .object(let c) = v else { throw fail("groups", nil, "must map each group label (at most 4096 bytes) to an object") }
            let path = "groups.\(Untrusted.quote(k))"
            let has = c["positive"] != nil || c["negative"] != nil
            if let d = decisions, d != has { throw fail(path, v, "must count decisions (positive, negative) as the other groups do") }
            decisions = has
            var counts = Counts(rows: try integer(c, "rows", "\(path).rows"))
            if has {
                counts.positive = try integer(c, "positive", "\(path).positive")
                counts.negative = try integer(c, "negative", "\(path).negative")
            }
            s.groups[k] = counts
        }
        s.makesDecisions = decisions ?? true
        return s
    }

    /// The summary of the whole cohort from one summary per shard (any order): each of the
    /// shards 0...N-1 exactly once, of the same input, model and row total, holding the rows
    /// `Shard.rows(of:batch:)` gives it. The result reads as shard 0/1 of all rows.
    static func merge(_ parts: [(place: String, summary: ScoreSummary)]) throws -> ScoreSummary {
        guard let (firstPlace, head) = parts.first else { throw VigilError(.usage, "merge-summaries: give the summary files of every shard") }
        let n = head.shard.count
        var byIndex = [String?](repeating: nil, count: n)
        for (place, s) in parts {
            func differ(_ what: String, _ a: String, _ b: String) -> VigilError {
                VigilError(.input, "\(place): \(what) is \(Untrusted.quote(b)) but \(firstPlace) says \(Untrusted.quote(a)); every shard of a job scores the same input with the same model")
            }
            guard s.shard.count == n else { throw differ("the shard count", String(n), String(s.shard.count)) }
            guard s.inputSHA256 == head.inputSHA256 else { throw differ("the input's sha256", head.inputSHA256, s.inputSHA256) }
            guard s.modelSHA256 == head.modelSHA256 else { throw differ("the model's sha256", head.modelSHA256, s.modelSHA256) }
            guard s.total == head.total else { throw differ("the row total", String(head.total), String(s.total)) }
            guard s.batch == head.batch else { throw differ("the batch size", String(head.batch), String(s.batch)) }
            guard s.makesDecisions == head.makesDecisions else { throw differ("whether decisions are counted", "\(head.makesDecisions)", "\(s.makesDecisions)") }
            if let other = byIndex[s.shard.index] {
                throw VigilError(.input, "\(place): shard \(s.shard) is also in \(other); each shard is merged once")
            }
            byIndex[s.shard.index] = place
            let expected = s.shard.rows(of: s.total, batch: s.batch)
            guard s.first == expected.lowerBound, s.count == expected.count else {
                throw VigilError(.input, "\(place): shard \(s.shard) holds rows \(s.first)..<\(s.first &+ s.count) but of \(s.total) rows it must hold \(expected.lowerBound)..<\(expected.upperBound)")
            }
            guard s.scored == s.count else {
                throw VigilError(.input, "\(place): shard \(s.shard) scored \(s.scored) rows of its \(s.count); a shard that stopped early cannot be merged")
            }
        }
        if let missing = byIndex.firstIndex(where: { $0 == nil }) {
            let list = byIndex.indices.filter { byIndex[$0] == nil }
            throw VigilError(.input, "merge-summaries: shard \(missing)/\(n) is missing (\(list.count) of \(n) missing: \(list.prefix(10).map(String.init).joined(separator: ", "))\(list.count > 10 ? ", ..." : ""))")
        }
        var m = head
        m.shard = .whole
        m.first = 0
        m.count = 0
        m.scored = 0
        m.withWarnings = 0
        m.groups = [:]
        func add(_ a: inout Int, _ b: Int, _ what: String) throws {
            let (sum, overflow) = a.addingReportingOverflow(b)
            guard !overflow, sum <= maxCount else { throw VigilError(.input, "merge-summaries: the sum of \(what) exceeds \(maxCount)") }
            a = sum
        }
        for (_, s) in parts.sorted(by: { $0.summary.shard.index < $1.summary.shard.index }) {
            if s.shard.index == 0 { m.inputName = s.inputName }
            try add(&m.count, s.count, "rows")
            try add(&m.scored, s.scored, "scored")
            try add(&m.withWarnings, s.withWarnings, "with_warnings")
            for (k, c) in s.groups {
                var t = m.groups[k, default: Counts()]
                try add(&t.rows, c.rows, "groups.\(k).rows")
                try add(&t.positive, c.positive, "groups.\(k).positive")
                try add(&t.negative, c.negative, "groups.\(k).negative")
                m.groups[k] = t
            }
        }
        return m
    }
}
