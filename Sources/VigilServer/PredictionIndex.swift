internal import Foundation
package import VigilEngine

/// A scored row as the server returns it: the engine's record plus its prediction id and
/// audit sequence number.
package struct ScoredRow: Sendable {
    package var record: PredictionRecord
    package var predictionID: String
    /// The ledger entry's sequence number (nil when the server runs without a ledger).
    package var auditSeq: Int?
}

/// What the server remembers of each prediction, for outcomes (rebuilt from the ledger).
struct PredictionInfo: Sendable {
    let model: String
    /// The served version that made it (after a promotion, outcomes of earlier predictions
    /// still go to the version that made them).
    let served: ServedModel
    /// A shadow's prediction: the production prediction of the same request.
    var shadowOf: String? = nil
    let labels: [String]
    let decision: Bool?
    let risk: Double
    let threshold: Double?
    var hasOutcome: Bool
    /// The monitor's time bucket of the prediction (its outcome counts there).
    var bucket: Int = 0
    /// A production prediction: its shadow's prediction, once the shadow scored it.
    var shadowID: String? = nil
}

/// Predictions by id, across models; and the id counter when there is no ledger.
final class PredictionIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var byID: [String: PredictionInfo] = [:]
    private var counter = 0

    func insert(_ id: String, _ info: PredictionInfo) {
        lock.lock(); byID[id] = info; lock.unlock()
    }

    /// Sequence numbers for a server without a ledger.
    func nextSeqs(_ n: Int) -> Range<Int> {
        lock.lock(); defer { lock.unlock() }
        let first = counter + 1
        counter += n
        return first..<(first + n)
    }

    func lookup(_ id: String) -> PredictionInfo? {
        lock.lock(); defer { lock.unlock() }
        return byID[id]
    }

    /// Marks the outcome as taken; false if it already was (a concurrent request won).
    func claimOutcome(_ id: String) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard var info = byID[id], !info.hasOutcome else { return false }
        info.hasOutcome = true
        byID[id] = info
        return true
    }

    /// Links a production prediction to its shadow's.
    func linkShadow(production: String, shadow: String) {
        lock.lock(); defer { lock.unlock() }
        byID[production]?.shadowID = shadow
    }

    func releaseOutcome(_ id: String) {
        lock.lock(); defer { lock.unlock() }
        byID[id]?.hasOutcome = false
    }
}
