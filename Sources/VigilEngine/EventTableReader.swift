package import Foundation

/// Reads a raw event table for a model with a feature pipeline (`vigil score --events`): a CSV
/// with one row per entity and time (the training data's shape: one row per ICU hour), the
/// entity and time columns, one column per observation input (empty, NaN, NA or ? = not measured
/// then) and per static input, and optionally the model's group fields. Each row is a scoring
/// point: the pipeline's features at the row's time from the entity's rows up to and including it.
/// An entity's rows must be contiguous and in non-decreasing time order (refused naming the line
/// otherwise), so memory holds one entity's history, whatever the file's size.
package final class EventTableReader {
    package let url: URL
    package let model: VigilModel
    package let pipeline: FeaturePipeline
    package var bytesRead: Int { scanner.bytesRead }
    package var totalBytes: Int { scanner.totalBytes }
    package private(set) var notes: [String] = []

    private let scanner: CohortScanner
    private let limits: CohortReader.Limits
    private var header: [String] = []
    private var entityColumn = -1, timeColumn = -1
    private var inputColumn: [Int] = []  // per column: pipeline input or -1
    private var groupColumn: [Int] = []  // per column: field-group slot or -1
    private var history: EntityHistory?
    private var lastTime = -Double.infinity
    private var finished: Set<String> = []

    package init(url: URL, model: VigilModel, limits: CohortReader.Limits = .init()) throws {
        guard let pipeline = model.pipeline else {
            throw VigilError(.usage, "\(model.name): the model declares no feature pipeline (manifest 'pipeline'); --events needs one. Score a table of its features with --input")
        }
        self.url = url
        self.model = model
        self.pipeline = pipeline
        self.limits = limits
        scanner = try CohortScanner(url: url, format: .csv, limits: limits)
        header = try scanner.readHeader(emptyRule: "an event table needs a header naming the entity, time and input columns")
        inputColumn = Array(repeating: -1, count: header.count)
        groupColumn = Array(repeating: -1, count: header.count)
        for (c, name) in header.enumerated() {
            if name == pipeline.entityField { entityColumn = c }
            if name == pipeline.timeField { timeColumn = c }
            if let i = pipeline.input(named: name) { inputColumn[c] = i }
            if let slot = model.fieldGroups.firstIndex(where: { $0.field == name }) { groupColumn[c] = slot }
        }
        var required = [pipeline.entityField, pipeline.timeField] + pipeline.inputs.map(\.name)
        required.removeAll { header.contains($0) }
        if !required.isEmpty {
            throw VigilError(.input, "\(url.path): line 1: column \(CohortReader.list(required)) \(required.count == 1 ? "is" : "are") not in the header; an event table for '\(model.name)' needs '\(pipeline.entityField)', '\(pipeline.timeField)' and every pipeline input (\(CohortReader.list(pipeline.inputs.map(\.name))))")
        }
        for g in model.fieldGroups where !header.contains(g.field) {
            notes.append("group field '\(g.field)' (group '\(g.name)') is not in the input: every row gets '\(g.missingLabel)'")
        }
    }

    /// The next batch of at most `maxRows` scoring points, or nil at the end of the file.
    package func nextBatch(maxRows: Int = 8192) throws -> RowBatch? {
        let records = try scanner.nextRecords(maxRows: maxRows)
        guard !records.isEmpty else { return nil }
        let n = records.count, f = model.schema.count, g = model.fieldGroups.count
        var batch = RowBatch(count: n, ids: [], features: [Double](repeating: .nan, count: n * f), groupRaw: [String?](repeating: nil, count: n * g), origins: [])
        batch.ids.reserveCapacity(n)
        batch.origins.reserveCapacity(n)
        let file = url.lastPathComponent
        try scanner.buffer.withUnsafeBufferPointer { buf in
            try batch.features.withUnsafeMutableBufferPointer { fp in
                for (r, rec) in records.enumerated() {
                    let origin = "line \(rec.line)"
                    let place = "\(file): \(origin)"
                    let fields = try CohortReader.splitCSV(buf, rec.range, at: place, header: header, limits: limits)
                    guard fields.count == header.count else {
                        throw VigilError(.input, "\(place): \(fields.count) fields where the header has \(header.count); every row needs one value per column (empty for missing)")
                    }
                    func number(_ c: Int) throws -> Double {
                        switch RowNumber.read(buf, fields[c].range.lowerBound, fields[c].range.upperBound) {
                        case .value(let v): return v
                        case .refused(let rule):
                            throw VigilError.input(at: place, field: Untrusted.quote(header[c]), value: CohortReader.shown(buf, fields[c]), rule: rule)
                        }
                    }
                    let entity = try CohortReader.text(buf, fields[entityColumn], at: "\(place), field '\(Untrusted.quote(pipeline.entityField))'")
                    guard !entity.isEmpty else {
                        throw VigilError.input(at: place, field: Untrusted.quote(pipeline.entityField), value: "", rule: "is empty; every row names its entity")
                    }
                    let t = try number(timeColumn)
                    guard !t.isNaN, abs(t) <= 1e12 else {
                        throw VigilError.input(at: place, field: Untrusted.quote(pipeline.timeField), value: CohortReader.shown(buf, fields[timeColumn]), rule: "must be a number within +-1e12 (the row's time on the pipeline's axis, in \(pipeline.timeUnit))")
                    }
                    if history?.entity != entity {
                        if let h = history { finished.insert(h.entity) }
                        guard !finished.contains(entity) else {
                            throw VigilError.input(at: place, field: Untrusted.quote(pipeline.entityField), value: Untrusted.quote(entity), rule: "appeared before, on earlier rows; an entity's rows must be contiguous (sort the table by entity, then time)")
                        }
                        history = EntityHistory(pipeline: pipeline, entity: entity)
                        lastTime = -.infinity
                    }
                    guard t >= lastTime else {
                        throw VigilError.input(at: place, field: Untrusted.quote(pipeline.timeField), value: CohortReader.shown(buf, fields[timeColumn]), rule: "is earlier than the entity's previous row (\(MissingValues.canonicalText(lastTime))); an entity's rows must be in time order")
                    }
                    lastTime = t
                    history!.saw(t)
                    for c in header.indices where inputColumn[c] >= 0 {
                        let i = inputColumn[c]
                        let v = try number(c)
                        if pipeline.inputs[i].kind == .static { history!.statics[i] = v } else { history!.observe(i, time: t, value: v) }
                    }
                    for c in header.indices where groupColumn[c] >= 0 {
                        let text = try CohortReader.text(buf, fields[c], at: "\(place), field '\(Untrusted.quote(header[c]))'")
                        batch.groupRaw[r * g + groupColumn[c]] = text.isEmpty ? nil : text
                    }
                    pipeline.features(history!, at: t, into: fp.baseAddress! + r * f)
                    batch.ids.append(pipeline.recordID(entity: entity, time: t))
                    batch.origins.append(origin)
                }
            }
        }
        return batch
    }
}
