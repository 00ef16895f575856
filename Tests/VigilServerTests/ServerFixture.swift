import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// A hand-checkable model package: logistic risk = sigmoid(0.05 age + lactate - 5), so
/// age 60 and lactate 2 give exactly 0.5. Groups: `sex` from the request field `sex`
/// (F/M mapped, anything else Other), `age_band` from the feature `age` (<65, 65+). The policy
/// thresholds by sex: Female 0.5, Male 0.4; Other (fitted on 10 rows, below min_group_size 50)
/// and unseen groups get the fallback 0.45.
struct ToyPackage {
    let dir: TemporaryDirectory
    var path: String { dir.url.path }

    init() throws {
        dir = try TemporaryDirectory("vigil-server")
        let model = """
            {"format": "vigil-linear", "version": 1, "link": "logistic", "features": ["age", "lactate"],
             "coefficients": [0.05, 1.0], "intercept": -5.0}
            """
        let modelURL = try dir.write("model.linear.json", model)
        let sha = try SHA256Digest.hex(ofFileAt: modelURL)
        try dir.write("manifest.json", """
            {"schema": "vigil.manifest/1", "name": "toy", "version": "1.0.0", "task": "binary",
             "model": {"file": "model.linear.json", "format": "linear-json", "sha256": "\(sha)"},
             "id_field": "encounter_id",
             "features": [
               {"name": "age", "type": "numeric", "unit": "years", "range": [18, 100], "missing_allowed": false},
               {"name": "lactate", "type": "numeric", "unit": "mmol/L", "range": [0, 20], "missing_allowed": true}
             ],
             "groups": [
               {"name": "sex", "source": "field", "field": "sex", "map": {"F": "Female", "M": "Male"}, "other": "Other", "missing": "Unknown"},
               {"name": "age_band", "source": "feature", "field": "age", "bins": {"edges": [65], "labels": ["<65", "65+"]}}
             ],
             "reference": {"rows": 1000,
               "features": {"age": {"edges": [40, 65], "counts": [200, 500, 300], "missing": 0},
                            "lactate": {"edges": [1, 2, 4], "counts": [100, 400, 300, 200], "missing": 0}},
               "score": {"edges": [0.25, 0.5, 0.75], "counts": [250, 250, 250, 250], "missing": 0}}}
            """)
        try dir.write("policy.json", """
            {"schema": "vigil.policy/1", "version": "7", "constraint": {"kind": "tpr_parity"}, "objective": {"kind": "balanced_accuracy"},
             "rule": "test policy", "group_fields": ["sex"], "min_group_size": 50,
             "groups": {"Female": {"threshold": 0.5, "n": 400}, "Male": {"threshold": 0.4, "n": 500}, "Other": {"threshold": 0.3, "n": 10}},
             "fallback": {"threshold": 0.45}, "fitted_on": {"rows": 910}}
            """)
    }

    func remove() { dir.remove() }
}

/// An in-process server on a temporary Unix socket and a loopback port.
final class RunningServer: @unchecked Sendable {
    let server: VigilServer
    let socketPath: String
    private(set) var port = 0
    /// What the listeners bound (`unix:PATH`, `tcp:HOST:PORT`, `metrics:tcp:HOST:PORT`).
    private(set) var addresses: [String] = []
    private var task: Task<Void, any Error>?

    init(options: ServeOptions) async throws {
        server = try VigilServer(options: options)
        socketPath = options.socket ?? ""
        let (stream, cont) = AsyncStream<[String]>.makeStream()
        let s = server
        task = Task { try await s.run(signals: false) { cont.yield($0); cont.finish() } }
        for await a in stream { addresses = a }
        for a in addresses where a.hasPrefix("tcp:") { port = Int(a.split(separator: ":").last!)! }
    }

    /// Options for a server on a fresh socket in `dir` and a free loopback port.
    static func options(models: [String], dir: TemporaryDirectory, ledger: Bool = false) -> ServeOptions {
        var o = ServeOptions()
        o.modelPaths = models
        o.socket = dir.file("vigil.sock").path
        o.port = 0
        if ledger { o.ledger = dir.file("ledger.jsonl").path }
        o.ledgerSync = false
        return o
    }

    func unixClient() -> LoopbackHTTPClient { LoopbackHTTPClient(.unix(socketPath)) }

    /// Sends `count` POSTs at once while `model`'s scoring is held, releases it once all their
    /// rows are queued (or after 5 s: a fixed sleep raced on a loaded machine), and returns each
    /// request's response by index: the requests reach the scorer as one micro-batch.
    func heldRequests(model: String, count: Int, _ request: @escaping @Sendable (Int) -> (path: String, json: String)) async throws -> [Int: LoopbackHTTPClient.Response] {
        let served = try #require(server.models[model])
        served.hold(true)
        let path = socketPath
        return try await withThrowingTaskGroup(of: (Int, LoopbackHTTPClient.Response).self) { group in
            for i in 0..<count {
                group.addTask {
                    let (target, json) = request(i)
                    return (i, try await offPool { try LoopbackHTTPClient(.unix(path)).request("POST", target, json: json) })
                }
            }
            for _ in 0..<200 where served.queuedRows < count { try await Task.sleep(for: .milliseconds(25)) }
            served.hold(false)
            var out: [Int: LoopbackHTTPClient.Response] = [:]
            for try await (i, response) in group { out[i] = response }
            return out
        }
    }
    func tcpClient() -> LoopbackHTTPClient { LoopbackHTTPClient(.tcp(port: port)) }

    func stop() async throws {
        await server.shutdown()
        try await task?.value
    }
}

extension LoopbackHTTPClient.Response {
    var object: [String: Any] { (json() as? [String: Any]) ?? [:] }
    var array: [[String: Any]] { (json() as? [[String: Any]]) ?? [] }
    var error: String { object["error"] as? String ?? "(no error field in \(text))" }
}


extension LoopbackHTTPClient {
    func send(_ method: String, _ path: String, json: String) async throws -> Response {
        try await offPool { try self.request(method, path, json: json) }
    }

    func send(_ method: String, _ path: String, body: Data? = nil) async throws -> Response {
        try await offPool { try self.request(method, path, body: body) }
    }
}

/// One toy record as JSON text.
func toyRecord(id: String = "e1", age: Any = 60, lactate: Any = 2, sex: String? = "F") -> String {
    var o: [String: Any] = ["encounter_id": id, "age": age, "lactate": lactate]
    if let sex { o["sex"] = sex }
    return String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
}
