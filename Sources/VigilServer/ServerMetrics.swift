internal import Foundation
internal import Prometheus
internal import VigilEngine

/// Prometheus metrics (swift-prometheus), exposed at `GET /metrics`. Every series is a counter
/// or a histogram, so replicas add up. Labels never carry patient identifiers: only the model
/// name, one label per manifest group field (`sex="Female",age_band="80+"`, values bounded by the
/// manifest: `ModelMonitor.metricLabels`), the decision, the outcome class, the route, and for
/// drift the feature and its reference bucket.
package final class ServerMetrics: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let lock = NSLock()
    private var counters: [String: Counter] = [:]
    private var histograms: [String: ValueHistogram] = [:]

    /// Request latency buckets in seconds: 50 µs to 1 s.
    static let latencyBuckets: [Double] = [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

    /// Risk buckets, the same for every model: swift-prometheus requires one bucket layout per
    /// metric name (it traps otherwise), and fixed buckets keep replicas and models summable.
    /// The manifest's own score reference buckets are used by the monitor endpoint.
    static let riskBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]

    package init() {}

    private func counter(_ name: String, _ labels: [(String, String)], help: String) -> Counter {
        let key = name + labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1}")
        lock.lock()
        defer { lock.unlock() }
        if let c = counters[key] { return c }
        let c = registry.makeCounter(name: name, labels: labels, help: help)
        counters[key] = c
        return c
    }

    private func histogram(_ name: String, _ labels: [(String, String)], buckets: [Double], help: String) -> ValueHistogram {
        let key = name + labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1}")
        lock.lock()
        defer { lock.unlock() }
        if let h = histograms[key] { return h }
        let h = registry.makeValueHistogram(name: name, labels: labels, buckets: buckets, help: help)
        histograms[key] = h
        return h
    }

    /// A shadow's series have their own names (`vigil_shadow_predictions_total`, ...): the same
    /// labels as production's, so that a query can put them side by side, and never summed into
    /// production's by a query that does not ask for them.
    static func name(_ base: String, _ role: LedgerEntry.Role) -> String {
        role == .shadow ? "vigil_shadow_" + base : "vigil_" + base
    }

    package func prediction(model: String, groups: [(String, String)], decision: Bool?, risk: Double, role: LedgerEntry.Role = .production) {
        let d = decision.map { $0 ? "positive" : "negative" } ?? "none"
        let who = role == .shadow ? "Shadow predictions (scored off the response path, never returned)" : "Predictions served"
        counter(Self.name("predictions_total", role), [("model", model)] + groups + [("decision", d)],
                help: "\(who), by model, group (one label per group field) and decision.").increment()
        if !risk.isNaN {
            histogram(Self.name("risk", role), [("model", model)] + groups, buckets: Self.riskBuckets,
                      help: "Predicted risk (binary models: the probability of the outcome).").record(risk)
        }
    }

    package func outcome(model: String, groups: [(String, String)], kind: String, role: LedgerEntry.Role = .production) {
        counter(Self.name("outcomes_total", role), [("model", model)] + groups + [("outcome", kind)],
                help: "Observed outcomes recorded, by confusion class (tp, fp, tn, fn).").increment()
    }

    /// The reference's share of each drift bucket, a constant gauge beside the drift counters
    /// (`vigil_drift_bucket_total{model,feature,bucket}`: each prediction adds one to its
    /// score's reference bucket and to each feature's, `bucket` the index or `missing`), so that
    /// PSI or a chi-square can be computed in PromQL from the counters summed over replicas.
    /// The drift counters of one model, made once (a prediction then costs one atomic add per
    /// feature, no lookup): per feature with a reference, one counter per bucket; the score's
    /// under `_score`. Also sets the reference gauges.
    package final class DriftCounters: @unchecked Sendable {
        private let features: [[Counter]?]
        private let score: [Counter]?

        init(features: [[Counter]?], score: [Counter]?) {
            self.features = features
            self.score = score
        }

        /// One prediction: its score bucket and each feature's bucket (-1: no reference).
        package func record(scoreBucket: Int, featureBuckets: [Int]) {
            if let score, scoreBucket >= 0, scoreBucket < score.count { score[scoreBucket].increment() }
            for (j, b) in featureBuckets.enumerated() where b >= 0 && j < features.count {
                if let c = features[j], b < c.count { c[b].increment() }
            }
        }
    }

    /// `bucketLabel(i, of: n)`: the index, or `missing` for the last of `n` (the missing bucket).
    static func bucketLabel(_ i: Int, of n: Int) -> String { i == n - 1 ? "missing" : String(i) }

    package func driftCounters(model: String, monitor: ModelMonitor, role: LedgerEntry.Role) -> DriftCounters {
        func make(_ feature: String, _ binning: ModelMonitor.Binning) -> [Counter] {
            let n = binning.bucketCount
            if role == .production, let ref = binning.reference {
                let total = ref.reduce(0, +)
                for (i, r) in ref.enumerated() where total > 0 {
                    reference(model: model, feature: feature, bucket: Self.bucketLabel(i, of: n), share: r / total)
                }
            }
            return (0..<n).map { i in
                counter(Self.name("drift_bucket_total", role), [("model", model), ("feature", feature), ("bucket", Self.bucketLabel(i, of: n))],
                        help: "Predictions per reference histogram bucket, by feature (the score is feature=\"_score\").")
            }
        }
        let names = monitor.model.schema.names
        let features = monitor.featureBinnings.enumerated().map { j, b in b.flatMap { $0.reference == nil ? nil : make(names[j], $0) } }
        let score = monitor.scoreBinning.reference == nil ? nil : make("_score", monitor.scoreBinning)
        return DriftCounters(features: features, score: score)
    }

    package func reference(model: String, feature: String, bucket: String, share: Double) {
        registry.makeGauge(name: "vigil_drift_reference_ratio", labels: [("model", model), ("feature", feature), ("bucket", bucket)],
                           help: "The manifest reference's share of each histogram bucket (constant).").set(to: share)
    }

    /// A shadow could not score a request production answered (its parser or engine refused it,
    /// or its queue was full): `reason` is `refused` or `queue_full`.
    package func shadowFailed(model: String, reason: String) {
        counter("vigil_shadow_failures_total", [("model", model), ("reason", reason)],
                help: "Requests a shadow model did not score, by reason (refused, queue_full).").increment()
    }

    /// A promotion swapped the version behind a model's URL.
    package func promoted(model: String) {
        counter("vigil_promotions_total", [("model", model)], help: "Versions promoted without restart.").increment()
    }

    package func request(route: String, model: String, seconds: Double) {
        histogram("vigil_request_duration_seconds", [("route", route), ("model", model)], buckets: Self.latencyBuckets,
                  help: "Time from the request's arrival to its response, in seconds.").record(seconds)
    }

    package func error(route: String, status: Int) {
        counter("vigil_request_errors_total", [("route", route), ("status", String(status))],
                help: "Requests answered with an error status.").increment()
    }

    package func batch(model: String, rows: Int, role: LedgerEntry.Role = .production) {
        histogram(Self.name("batch_rows", role), [("model", model)], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
                  help: "Rows per scoring call after micro-batching.").record(Double(rows))
    }

    package func rejected(model: String) {
        counter("vigil_rejected_total", [("model", model), ("reason", "queue_full")],
                help: "Requests refused with 503 because the model's queue was full.").increment()
    }

    /// `vigil_replica_info{replica="ID",version="V"} 1`: which replica this is (a constant, so
    /// that queries can join on it; Prometheus adds the scrape target's labels to every series).
    package func replica(_ id: String) {
        registry.makeGauge(name: "vigil_replica_info", labels: [("replica", id), ("version", VigilVersion.current)],
                           help: "This replica's name (vigil serve --replica-id, else the host name); always 1.").set(to: 1.0)
    }

    package func exposition() -> String { registry.emitToString() }
}
