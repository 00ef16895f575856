import VigilCore

/// How a bootstrap replicate resamples a cohort: the one place `vigil audit`, `vigil validate`
/// and `vigil compare` draw their replicates, so that each replicate's multiplicities depend only
/// on the seed, the replicate number and the scheme (docs/FAIRNESS.md, "Bootstrap").
package enum Resampling: Sendable {
    /// Rows with replacement within each stratum (a view's groups), each stratum to its own size:
    /// a replicate never loses a group.
    case stratifiedRows
    /// Whole clusters (patients, stays) with replacement, as many as there are, from all of them
    /// (not stratified): every row of a drawn cluster comes along, once per draw. Rows that
    /// repeat a patient then count as one observation, not many.
    case clusters(Clusters)

    /// The clusters of a cohort: `ofRow[r]` is row r's cluster, numbered by first appearance.
    package struct Clusters: Sendable, Equatable {
        package let ofRow: [Int]
        /// The rows of each cluster, in input order.
        package let rows: [[Int]]
        /// The column or field that defined them, for reports.
        package let column: String

        /// Numbers the clusters of `keys` (one per row) by first appearance.
        package init(keys: [String], column: String) {
            var index: [String: Int] = [:]
            var ofRow = [Int]()
            ofRow.reserveCapacity(keys.count)
            var rows: [[Int]] = []
            for (r, k) in keys.enumerated() {
                if let c = index[k] {
                    ofRow.append(c)
                    rows[c].append(r)
                } else {
                    index[k] = rows.count
                    ofRow.append(rows.count)
                    rows.append([r])
                }
            }
            self.ofRow = ofRow
            self.rows = rows
            self.column = column
        }

        package var count: Int { rows.count }
        /// Rows of the largest cluster.
        package var largest: Int { rows.map(\.count).max() ?? 0 }
    }

    /// Fills `counts` (one entry per cohort row, zeroed here) with replicate `replicate`'s
    /// multiplicities. `strata` are the row indices of each stratum (ignored for clusters).
    ///
    /// The draw order is part of the contract (Tests/Fixtures/bootstrap/make_cluster_reference.py
    /// reproduces it): generator `Bootstrap.generator(seed:replicate:)`; stratified rows draw
    /// `index(below: stratum.count)` stratum by stratum, `stratum.count` times each; clusters
    /// draw `index(below: clusters.count)` `clusters.count` times.
    package static func draw(_ scheme: Resampling, replicate: Int, seed: UInt64, strata: [[Int]], counts: inout [Double]) {
        for i in counts.indices { counts[i] = 0 }
        var gen = Bootstrap.generator(seed: seed, replicate: replicate)
        switch scheme {
        case .stratifiedRows:
            for s in strata {
                for _ in 0..<s.count { counts[s[gen.index(below: s.count)]] += 1 }
            }
        case .clusters(let c):
            let n = c.count
            for _ in 0..<n {
                for r in c.rows[gen.index(below: n)] { counts[r] += 1 }
            }
        }
    }

    /// A sentence for reports.
    package var summary: String {
        switch self {
        case .stratifiedRows:
            return "percentile; rows resampled with replacement within each group of the view (stratified); overall = union"
        case .clusters(let c):
            return "percentile; clusters (\(c.column), \(c.count) of them, up to \(c.largest) rows each) resampled with replacement, every row of a drawn cluster taken once per draw; not stratified, so a small group's size varies between replicates"
        }
    }
}
