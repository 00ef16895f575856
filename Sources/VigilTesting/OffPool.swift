public import Foundation

/// Runs blocking or long work on a thread of its own and awaits its result.
///
/// Swift's cooperative pool has one thread per core: two on the CI machine. Work that blocks a
/// pool thread (a socket client waiting for an in-process server) or spreads over the cores from
/// it (`Parallel.forEachChunk`'s `concurrentPerform` fans out onto the pool's threads when called
/// from one) starves every other test's async work, in-process servers included; under load that
/// stalled the server suites past their clients' 30 s timeouts. Assertions stay on the test's
/// task: return what to check.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}
