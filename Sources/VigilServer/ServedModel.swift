internal import Foundation
package import VigilEngine
internal import VigilJSON

/// Micro-batching settings.
package struct BatchingOptions: Sendable {
    /// Rows one scoring call takes at most.
    package var maxBatchRows = 64
    /// How long the scoring thread waits for more requests once it has one, when the previous
    /// batch held more than one request (under load); with one client it never waits.
    package var maxWaitMicros = 200
    /// Rows waiting at most; beyond, requests are refused with 503 and Retry-After.
    package var queueLimitRows = 4096

    package init() {}
}

/// One loaded model behind the server: its parser, monitor and scoring thread.
///
/// Requests for the model are queued; one thread per model takes everything queued (up to
/// `maxBatchRows` rows) and scores it with one call of the engine's batch kernels, appends the
/// ledger entries with one durable write (group commit), updates the counters, and only then
/// resumes the waiting requests.
package final class ServedModel: @unchecked Sendable {
    package let model: VigilModel
    package let parser: RequestParser
    package let monitor: ModelMonitor
    let metrics: ServerMetrics
    let ledger: AuditLedger?
    let index: PredictionIndex
    let options: BatchingOptions
    /// The record encoder of `vigil score`'s JSON Lines (no attribution), built once.
    package let recordJSON: RecordJSON
    /// The package's signature records as checked at admission (`PackageSignatures.admit`):
    /// shown in `/v1/models`; the qualifying record's SHA-256 goes into every ledger entry.
    package let signatures: SignatureAdmission
    /// `.shadow` for a shadow version: it scores requests production already answered, and
    /// its entries and counters are marked as the shadow's.
    package let role: LedgerEntry.Role
    /// The shadow version (`vigil serve --shadow`) scoring the same requests off the response
    /// path, or nil.
    package let shadow: ServedModel?
    /// Requests this shadow did not score (refused by its parser or engine, or its queue full),
    /// and the last reason.
    private var failures = 0
    private var lastFailure: String?
    /// Set when a promotion replaced this version: a request still waiting is told to retry.
    private var retired = false
    /// `vigil_drift_bucket_total` for this version's features and score, made once.
    private let drift: ServerMetrics.DriftCounters

    private struct Job {
        let batch: RowBatch
        /// Whether the records carry their attribution: the engine computes it in the same
        /// scoring call, on this model's scoring thread (`VigilModel.score(_:explain:)`).
        let explain: Bool
        let inputHashes: [String]
        /// Nil for a shadow's job: nobody waits for it.
        let continuation: CheckedContinuation<[ScoredRow], any Error>?
        /// A shadow's job: each row's production prediction id.
        let shadowOf: [String]?
    }

    private let cond = NSCondition()
    private var pending: [Job] = []
    private var pendingRows = 0
    private var stopped = false
    private var lastBatchJobs = 0
    /// Test hook: while true the scoring thread takes nothing (to fill the queue on purpose).
    private var held = false
    private var thread: Thread?

    init(model: VigilModel, metrics: ServerMetrics, ledger: AuditLedger?, index: PredictionIndex, options: BatchingOptions, signatures: SignatureAdmission = .unchecked, role: LedgerEntry.Role = .production, shadow: ServedModel? = nil, windows: MonitorWindows = MonitorWindows()) {
        self.model = model
        self.signatures = signatures
        self.role = role
        self.shadow = shadow
        parser = RequestParser(model: model)
        monitor = ModelMonitor(model: model, windows: windows)
        self.metrics = metrics
        self.ledger = ledger
        self.index = index
        self.options = options
        recordJSON = RecordJSON(model: model, explain: nil)
        drift = metrics.driftCounters(model: model.name, monitor: monitor, role: role)
    }

    func start() {
        let t = Thread { [self] in self.loop() }
        t.name = "vigil-score-\(model.name)"
        thread = t
        t.start()
    }

    /// Stops taking requests; what is queued is still scored. `retired`: a promotion replaced
    /// this version (a late request is told to retry, and reaches the new one).
    func stop(retired: Bool = false) {
        cond.lock()
        stopped = true
        self.retired = retired
        cond.broadcast()
        cond.unlock()
    }

    /// Requests a shadow did not score, and the last reason (nil when none).
    package var shadowFailures: (count: Int, last: String?) {
        cond.lock()
        defer { cond.unlock() }
        return (failures, lastFailure)
    }

    private func failed(_ reason: String, _ message: String) {
        cond.lock()
        failures += 1
        lastFailure = Untrusted.quote(message, limit: 400)
        cond.unlock()
        metrics.shadowFailed(model: model.name, reason: reason)
    }

    package func hold(_ on: Bool) {
        cond.lock()
        held = on
        cond.broadcast()
        cond.unlock()
    }

    /// Test hook: rows waiting in the queue now.
    package var queuedRows: Int {
        cond.lock()
        defer { cond.unlock() }
        return pendingRows
    }

    /// Scores a batch through the queue; with `explain`, each record carries its attribution,
    /// computed in the same batch job. Throws `ServerError` 503 when the queue is full, a
    /// `VigilError` when the engine refuses a row (or, with `explain`, cannot explain the model).
    package func score(_ batch: RowBatch, explain: Bool = false) async throws -> [ScoredRow] {
        let hashes = (0..<batch.count).map { inputHash(batch, row: $0) }
        return try await withCheckedThrowingContinuation { c in
            cond.lock()
            if stopped {
                let wasRetired = retired
                cond.unlock()
                c.resume(throwing: ServerError(503, wasRetired
                    ? "model '\(model.name)': version \(model.version) was replaced by a promotion while this request waited; send it again"
                    : "the server is shutting down", retryAfter: wasRetired ? 0 : 1))
                return
            }
            if pendingRows + batch.count > options.queueLimitRows, pendingRows > 0 || held {
                cond.unlock()
                metrics.rejected(model: model.name)
                c.resume(throwing: ServerError(503, "model '\(model.name)': \(pendingRows) rows are queued, at the limit of \(options.queueLimitRows); retry later", retryAfter: 1))
                return
            }
            pending.append(Job(batch: batch, explain: explain, inputHashes: hashes, continuation: c, shadowOf: nil))
            pendingRows += batch.count
            cond.signal()
            cond.unlock()
        }
    }

    /// Hands a request production answered (`rows`) to the shadow, off the response path: the
    /// shadow reads the request with its own parser (its features may differ from production's)
    /// and scores it on its own thread; nothing waits for it, and a refusal or a full queue is
    /// counted (`vigil_shadow_failures_total`, the monitor's `shadow.failures`), never returned.
    func feedShadow(_ rows: [ScoredRow], parse: @escaping @Sendable (RequestParser) throws -> RowBatch) {
        guard let shadow, !rows.isEmpty else { return }
        let ids = rows.map(\.predictionID)
        Task.detached {
            let batch: RowBatch
            do { batch = try parse(shadow.parser) } catch {
                shadow.failed("refused", "request of \(ids.first ?? ""): \((error as? VigilError)?.message ?? (error as? ServerError)?.message ?? "\(error)")")
                return
            }
            guard batch.count == ids.count else {
                shadow.failed("refused", "request of \(ids.first ?? ""): the shadow read \(batch.count) rows where production read \(ids.count)")
                return
            }
            shadow.enqueueShadow(batch, shadowOf: ids)
        }
    }

    /// Queues a shadow's job; never waits: over the queue limit the rows are dropped (counted).
    private func enqueueShadow(_ batch: RowBatch, shadowOf ids: [String]) {
        let hashes = (0..<batch.count).map { inputHash(batch, row: $0) }
        cond.lock()
        if stopped || (pendingRows + batch.count > options.queueLimitRows && pendingRows > 0) {
            let (full, queued) = (!stopped, pendingRows)
            cond.unlock()
            if full { failed("queue_full", "request of \(ids.first ?? ""): \(queued) rows queued, at the limit of \(options.queueLimitRows)") }
            return
        }
        pending.append(Job(batch: batch, explain: false, inputHashes: hashes, continuation: nil, shadowOf: ids))
        pendingRows += batch.count
        cond.signal()
        cond.unlock()
    }

    private func loop() {
        while true {
            cond.lock()
            while (pending.isEmpty || held) && !stopped { cond.wait() }
            if pending.isEmpty && stopped {
                cond.unlock()
                return
            }
            // Under load (the last batch merged several requests), wait a little for more.
            if lastBatchJobs > 1, pendingRows < options.maxBatchRows, options.maxWaitMicros > 0 {
                let deadline = Date(timeIntervalSinceNow: Double(options.maxWaitMicros) / 1e6)
                while pendingRows < options.maxBatchRows, !stopped, cond.wait(until: deadline) {}
            }
            var take = 0, rows = 0
            while take < pending.count, take == 0 || rows + pending[take].batch.count <= options.maxBatchRows {
                rows += pending[take].batch.count
                take += 1
            }
            let jobs = Array(pending.prefix(take))
            pending.removeFirst(take)
            pendingRows -= rows
            lastBatchJobs = jobs.count
            cond.unlock()
            run(jobs)
        }
    }

    private func run(_ jobs: [Job]) {
        // Score: the jobs asking for attributions in one call with `explain`, the others in one
        // call without; if the engine refuses a row, that group is scored job by job so that
        // only the offending request fails.
        var results = [Result<[PredictionRecord], any Error>](repeating: .success([]), count: jobs.count)
        for explain in [false, true] {
            let members = jobs.indices.filter { jobs[$0].explain == explain }
            for (i, r) in zip(members, scoreTogether(members.map { jobs[$0].batch }, explain: explain)) { results[i] = r }
        }
        metrics.batch(model: model.name, rows: jobs.reduce(0) { $0 + $1.batch.count }, role: role)
        // Ledger: one append (one write, one fdatasync) for every row of every job that scored.
        var rows: [(job: Int, row: Int, record: PredictionRecord, buckets: [Int])] = []
        for (j, r) in results.enumerated() {
            if case .success(let records) = r {
                let f = model.schema.count
                for (i, rec) in records.enumerated() {
                    // An image row holds its tensor, not features: no feature histograms.
                    let buckets = model.imageInput != nil ? [] : monitor.featureBuckets(jobs[j].batch.features[(i * f)..<((i + 1) * f)])
                    rows.append((j, i, rec, buckets))
                }
            }
        }
        var seqs: Range<Int>
        do {
            if rows.isEmpty {
                seqs = 0..<0
            } else if let ledger {
                seqs = try ledger.append(count: rows.count) { first in
                    rows.enumerated().map { k, row in
                        predictionBody(row.record, id: predictionID(first + k), inputHash: jobs[row.job].inputHashes[row.row], buckets: row.buckets, shadowOf: jobs[row.job].shadowOf?[row.row])
                    }
                }
            } else {
                seqs = index.nextSeqs(rows.count)
            }
        } catch {
            for job in jobs { job.continuation?.resume(throwing: ServerError(500, "audit ledger: \(error); the prediction was not recorded and is not returned")) }
            if role == .shadow { failed("refused", "audit ledger: \(error)") }
            return
        }
        var scored = results.map { _ in [ScoredRow]() }
        let bucket = monitor.windows.bucket(of: Date())
        for (k, row) in rows.enumerated() {
            let seq = seqs.lowerBound + k
            let id = predictionID(seq)
            record(outputs: row.record.outputs, labels: row.record.groupLabels, decision: row.record.decision, threshold: row.record.threshold, id: id, buckets: row.buckets, shadowOf: jobs[row.job].shadowOf?[row.row], timeBucket: bucket)
            scored[row.job].append(ScoredRow(record: row.record, predictionID: id, auditSeq: ledger == nil ? nil : seq))
        }
        for (j, job) in jobs.enumerated() {
            switch results[j] {
            case .success: job.continuation?.resume(returning: scored[j])
            case .failure(let e):
                job.continuation?.resume(throwing: e)
                if job.continuation == nil { failed("refused", "request of \(job.shadowOf?.first ?? ""): \((e as? VigilError)?.message ?? "\(e)")") }
            }
        }
    }

    /// Scores batches with one engine call, or one call each when that call refuses a row.
    private func scoreTogether(_ batches: [RowBatch], explain: Bool) -> [Result<[PredictionRecord], any Error>] {
        if batches.count <= 1 {
            return batches.map { b in Result { try engine(b, explain: explain) } }
        }
        if let records = try? engine(Self.merge(batches), explain: explain) {
            var off = 0
            return batches.map { b in
                defer { off += b.count }
                return .success(Array(records[off..<(off + b.count)]))
            }
        }
        return batches.map { b in Result { try engine(b, explain: explain) } }
    }

    /// One engine call on the scoring thread: tabular rows, or images (their tensors).
    private func engine(_ b: RowBatch, explain: Bool) throws -> [PredictionRecord] {
        model.imageInput != nil ? try model.score(b.images, threads: 1, explain: explain) : try model.score(b, threads: 1, explain: explain)
    }

    /// Counts a prediction (served now, or replayed from the ledger).
    /// A shadow's prediction (`shadowOf`: production's id) is linked to production's, so that an
    /// outcome for one is recorded for both.
    func record(outputs: [Double], labels: [String], decision: Bool?, threshold: Double?, id: String, buckets: [Int], shadowOf: String? = nil, timeBucket: Int) {
        let risk = outputs.first ?? .nan
        monitor.recordPrediction(labels: labels, risk: risk, decision: decision, featureBuckets: buckets, bucket: timeBucket)
        metrics.prediction(model: model.name, groups: monitor.metricLabels(labels), decision: decision, risk: risk, role: role)
        drift.record(scoreBucket: monitor.scoreBinning.reference == nil ? -1 : monitor.scoreBinning.bucket(risk), featureBuckets: buckets)
        index.insert(id, PredictionInfo(model: model.name, served: self, shadowOf: shadowOf, labels: labels, decision: decision, risk: risk, threshold: threshold, hasOutcome: false, bucket: timeBucket))
        if let shadowOf { index.linkShadow(production: shadowOf, shadow: id) }
    }

    /// `name-seq` (seq: the ledger entry's); a shadow's `name-shadow-seq`, so that it is never
    /// taken for a production prediction.
    package func predictionID(_ seq: Int) -> String { role == .shadow ? "\(model.name)-shadow-\(seq)" : "\(model.name)-\(seq)" }

    static func merge(_ batches: [RowBatch]) -> RowBatch {
        var m = RowBatch(count: 0, ids: [], features: [], groupRaw: [], origins: [])
        for b in batches {
            m.count += b.count
            m.ids += b.ids
            m.features += b.features
            m.groupRaw += b.groupRaw
            m.origins += b.origins
            m.notes += b.notes.count == b.count ? b.notes : Array(repeating: [], count: b.count)
            m.inputDigests += b.inputDigests
        }
        return m
    }

    /// SHA-256 of the row's canonical text: the features in model order (canonical numbers,
    /// empty for missing), then the raw group fields, then the id, separated by `|`.
    func inputHash(_ b: RowBatch, row: Int) -> String {
        let f = model.schema.count, g = model.fieldGroups.count
        var s = ""
        // An image: the SHA-256 of the bytes it came in (file or tensor), then groups and id.
        if b.inputDigests.count == b.count {
            s = b.inputDigests[row]
            for k in 0..<g { s += "|"; s += b.groupRaw[row * g + k] ?? "" }
            s += "|"; s += b.ids[row]
            return AuditLedger.sha256Hex(s.utf8)
        }
        s.reserveCapacity(f * 8)
        for j in 0..<f {
            if j > 0 { s += "," }
            let v = b.features[row * f + j]
            if !v.isNaN { s += MissingValues.canonicalText(v) }
        }
        for k in 0..<g { s += "|"; s += b.groupRaw[row * g + k] ?? "" }
        s += "|"; s += b.ids[row]
        return AuditLedger.sha256Hex(s.utf8)
    }

    // MARK: - Ledger entries (the format lives in LedgerEntry)

    func predictionBody(_ r: PredictionRecord, id: String, inputHash: String, buckets: [Int], shadowOf: String?) -> String {
        LedgerEntry.predictionBody(model: model, signatureSHA256: signatures.signatureSHA256, record: r, id: id, inputHash: inputHash, buckets: buckets, shadowOf: shadowOf)
    }

    /// Rebuilds counters from a ledger prediction entry for this model (same SHA-256); every
    /// field read is checked, so a malformed entry is an error naming its line and field.
    /// `time`: the entry's (seconds since 1970), so that the windows are rebuilt as they were.
    func replay(prediction e: LedgerEntry.Prediction, time: Double) {
        record(outputs: e.outputs, labels: e.labels, decision: e.decision, threshold: e.threshold, id: e.ref.predictionID, buckets: e.buckets, shadowOf: e.ref.shadowOf,
               timeBucket: monitor.windows.bucket(of: Date(timeIntervalSince1970: time)))
    }
}

extension Result where Failure == VigilError {
    /// The error's message, or an empty string on success.
    var failureMessage: String {
        if case .failure(let e) = self { return e.message }
        return ""
    }
}
