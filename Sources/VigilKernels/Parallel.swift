import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Batch partitioning: the one place Vigil spreads work over cores. BLAS itself stays at one
/// thread (`BLAS.setThreads(1)`), so partitions never oversubscribe the machine.
package enum Parallel {
    /// Active processor count (at least 1).
    package static var cores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Splits `0..<count` into contiguous chunks of at least `minChunk` and calls `body` for each
    /// concurrently (at most `threads` at a time).
    package static func forEachChunk(
        count: Int, minChunk: Int = 256, threads: Int = cores, _ body: (Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        let parts = max(1, min(threads, (count + minChunk - 1) / max(minChunk, 1)))
        if parts == 1 { body(0..<count); return }
        let size = (count + parts - 1) / parts
        withoutActuallyEscaping(body) { escapable in
            // concurrentPerform returns only after every iteration ran, so `body` does not
            // outlive this call; each chunk touches a disjoint range.
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * size
                let hi = min(count, lo + size)
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure where the caller guarantees the access is safe
/// (disjoint ranges of one buffer, a closure that does not outlive the call).
package struct UncheckedSendable<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
