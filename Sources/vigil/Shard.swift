import Foundation
import VigilEngine

/// One part of a cohort for `vigil score --shard I/N`: shard `index` of `count`.
///
/// The rows of the input (records that are not blank, in file order; images in the reader's
/// order) are cut into `count` contiguous parts on batch boundaries: the `B = ceil(rows / batch)`
/// batches the unsharded run would score are dealt out in order, `B / count` to each shard and
/// one more to each of the first `B % count`. Every batch a shard scores is therefore exactly a
/// batch of the unsharded run, the same rows in the same positions: a model whose kernels round
/// differently in differently composed batches (a logistic model's GEMV, a CNN's GEMM and
/// Winograd tiles) gives the same bits. Tree ensembles are exact whatever the batch.
///
/// Every shard needs the row count of the whole file (a first pass that splits records without
/// parsing values), and the outputs of shards 0, 1, ..., N-1 concatenated are the unsharded output
/// byte for byte: shard 0 alone writes the CSV header, and rows keep their numbers (the id of an
/// input without an id column).
struct Shard: Equatable, CustomStringConvertible {
    let index: Int
    let count: Int

    /// Most shards a cohort may be cut into (a Kubernetes Indexed Job allows 100000 completions).
    static let maxCount = 100_000
    /// The variable a Kubernetes Indexed Job sets in each pod to the pod's completion index.
    static let environmentVariable = "JOB_COMPLETION_INDEX"

    var description: String { "\(index)/\(count)" }
    static let whole = Shard(index: 0, count: 1)

    /// The rows of this shard among `total`, cut on multiples of `batch` rows.
    func rows(of total: Int, batch: Int) -> Range<Int> {
        let unit = max(1, batch)
        let batches = total / unit + (total % unit == 0 ? 0 : 1)
        let (q, r) = (batches / count, batches % count)
        func start(_ i: Int) -> Int {
            let b = i * q + min(i, r)  // <= batches: no overflow
            let (rows, overflow) = b.multipliedReportingOverflow(by: unit)
            return overflow ? total : min(rows, total)
        }
        return start(index)..<start(index + 1)
    }

    /// A shard count or index: decimal digits only (no sign, no spaces), at most 6 of them.
    static func number(_ text: String, flag: String, rule: String) throws -> Int {
        guard !text.isEmpty, text.utf8.count <= 6, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int(text) else {
            throw VigilError(.usage, "\(flag): '\(Untrusted.quote(text))' must be a whole number of at most 6 digits \(rule)")
        }
        return n
    }

    /// The shard the flags ask for (nil: none, score every row). `--shard I/N`, or
    /// `--shard-count N` with `--shard-index I` or `--shard-index-from-env` (the index from
    /// `JOB_COMPLETION_INDEX` in `environment`). Each refusal names the flag, the value and the rule.
    static func resolve(
        shard: String?, index: Int?, count: Int?, indexFromEnvironment: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Shard? {
        let range = "1...\(maxCount)"
        if let shard {
            guard index == nil, count == nil, !indexFromEnvironment else {
                throw VigilError(.usage, "--shard \(Untrusted.quote(shard)): give either --shard I/N or --shard-count N with --shard-index I (or --shard-index-from-env), not both")
            }
            let parts = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw VigilError(.usage, "--shard: '\(Untrusted.quote(shard))' must be I/N, the shard's index I (from 0) and the shard count N, e.g. 0/4")
            }
            let n = try number(String(parts[1]), flag: "--shard", rule: "for the count N in I/N (\(range))")
            let i = try number(String(parts[0]), flag: "--shard", rule: "for the index I in I/N (0...N-1)")
            return try make(index: i, count: n, flag: "--shard \(shard)")
        }
        guard let count else {
            if index != nil || indexFromEnvironment {
                throw VigilError(.usage, "\(index != nil ? "--shard-index" : "--shard-index-from-env") needs --shard-count N (the number of shards, \(range))")
            }
            return nil
        }
        guard (1...maxCount).contains(count) else {
            throw VigilError(.usage, "--shard-count: \(count) must be in \(range)")
        }
        switch (index, indexFromEnvironment) {
        case (nil, false):
            throw VigilError(.usage, "--shard-count \(count) needs --shard-index I (0...\(count - 1)) or --shard-index-from-env")
        case (_?, true):
            throw VigilError(.usage, "--shard-index and --shard-index-from-env: give one of them, not both")
        case (let i?, false):
            guard (0..<count).contains(i) else {
                throw VigilError(.usage, "--shard-index: \(i) must be in 0...\(count - 1) (less than --shard-count \(count))")
            }
            return Shard(index: i, count: count)
        case (nil, true):
            guard let text = environment[environmentVariable] else {
                throw VigilError(.usage, "--shard-index-from-env: the environment variable \(environmentVariable) is not set (a Kubernetes Indexed Job sets it in each pod)")
            }
            let i = try number(text, flag: "--shard-index-from-env: \(environmentVariable)", rule: "(0...\(count - 1))")
            return try make(index: i, count: count, flag: "--shard-index-from-env: \(environmentVariable)=\(text) with --shard-count \(count)")
        }
    }

    private static func make(index: Int, count: Int, flag: String) throws -> Shard {
        guard (1...maxCount).contains(count) else {
            throw VigilError(.usage, "\(flag): the shard count \(count) must be in 1...\(maxCount)")
        }
        guard index < count else {
            throw VigilError(.usage, "\(flag): the shard index \(index) must be less than the shard count \(count) (0...\(count - 1))")
        }
        return Shard(index: index, count: count)
    }
}
