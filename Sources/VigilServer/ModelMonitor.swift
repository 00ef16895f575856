internal import Foundation
package import VigilEngine

/// Monitoring state for one served model: additive counters only (docs/SERVER.md,
/// Monitoring), so that replicas can be summed. Everything else (rates, intervals, gaps,
/// drift, alerts) is derived from the counters when asked.
///
/// Counters are kept per *joint* group (one label per manifest group field, e.g.
/// `race=Black,sex=Female`): each prediction lands in exactly one joint group, so the sum over
/// groups is the total. Per-field views (`race=Black`) are sums over joint groups.
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
        package func bucket(_ v: Double) -> Int {
            if v.isNaN { return edges.count + 1 }
            var lo = 0, hi = edges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if edges[mid] <= v { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        package var bucketCount: Int { edges.count + 2 }
    }

    package let model: VigilModel
    package let groupNames: [String]
    package let scoreBinning: Binning
    /// Per feature (model order): its binning, or nil without a manifest reference.
    package let featureBinnings: [Binning?]
    private let lock = NSLock()
    private var joint: [String: (labels: [String], counts: Counts)] = [:]
    private var featureCounts: [[Int]]

    package init(model: VigilModel) {
        self.model = model
        groupNames = model.groups.map(\.name)
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

    package func recordPrediction(labels: [String], risk: Double, decision: Bool?, featureBuckets: [Int]) {
        let key = groupLabel(labels)
        let b = scoreBinning.bucket(risk)
        lock.lock()
        defer { lock.unlock() }
        var entry = joint[key] ?? (labels, Counts(buckets: scoreBinning.bucketCount))
        entry.counts.predictions += 1
        if decision == true { entry.counts.positives += 1 }
        entry.counts.scoreBuckets[b] += 1
        joint[key] = entry
        for (j, fb) in featureBuckets.enumerated() where fb >= 0 && j < featureCounts.count && fb < featureCounts[j].count {
            featureCounts[j][fb] += 1
        }
    }

    package func recordOutcome(labels: [String], decision: Bool, label: Bool) {
        let key = groupLabel(labels)
        lock.lock()
        defer { lock.unlock() }
        var entry = joint[key] ?? (labels, Counts(buckets: scoreBinning.bucketCount))
        switch (decision, label) {
        case (true, true): entry.counts.tp += 1
        case (true, false): entry.counts.fp += 1
        case (false, false): entry.counts.tn += 1
        case (false, true): entry.counts.fn += 1
        }
        joint[key] = entry
    }

    package func snapshot() -> (joint: [String: (labels: [String], counts: Counts)], features: [[Int]]) {
        lock.lock()
        defer { lock.unlock() }
        return (joint, featureCounts)
    }
}
