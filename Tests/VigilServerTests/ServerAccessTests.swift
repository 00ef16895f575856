import Foundation
import Testing
import VigilServer
import VigilTesting
#if canImport(Glibc)
import Glibc
#endif

/// Socket and file permissions, and /metrics labels bounded whatever the requests.
struct ServerAccessTests {
    private func mode(_ path: String) -> mode_t {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0o7777 }
        return st.st_mode & 0o777
    }

    @Test func socketIs0660AndLockAndLedger0600UnderUmask000() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let old = umask(0)
        let s: RunningServer
        do {
            defer { umask(old) }
            s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true))
        }
        #expect(mode(s.socketPath) == 0o660, "socket mode \(String(mode(s.socketPath), radix: 8))")
        #expect(mode(s.socketPath + ".lock") == 0o600, "lock mode \(String(mode(s.socketPath + ".lock"), radix: 8))")
        let ledger = pkg.dir.file("ledger.jsonl").path
        #expect(mode(ledger) == 0o600, "ledger mode \(String(mode(ledger), radix: 8))")
        #expect(try await s.unixClient().send("GET", "/v2/health/live").status == 200)
        try await s.stop()
    }

    @Test func socketModeIsConfigurable() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.socketMode = 0o600
        let s = try await RunningServer(options: o)
        #expect(mode(s.socketPath) == 0o600)
        try await s.stop()
        var bad = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        bad.socketMode = 0o4777
        #expect(throws: (any Error).self) { _ = try VigilServer(options: bad) }
    }

    @Test func metricsLabelsStayBoundedAndCarryNoRequestText() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        func series(_ text: String) -> Int {
            text.split(separator: "\n").filter { $0.hasPrefix("vigil_request_errors_total{") }.count
        }
        let paths = (0..<2000).map { "/zq\($0)/x\($0 % 7)" } + (0..<200).map { "/v2/models/zqmodel\($0)/infer" }
        #expect(paths.count == 2200)
        try await offPool {
            for p in paths {
                let r = try c.request(p.contains("infer") ? "POST" : "GET", p, body: p.contains("infer") ? Data("{}".utf8) : nil)
                guard r.status == 404 else { throw LoopbackHTTPClient.Failure(description: "\(p): \(r.status) \(r.text)") }
            }
        }
        let metrics = try await c.send("GET", "/metrics").text
        #expect(series(metrics) <= 4, "error series: \(metrics.split(separator: "\n").filter { $0.hasPrefix("vigil_request_errors_total{") })")
        #expect(!metrics.contains("zq"), "request text in /metrics")
        #expect(metrics.contains(#"route="unmatched""#))
        try await s.stop()
    }

    @Test func bearerTokenIsRequiredOnEveryListenerButTheHealthProbes() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let token = "s3cret-token-0123456789"
        let file = try pkg.dir.write("token", token + "\n")
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.authTokenFile = file.path
        chmod(file.path, 0o644)
        #expect(throws: (any Error).self) { _ = try VigilServer(options: o) }  // group/world-readable: refused
        chmod(file.path, 0o600)
        let s = try await RunningServer(options: o)
        for c in [s.tcpClient(), s.unixClient()] {
            let none = try await c.send("GET", "/v1/models")
            #expect(none.status == 401 && none.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(none.status) \(none.headers)")
            #expect(none.error.contains("authorization"))
            let wrong = try await offPool { try c.request("GET", "/metrics", headers: ["Authorization": "Bearer s3cret-token-0123456780"]) }
            #expect(wrong.status == 401, "\(wrong.status)")
            let right = try await offPool { try c.request("GET", "/v1/models", headers: ["Authorization": "Bearer \(token)"]) }
            #expect(right.status == 200, "\(right.status) \(right.text)")
            #expect(try await c.send("GET", "/v2/health/live").status == 200)  // probes are exempt
        }
        try await s.stop()
    }

    @Test func networkBindNeedsInsecureNetworkAndAToken() throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.socket = nil
        o.host = "0.0.0.0"
        #expect(throws: (any Error).self) { _ = try VigilServer(options: o) }
        o.insecureNetwork = true
        #expect(throws: (any Error).self) { _ = try VigilServer(options: o) }  // still no token
    }

    @Test func routeLabelsAreTemplatesOrUnmatched() {
        let cases: [(String, String)] = [
            ("/v2/models/toy/infer", "v2/models/{name}/infer"),
            ("/v2/models/anything/ready", "v2/models/{name}/ready"),
            ("/v1/models/x/score", "v1/models/{name}/score"),
            ("/v2/health/live", "v2/health/live"),
            ("/metrics", "metrics"),
            ("/v2/models/x/infer/extra", "unmatched"),
            ("/v9/anything", "unmatched"),
            ("/", "unmatched"),
        ]
        for (path, label) in cases { #expect(VigilServer.routeLabelForTests(path) == label, "\(path)") }
    }
}
