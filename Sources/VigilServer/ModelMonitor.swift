package import Foundation
package import VigilEngine

/// Monitoring state for one served model: additive counters only (docs/SERVER.md,
/// Monitoring), so that replicas can be summed. Everything else (rates, intervals, gaps,
/// drift, alerts) is derived from the counters when asked.
///
/// Counters are kept per *joint* group (one label per manifest group field, e.g.
/// `race=Black,sex=Female`): each prediction lands in exactly one joint group, so the sum over
/// groups is the total. Per-field views (`race=Black`) are sums over joint groups.
///
/// Beside the totals, the same counters are kept per time bucket (`MonitorWindows`, hourly by
/// default) of the prediction's time, so that the report can show the last 24 h, 7 d, 30 d:
/// an outcome counts in the bucket of the prediction it belongs to. Buckets older than the
/// longest window are dropped; the totals are never windowed (Prometheus keeps its counters).
package final class ModelMonitor: @unchecked Sendable {
    package struct Counts: Sendable {
        package var predictions = 0
        package var positives = 0
        package var tp = 0, fp = 0, tn = 0, fn = 0
        package var scoreBuckets: [Int]

        init(buckets: Int) { scoreBuckets = [Int](repeating: 0, count: buckets) }

        mutating func add(_ o: Counts) {
            predictions += o.predictions; positives += o.positives
            tp += o.tp; fp += o.fp; tn += o.tn; fn += o.fn
            for i in scoreBuckets.indices { scoreBuckets[i] += o.scoreBuckets[i] }
        }
    }

    /// One histogram against a reference: `edges` e1..ek give k+1 buckets, plus one for missing.
    package struct Binning: Sendable {
        package let edges: [Double]
        /// The reference's counts, k+1 buckets then missing (nil when the manifest has none).
        package let reference: [Double]?

        /// The bucket of a value: k+1 for missing, else the number of edges <= v.
        package func bucket(_ v: Double) -> Int { Stats.bucket(v, edges: edges) }

        package var bucketCount: Int { edges.count + 2 }
    }

    package let model: VigilModel
    package let windows: MonitorWindows
    package let groupNames: [String]
    /// Prometheus label names, one per group field (`metricLabels`).
    package let metricLabelNames: [String]
    /// Per group field, every label the manifest can give (nil: raw values pass through).
    private let knownLabels: [Set<String>?]
    /// Per pass-through field, the raw values seen so far (at most `maxRawLabelValues`).
    private var seenRaw: [Set<String>]
    /// Distinct values a pass-through group field may show in /metrics; later ones are `_other`.
    package static let maxRawLabelValues = 32
    /// Labels Vigil's own series use: a group field of that name is exported as `group_<name>`.
    package static let reservedLabels: Set<String> = ["model", "decision", "outcome", "le", "route", "status", "reason", "replica", "version", "feature", "bucket", "quantile", "metric", "instance", "job"]
    package let scoreBinning: Binning
    /// Per feature (model order): its binning, or nil without a manifest reference.
    package let featureBinnings: [Binning?]
    private let lock = NSLock()
    private var joint: [String: (labels: [String], counts: Counts)] = [:]
    private var featureCounts: [[Int]]
    /// Per time bucket: the joint counters and the feature counts of that bucket's predictions.
    private var bucketed: [Int: (joint: [String: (labels: [String], counts: Counts)], features: [[Int]])] = [:]
    private var newestBucket = Int.min

    package init(model: VigilModel, windows: MonitorWindows = MonitorWindows()) {
        self.model = model
        self.windows = windows
        groupNames = model.groups.map(\.name)
        var names: [String] = []
        for g in model.groups {
            var n = String(g.name.unicodeScalars.map { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" ? Character($0) : "_" })
            if n.isEmpty || n.first!.isNumber { n = "_" + n }
            if n.hasPrefix("__") { n = "g" + n }
            if Self.reservedLabels.contains(n) { n = "group_" + n }
            while names.contains(n) { n += "_" }
            names.append(n)
        }
        metricLabelNames = names
        knownLabels = model.groups.map { g in
            if let bins = g.bins { return Set(bins.labels + [g.missingLabel] + (g.other.map { [$0] } ?? [])) }
            if let map = g.map, let other = g.other { return Set(Array(map.values) + [other, g.missingLabel]) }
            return nil
        }
        seenRaw = model.groups.map { _ in [] }
        let manifest = model.manifest
        if let s = manifest?.scoreReference {
            scoreBinning = Binning(edges: s.edges, reference: s.counts + [s.missing])
        } else {
            // No reference: deciles of the probability scale, so counts still mean something.
            scoreBinning = Binning(edges: (1...9).map { Double($0) / 10 }, reference: nil)
        }
        featureBinnings = model.schema.names.map { name in
            manifest?.featureReference[name].map { Binning(edges: $0.edges, reference: $0.counts + [$0.missing]) }
        }
        featureCounts = featureBinnings.map { [Int](repeating: 0, count: $0?.bucketCount ?? 0) }
    }

    /// The joint group label, e.g. `race=White,sex=Female` (`all` for a model without groups).
    package func groupLabel(_ labels: [String]) -> String {
        labels.isEmpty ? "all" : zip(groupNames, labels).map { "\($0)=\($1)" }.joined(separator: ",")
    }

    /// The Prometheus labels of a row's groups: one per group field (`sex="Female"`), values
    /// bounded by the manifest (a value it cannot give, and a pass-through field's values beyond
    /// the first `maxRawLabelValues`, show as `_other`), so that no client can grow /metrics.
    package func metricLabels(_ labels: [String]) -> [(String, String)] {
        var out: [(String, String)] = []
        out.reserveCapacity(labels.count)
        for (i, label) in labels.enumerated() where i < metricLabelNames.count {
            if let known = knownLabels[i] {
                out.append((metricLabelNames[i], known.contains(label) ? label : "_other"))
            } else {
                lock.lock()
                let ok = seenRaw[i].contains(label) || (seenRaw[i].count < Self.maxRawLabelValues && seenRaw[i].insert(label).inserted)
                lock.unlock()
                out.append((metricLabelNames[i], ok ? label : "_other"))
            }
        }
        return out
    }

    /// Feature bucket indices of one row (-1 for a feature without reference): stored in the
    /// ledger so that drift counters can be rebuilt from it.
    package func featureBuckets(_ row: ArraySlice<Double>) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(featureBinnings.count)
        for (j, v) in row.enumerated() {
            out.append(featureBinnings[j]?.bucket(v) ?? -1)
        }
        return out
    }

    /// Counts a prediction made in time bucket `bucket` (`windows.bucket(of:)`).
    package func recordPrediction(labels: [String], risk: Double, decision: Bool?, featureBuckets: [Int], bucket: Int) {
        let key = groupLabel(labels)
        let b = scoreBinning.bucket(risk)
        lock.lock()
        defer { lock.unlock() }
        func add(_ joint: inout [String: (labels: [String], counts: Counts)], _ features: inout [[Int]]) {
            var entry = joint[key] ?? (labels, Counts(buckets: scoreBinning.bucketCount))
            entry.counts.predictions += 1
            if decision == true { entry.counts.positives += 1 }
            entry.counts.scoreBuckets[b] += 1
            joint[key] = entry
            for (j, fb) in featureBuckets.enumerated() where fb >= 0 && j < features.count && fb < features[j].count {
                features[j][fb] += 1
            }
        }
        add(&joint, &featureCounts)
        if var slot = takeBucket(bucket) {
            add(&slot.joint, &slot.features)
            bucketed[bucket] = slot
        }
    }

    /// Counts an outcome of a prediction made in time bucket `bucket`.
    /// CDS Hooks feedback on this model's cards, per joint group: accepted and overridden.
    private var feedback: [String: (accepted: Int, overridden: Int)] = [:]

    /// Records a clinician's feedback on a card (CDS Hooks `/feedback`): accepted or overridden.
    package func recordFeedback(labels: [String], accepted: Bool) {
        let key = groupLabel(labels)
        lock.lock()
        defer { lock.unlock() }
        var e = feedback[key] ?? (0, 0)
        if accepted { e.accepted += 1 } else { e.overridden += 1 }
        feedback[key] = e
    }

    /// The feedback counters by joint group.
    package func feedbackSnapshot() -> [String: (accepted: Int, overridden: Int)] {
        lock.lock()
        defer { lock.unlock() }
        return feedback
    }

    package func recordOutcome(labels: [String], decision: Bool, label: Bool, bucket: Int) {
        let key = groupLabel(labels)
        lock.lock()
        defer { lock.unlock() }
        func add(_ joint: inout [String: (labels: [String], counts: Counts)]) {
            var entry = joint[key] ?? (labels, Counts(buckets: scoreBinning.bucketCount))
            switch (decision, label) {
            case (true, true): entry.counts.tp += 1
            case (true, false): entry.counts.fp += 1
            case (false, false): entry.counts.tn += 1
            case (false, true): entry.counts.fn += 1
            }
            joint[key] = entry
        }
        add(&joint)
        if var slot = takeBucket(bucket) {
            add(&slot.joint)
            bucketed[bucket] = slot
        }
    }

    /// The bucket's counters to update (created when new), or nil when it is older than the
    /// longest window; a newer bucket drops those that fell out. Called with the lock held.
    private func takeBucket(_ bucket: Int) -> (joint: [String: (labels: [String], counts: Counts)], features: [[Int]])? {
        if bucket > newestBucket {
            newestBucket = bucket
            let oldest = bucket - windows.keptBuckets + 1
            for b in bucketed.keys where b < oldest { bucketed.removeValue(forKey: b) }
        }
        guard bucket > newestBucket - windows.keptBuckets else { return nil }
        return bucketed[bucket] ?? ([:], featureBinnings.map { [Int](repeating: 0, count: $0?.bucketCount ?? 0) })
    }

    package func snapshot() -> (joint: [String: (labels: [String], counts: Counts)], features: [[Int]]) {
        lock.lock()
        defer { lock.unlock() }
        return (joint, featureCounts)
    }

    /// The counters of predictions made in buckets `from...` (a window), summed.
    package func snapshot(fromBucket from: Int) -> (joint: [String: (labels: [String], counts: Counts)], features: [[Int]]) {
        lock.lock()
        defer { lock.unlock() }
        var joint: [String: (labels: [String], counts: Counts)] = [:]
        var features = featureBinnings.map { [Int](repeating: 0, count: $0?.bucketCount ?? 0) }
        for (b, slot) in bucketed where b >= from {
            for (key, v) in slot.joint {
                var e = joint[key] ?? (v.labels, Counts(buckets: scoreBinning.bucketCount))
                e.counts.add(v.counts)
                joint[key] = e
            }
            for j in features.indices { for i in features[j].indices { features[j][i] += slot.features[j][i] } }
        }
        return (joint, features)
    }
}

/// How the monitor windows its counters (`vigil serve --monitor-bucket-seconds`,
/// `--monitor-windows`): buckets of `bucketSeconds` of prediction time, and the windows the
/// report shows, each the last `seconds` up to now (bucket-aligned: a window of 24 h at hourly
/// buckets is the current bucket and the 23 before it).
package struct MonitorWindows: Sendable {
    package var bucketSeconds = 3600
    package var windows: [(label: String, seconds: Int)] = [("24h", 86_400), ("7d", 604_800), ("30d", 2_592_000)]

    package init() {}

    /// Largest window or bucket accepted: 366 days; smallest bucket: 1 s; at most 8 windows.
    package static let maxSeconds = 366 * 86_400

    /// Buckets a window of `seconds` spans (at least 1).
    package func buckets(_ seconds: Int) -> Int { max(1, (seconds + bucketSeconds - 1) / bucketSeconds) }

    /// Buckets kept: the longest window's.
    package var keptBuckets: Int { windows.map { buckets($0.seconds) }.max() ?? 1 }

    package func bucket(of date: Date) -> Int { Int((date.timeIntervalSince1970 / Double(bucketSeconds)).rounded(.down)) }

    /// Reads `24h,7d,30d` (units s, m, h, d), checked: 1-8 windows, each a whole number of
    /// seconds in 1...366 d, no repeats.
    package static func parse(_ text: String, flag: String = "--monitor-windows") throws -> [(label: String, seconds: Int)] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...8).contains(parts.count) else { throw VigilError(.usage, "\(flag) \(Untrusted.quote(text)): 1 to 8 windows, comma-separated (e.g. 24h,7d,30d)") }
        var out: [(String, Int)] = []
        for p in parts {
            guard let seconds = duration(p), (1...maxSeconds).contains(seconds) else {
                throw VigilError(.usage, "\(flag) \(Untrusted.quote(text)): '\(Untrusted.quote(p))' is not a duration of 1s to 366d (a whole number and s, m, h or d)")
            }
            guard !out.contains(where: { $0.0 == p }) else { throw VigilError(.usage, "\(flag) \(Untrusted.quote(text)): '\(p)' twice") }
            out.append((p, seconds))
        }
        return out
    }

    /// `90s`, `15m`, `24h`, `7d` in seconds, or nil.
    package static func duration(_ s: String) -> Int? {
        guard let unit = s.last, let n = Int(s.dropLast()), n > 0, n <= maxSeconds else { return nil }
        let scale: Int
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        case "d": scale = 86_400
        default: return nil
        }
        let (v, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : v
    }
}
