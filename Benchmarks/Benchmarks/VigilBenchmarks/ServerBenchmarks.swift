// Request handling: the real `vigil serve` (a release build, started by each benchmark's setup
// and stopped by its teardown) answering one patient of the readmission test cohort over its
// Unix socket, one request at a time on one keep-alive connection (ServerProcess.swift).
//
// Unlike the single-row engine benchmarks (1,000 calls per iteration), every iteration here is
// ONE request: a round trip costs hundreds of microseconds, so the clock's overhead does not
// matter, and the percentiles are per-request latencies, comparable with `vigil load`'s c=1
// figures in docs/SERVER.md. Throughput is requests/s. The malloc count is the benchmark
// (client) process only, whose loop allocates nothing: the server's allocations are not seen.
//
// Every response must be 200: anything else stops the run with the status and body, so a broken
// server cannot pass for a fast one.

import Benchmark
import Foundation

private let serverRepositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // VigilBenchmarks/
    .deletingLastPathComponent()  // Benchmarks/Benchmarks/
    .deletingLastPathComponent()  // Benchmarks/
    .deletingLastPathComponent()  // repository

/// The running server and the connection of the benchmark being measured (set by its setup,
/// cleared by its teardown).
private final class ServerSession: @unchecked Sendable {
    struct Running {
        let server: ServerProcess
        let client: UnixHTTPClient
        let request: [UInt8]
        let path: String
    }

    private let lock = NSLock()
    private var running: Running?

    var current: Running? {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Throws (the benchmark's setup then fails with the message) when there is no binary or
    /// the server does not start; stops the run when the first request is not answered 200.
    func start(model: String, path: String, body: [UInt8], ledger: Bool) throws {
        let (binary, tried) = ServerProcess.findBinary(repository: serverRepositoryRoot)
        guard let binary else {
            throw ServerError("""
                server benchmarks: no vigil binary at \(tried.joined(separator: " or ")).
                Build it first, in the repository root (\(serverRepositoryRoot.path)):
                    swift build -c release --product vigil
                or point VIGIL_BIN at a release build.
                """)
        }
        let modelDirectory = serverRepositoryRoot.appendingPathComponent("models/\(model)").path
        do {
            let server = try ServerProcess(binary: binary, models: [modelDirectory], ledger: ledger)
            let client: UnixHTTPClient
            do { client = try UnixHTTPClient(socketPath: server.socketPath) } catch {
                server.stop()
                throw error
            }
            let request = UnixHTTPClient.request(method: "POST", path: path, body: body)
            let r = Running(server: server, client: client, request: request, path: path)
            lock.lock()
            running = r
            lock.unlock()
            // One request outside the measurement: a wrong body fails here, with the answer.
            check(r)
        } catch {
            throw ServerError("server benchmarks: cannot start `\(binary) serve --model \(modelDirectory)`: \(error)")
        }
    }

    func stop() {
        lock.lock()
        let r = running
        running = nil
        lock.unlock()
        guard let r else { return }
        let status = r.server.stop()
        if status != 0 {
            FileHandle.standardError.write(Data("server benchmarks: vigil serve exited with status \(status) at teardown\n".utf8))
        }
    }
}

/// Sends the prepared request once; stops the server, then the run (with the server's answer
/// and its standard error), unless it is answered 200.
@inline(__always)
private func check(_ r: ServerSession.Running) {
    let status: Int
    do { status = try r.client.send(r.request).status } catch {
        fail(r, "POST \(r.path): \(error)")
    }
    if status != 200 { fail(r, "POST \(r.path) answered \(status): \(r.client.lastBody)") }
}

private func fail(_ r: ServerSession.Running, _ message: String) -> Never {
    let errors = serverErrors(r.server)
    r.server.stop()
    fatalError("server benchmarks: \(message)\n\(errors)")
}

private func serverErrors(_ server: ServerProcess) -> String {
    let text = (try? String(contentsOfFile: server.directory + "/serve.err", encoding: .utf8)) ?? ""
    return text.isEmpty ? "(nothing on the server's standard error)" : "server's standard error:\n\(text)"
}

func registerServerBenchmarks() {
    let model = "readmission"
    let bodies = Lazy<PatientBodies> {
        do {
            return try PatientBodies(modelDirectory: serverRepositoryRoot.appendingPathComponent("models/\(model)"))
        } catch {
            fatalError("server benchmarks: cannot build the request bodies: \(error)")
        }
    }
    let variants: [(name: String, path: String, body: @Sendable (PatientBodies) -> [UInt8], ledger: Bool)] = [
        ("/v1 score", "/v1/models/\(model)/score", { $0.native }, false),
        ("/v2 infer", "/v2/models/\(model)/infer", { $0.oip }, false),
        // The features as one [1, F] tensor instead of one tensor per feature.
        ("/v2 infer matrix", "/v2/models/\(model)/infer", { $0.oipMatrix }, false),
        // /v1 score with the audit ledger: one write + fdatasync per request (group commit has
        // nothing to group with a single client), so this one measures the disk as well.
        ("/v1 score with ledger", "/v1/models/\(model)/score", { $0.native }, true),
    ]
    for v in variants {
        let session = ServerSession()
        Benchmark(
            "server \(model) single patient \(v.name)",
            configuration: .init(
                metrics: metrics,
                warmupIterations: 200,
                setup: {
                    let b = bodies.value
                    try session.start(model: model, path: v.path, body: v.body(b), ledger: v.ledger)
                },
                teardown: { session.stop() }
            )
        ) { benchmark in
            guard let r = session.current else { fatalError("server benchmarks: no server (setup did not run)") }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                check(r)
            }
        }
    }
}
