package import Foundation

/// A labelled cohort for fitting thresholds and auditing: each row's risk (scored by the model,
/// or read from a score column), its 0/1 label, its group labels and, with a model, the threshold
/// its policy gives it. Read strictly: a missing or non-binary label, or a score outside [0, 1],
/// is an error naming the line, column and value.
package struct LabelledCohort: Sendable {
    package let url: URL
    /// SHA-256 of the input file's bytes.
    package let sha256: String
    package let ids: [String]
    package let risks: [Double]
    package let labels: [Bool]
    package let fields: [String]
    /// `groupLabels[f][row]`.
    package let groupLabels: [[String]]
    /// Per row, with a model: the threshold its policy gives it, and the policy entry.
    package let thresholds: [Double]?
    package let thresholdSources: [String]?
    /// How many rows took the policy's fallback threshold, by reason.
    package let fallbacks: [String: Int]
    /// `model <name> <version> (sha256 <12 hex>)` or `column <name>`.
    package let scoreSource: String
    package let notes: [String]
    /// With `clusterColumn`: each row's cluster (patient or stay), numbered by first appearance.
    package var clusters: Resampling.Clusters? = nil
    /// How a bootstrap resamples this cohort: whole clusters when it has them, else rows
    /// stratified by group.
    package var resampling: Resampling { clusters.map { .clusters($0) } ?? .stratifiedRows }
    /// With `explain`: each row's attribution of the risk (first output, the model's margin
    /// space), `count x attributionNames.count`, row-major.
    package var attributions: [Double]? = nil
    package var attributionNames: [String] = []
    /// With a model whose manifest has reference histograms: each such feature's counts in the
    /// reference's buckets (k + 1 buckets of its k edges, then missing), over all rows.
    package var featureHistograms: [(name: String, edges: [Double], counts: [Int])] = []

    package var count: Int { risks.count }


    /// With a model, `groupFields` are names of the manifest's groups (labels come through their
    /// maps and bins); without one, they are input columns whose raw text is the label (missing
    /// -> `Unknown`), and `scoresColumn` is required.
    package static func load(
        url: URL, model: VigilModel?, labelColumn: String, scoresColumn: String?, groupFields: [String],
        clusterColumn: String? = nil, explain: Bool = false, format: CohortFormat? = nil, limits: CohortReader.Limits = CohortReader.Limits()
    ) throws -> LabelledCohort {
        if let c = clusterColumn, c == labelColumn || c == scoresColumn {
            throw VigilError(.usage, "--cluster \(c) is the \(c == labelColumn ? "label" : "scores") column; give the column naming each row's patient")
        }
        let sha = try SHA256Digest.hex(ofFileAt: url)
        guard let model else {
            guard let scoresColumn else {
                throw VigilError(.usage, "give --model (Vigil scores the rows) or --scores-column (the risks are in a column)")
            }
            return try loadColumns(url: url, sha: sha, labelColumn: labelColumn, scoresColumn: scoresColumn, groupFields: groupFields,
                                   clusterColumn: clusterColumn, format: format, limits: limits)
        }
        guard model.makesDecisions else {
            throw VigilError(.usage, "\(model.name) is not a binary model (\(model.ir.objective.summary)); thresholds and fairness audits need a risk")
        }
        let slots = try groupFields.map { name -> Int in
            guard let i = model.groups.firstIndex(where: { $0.name == name }) else {
                throw VigilError(.usage, "--group \(name): not one of \(model.name)'s group fields (\(model.groups.map(\.name).joined(separator: ", ")))")
            }
            return i
        }
        let extra = [labelColumn] + (scoresColumn.map { [$0] } ?? []) + (clusterColumn.map { [$0] } ?? [])
        let reader = try CohortReader(url: url, model: model, format: format, extraColumns: extra, limits: limits)
        let clusterSlot = clusterColumn == nil ? nil : extra.count - 1
        var ids: [String] = [], risks: [Double] = [], labels: [Bool] = [], thresholds: [Double] = [], sources: [String] = []
        var clusters: [String] = []
        var attributions: [Double] = []
        var groups = [[String]](repeating: [], count: groupFields.count)
        var fallbacks: [String: Int] = [:]
        let e = reader.extraColumns.count
        let references = model.featureReferences
        var histograms = references.map { [Int](repeating: 0, count: $0.edges.count + 2) }
        let width = model.schema.count
        while let batch = try reader.nextBatch() {
            for r in 0..<batch.count {
                for (h, ref) in references.enumerated() {
                    histograms[h][Stats.bucket(batch.features[r * width + ref.index], edges: ref.edges)] += 1
                }
            }
            let records = try model.score(batch, explain: explain)
            for (r, rec) in records.enumerated() {
                let place = "\(url.lastPathComponent): \(batch.origins[r])"
                labels.append(try parseLabel(batch.extra[r * e], at: place, column: labelColumn))
                if let scoresColumn {
                    risks.append(try parseRisk(batch.extra[r * e + 1], at: place, column: scoresColumn))
                } else {
                    risks.append(rec.outputs[0])
                }
                ids.append(rec.id)
                if explain, let a = rec.attribution { attributions.append(contentsOf: a.contributions.prefix(a.featureCount)) }
                if let clusterSlot, let clusterColumn {
                    clusters.append(try parseCluster(batch.extra[r * e + clusterSlot], at: place, column: clusterColumn))
                }
                for (k, slot) in slots.enumerated() { groups[k].append(rec.groupLabels[slot]) }
                thresholds.append(rec.threshold!)
                sources.append(rec.thresholdSource!.label)
                if case .fallback(let reason)? = rec.thresholdSource { fallbacks[reason, default: 0] += 1 }
            }
        }
        guard !risks.isEmpty else { throw VigilError(.input, "\(url.path): no rows") }
        var cohort = LabelledCohort(
            url: url, sha256: sha, ids: ids, risks: risks, labels: labels, fields: groupFields, groupLabels: groups,
            thresholds: thresholds, thresholdSources: sources, fallbacks: fallbacks,
            scoreSource: scoresColumn.map { "column \($0)" } ?? "model \(model.name) \(model.version) (sha256 \(model.sha256.prefix(12)))",
            notes: reader.notes)
        if let clusterColumn { cohort.clusters = Resampling.Clusters(keys: clusters, column: clusterColumn) }
        cohort.featureHistograms = zip(references, histograms).map { ($0.name, $0.edges, $1) }
        if explain {
            cohort.attributionNames = model.attributionNames
            guard attributions.count == risks.count * cohort.attributionNames.count else {
                throw VigilError(.input, "\(model.name): \(attributions.count) attribution values for \(risks.count) rows of \(cohort.attributionNames.count) features")
            }
            cohort.attributions = attributions
        }
        return cohort
    }

    /// A cluster id (patient, stay): any non-missing text of at most 256 bytes. A row without one
    /// cannot be resampled with its patient, so it is refused rather than made a cluster of its own.
    static func parseCluster(_ text: String?, at place: String, column: String) throws -> String {
        guard let text, !MissingValues.isMissingToken(text) else {
            throw VigilError.input(at: place, field: column, value: Untrusted.quote(text ?? ""), rule: "is missing; with --cluster every row needs the id of the patient (or stay) it belongs to")
        }
        guard text.utf8.count <= 256 else {
            throw VigilError.input(at: place, field: column, value: Untrusted.quote(text), rule: "is longer than 256 bytes; a cluster id is a patient or stay identifier")
        }
        return text
    }

    /// A label: 1/0, 1.0/0.0 or true/false.
    static func parseLabel(_ text: String?, at place: String, column: String) throws -> Bool {
        guard let text, !MissingValues.isMissingToken(text) else {
            throw VigilError.input(at: place, field: column, value: Untrusted.quote(text ?? ""), rule: "is missing; every row needs a 0/1 label")
        }
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "1", "1.0", "true": return true
        case "0", "0.0", "false": return false
        default: throw VigilError.input(at: place, field: column, value: Untrusted.quote(text), rule: "is not a binary label (1/0, 1.0/0.0 or true/false)")
        }
    }

    static func parseRisk(_ text: String?, at place: String, column: String) throws -> Double {
        guard let text, let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0, v <= 1 else {
            throw VigilError.input(at: place, field: column, value: Untrusted.quote(text ?? ""), rule: "is not a risk in [0, 1]")
        }
        return v
    }

    /// Reads named columns of a CSV (with header) or JSON Lines file into memory, through the
    /// record scanner `CohortReader` uses (same limits, same refusals).
    private static func loadColumns(
        url: URL, sha: String, labelColumn: String, scoresColumn: String, groupFields: [String], clusterColumn: String?,
        format: CohortFormat?, limits: CohortReader.Limits
    ) throws -> LabelledCohort {
        let scanner = try CohortScanner(url: url, format: format ?? .guess(path: url.path), limits: limits)
        let file = url.lastPathComponent
        var labels: [Bool] = [], risks: [Double] = []
        var groups = [[String]](repeating: [], count: groupFields.count)
        var clusters: [String] = []
        // Per row: label, score, the group fields' raw text (missing -> nil), then the cluster id.
        func take(_ values: [String?], at place: String) throws {
            labels.append(try parseLabel(values[0], at: place, column: labelColumn))
            risks.append(try parseRisk(values[1], at: place, column: scoresColumn))
            for k in groupFields.indices { groups[k].append(values[2 + k] ?? "Unknown") }
            if let clusterColumn { clusters.append(try parseCluster(values[2 + groupFields.count], at: place, column: clusterColumn)) }
        }
        let wanted = [labelColumn, scoresColumn] + groupFields + (clusterColumn.map { [$0] } ?? [])
        switch scanner.format {
        case .csv:
            let names = try scanner.readHeader(emptyRule: "a CSV cohort needs a header naming its columns")
            let index = try wanted.map { w -> Int in
                guard let c = names.firstIndex(of: w) else {
                    throw VigilError(.input, "\(url.path): line 1: column '\(Untrusted.quote(w))' is not in the header (columns: \(CohortReader.list(names)))")
                }
                return c
            }
            while case let records = try scanner.nextRecords(maxRows: 8192), !records.isEmpty {
                try scanner.buffer.withUnsafeBufferPointer { buf in
                    for (range, ln) in records {
                        let place = "\(file): line \(ln)"
                        let fields = try CohortReader.splitCSV(buf, range, at: place, header: names, limits: limits)
                        guard fields.count == names.count else {
                            throw VigilError(.input, "\(place): \(fields.count) fields where the header has \(names.count); every row needs one value per column (empty for missing)")
                        }
                        let values = try index.map { c -> String? in
                            let t = try CohortReader.text(buf, fields[c], at: "\(place), \(CohortReader.columnName(c, names))")
                            return t.isEmpty ? nil : t
                        }
                        try take(values, at: place)
                    }
                }
            }
        case .jsonl:
            while case let records = try scanner.nextRecords(maxRows: 8192), !records.isEmpty {
                for (range, ln) in records {
                    let place = "\(file): line \(ln)"
                    let parsed: JSONValue
                    do {
                        parsed = try scanner.buffer.withUnsafeBufferPointer { try JSONValue.parse(Data(UnsafeBufferPointer(rebasing: $0[range]))) }
                    } catch {
                        throw VigilError(.input, "\(place): not valid JSON (\(error)); JSON Lines needs one object per line")
                    }
                    guard case .object(let o) = parsed else {
                        throw VigilError(.input, "\(place): not a JSON object (JSON Lines needs one object per line)")
                    }
                    try take([CohortReader.extraText(o[labelColumn]), CohortReader.extraText(o[scoresColumn])] + groupFields.map { CohortReader.groupText(o[$0]) }
                             + (clusterColumn.map { [CohortReader.extraText(o[$0])] } ?? []), at: place)
                }
            }
        }
        guard !risks.isEmpty else { throw VigilError(.input, "\(url.path): no rows") }
        var cohort = LabelledCohort(
            url: url, sha256: sha, ids: risks.indices.map { String($0 + 1) }, risks: risks, labels: labels, fields: groupFields,
            groupLabels: groups, thresholds: nil, thresholdSources: nil, fallbacks: [:], scoreSource: "column \(scoresColumn)", notes: [])
        if let clusterColumn { cohort.clusters = Resampling.Clusters(keys: clusters, column: clusterColumn) }
        return cohort
    }

    /// Each row's key for `fields` (labels joined by `|`).
    package var groupKeys: [String] {
        (0..<count).map { r in groupLabels.map { $0[r] }.joined(separator: "|") }
    }
}

extension LabelledCohort {
    /// A cohort assembled elsewhere (`vigil compare --ledger`: predictions and outcomes read
    /// from the audit ledger); `url` and `sha256` name the file the rows came from.
    package init(url: URL, sha256: String, ids: [String], risks: [Double], labels: [Bool], fields: [String], groupLabels: [[String]],
                 thresholds: [Double]?, scoreSource: String, notes: [String] = []) {
        self.url = url
        self.sha256 = sha256
        self.ids = ids
        self.risks = risks
        self.labels = labels
        self.fields = fields
        self.groupLabels = groupLabels
        self.thresholds = thresholds
        thresholdSources = nil
        fallbacks = [:]
        self.scoreSource = scoreSource
        self.notes = notes
    }
}
