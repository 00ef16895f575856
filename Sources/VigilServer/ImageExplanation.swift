internal import Foundation
internal import VigilEngine

/// Integrated gradients for served images, off the model's scoring thread (a request asking
/// for them does not hold up the micro-batch of everyone else's) and within a time limit: the
/// first of the explanation and the deadline answers; an explanation that comes too late is
/// dropped (it runs to its end, bounded by the images per request and the integrator's gradient
/// limit, on a detached task).
enum ImageExplanation {
    final class Once: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<[Attribution?]?, Never>?
        init(_ c: CheckedContinuation<[Attribution?]?, Never>) { continuation = c }
        func resume(_ value: [Attribution?]?) {
            lock.lock()
            let c = continuation
            continuation = nil
            lock.unlock()
            c?.resume(returning: value)
        }
    }

    /// Each image's attribution, or nil when `timeoutMillis` passed first (or the engine refused).
    static func run(_ model: VigilModel, _ batch: RowBatch, timeoutMillis: Int) async -> [Attribution?]? {
        await withCheckedContinuation { c in
            let once = Once(c)
            Task.detached(priority: .utility) {
                let records = try? model.score(batch.images, threads: 1, explain: true)
                once.resume(records.map { $0.map(\.attribution) })
            }
            Task.detached {
                try? await Task.sleep(nanoseconds: UInt64(timeoutMillis) * 1_000_000)
                once.resume(nil)
            }
        }
    }
}
