import ArgumentParser
import Foundation
import VigilEngine
import VigilServer

/// A closed-loop load generator for `vigil serve` on loopback or a Unix socket: C connections,
/// each sending the same request back to back (keep-alive) until N requests are done.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a running vigil serve on a Unix socket or loopback port; print latency percentiles and requests/s.")

    @Option(name: .long, help: "Unix socket of the server.")
    var socket: String?

    @Option(name: .long, help: "Loopback TCP port of the server.")
    var port: Int?

    @Option(name: .long, help: "Request path, e.g. /v1/models/sepsis/score.")
    var path: String

    @Option(name: .long, help: "File holding the JSON request body (POST).")
    var body: String

    @Option(name: .long, help: "Concurrent connections.")
    var concurrency = 1

    @Option(name: .long, help: "Requests in all (after warm-up).")
    var requests = 10_000

    @Option(name: .long, help: "Warm-up requests per connection (not measured).")
    var warmup = 50

    func run() throws {
        try runReportingErrors {
            let target: LoopbackHTTPClient.Target
            if let socket { target = .unix(socket) } else if let port { target = .tcp(port: port) } else {
                throw VigilError(.usage, "give --socket PATH or --port N")
            }
            guard let data = FileManager.default.contents(atPath: body) else { throw VigilError(.io, "\(body): cannot read the body file") }
            let c = max(1, concurrency)
            let path = self.path, warmup = self.warmup
            let state = LoadState(total: requests)
            let threads = (0..<c).map { _ in
                Thread {
                    let client = LoopbackHTTPClient(target)
                    var lat: [Double] = []
                    var errors = 0, statuses: [Int: Int] = [:]
                    for _ in 0..<warmup { _ = try? client.request("POST", path, body: data) }
                    state.arrive()
                    while state.take() {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        do {
                            let r = try client.request("POST", path, body: data)
                            if r.status != 200 { errors += 1; statuses[r.status, default: 0] += 1 }
                        } catch {
                            errors += 1
                            statuses[-1, default: 0] += 1
                        }
                        lat.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
                    }
                    state.finish(lat, errors, statuses)
                }
            }
            state.expect(c)
            for t in threads { t.start() }
            let (lat, errors, statuses, seconds) = state.wait()
            let sorted = lat.sorted()
            func pct(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            print("\(target) \(path) concurrency \(c): \(sorted.count) requests, \(errors) errors, "
                + String(format: "%.0f req/s, latency us p50 %.0f p90 %.0f p99 %.0f max %.0f",
                         Double(sorted.count) / seconds, pct(0.5), pct(0.9), pct(0.99), sorted.last ?? .nan))
            if !statuses.isEmpty { print("errors by status (-1 = connection): \(statuses.sorted { $0.key < $1.key })") }
        }
    }
}

/// Shared counters for the load threads.
final class LoadState: @unchecked Sendable {
    private let cond = NSCondition()
    private var remaining: Int
    private var waiting = 0, expected = 0, finished = 0
    private var start: UInt64 = 0
    private var lat: [Double] = []
    private var errors = 0
    private var statuses: [Int: Int] = [:]

    init(total: Int) { remaining = total }

    func expect(_ n: Int) { cond.lock(); expected = n; cond.unlock() }

    /// Blocks until every thread finished its warm-up, so the clock starts together.
    func arrive() {
        cond.lock()
        waiting += 1
        if waiting == expected { start = DispatchTime.now().uptimeNanoseconds; cond.broadcast() }
        while waiting < expected { cond.wait() }
        cond.unlock()
    }

    func take() -> Bool {
        cond.lock(); defer { cond.unlock() }
        guard remaining > 0 else { return false }
        remaining -= 1
        return true
    }

    func finish(_ l: [Double], _ e: Int, _ s: [Int: Int]) {
        cond.lock()
        lat += l; errors += e; finished += 1
        for (k, v) in s { statuses[k, default: 0] += v }
        cond.broadcast()
        cond.unlock()
    }

    func wait() -> ([Double], Int, [Int: Int], Double) {
        cond.lock()
        while finished < expected { cond.wait() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        defer { cond.unlock() }
        return (lat, errors, statuses, seconds)
    }
}
