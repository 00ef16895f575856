import ArgumentParser
import Foundation
import VigilEngine
import VigilServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over HTTP/1.1 + JSON on a Unix socket and/or loopback TCP.",
        discussion: """
            Endpoints: the Open Inference Protocol (KServe v2) under /v2, full prediction records \
            at POST /v1/models/{name}/score, outcomes at POST /v1/models/{name}/outcomes, \
            monitoring at GET /v1/models/{name}/monitor, Prometheus at GET /metrics. \
            With --ledger every prediction and outcome is appended to a hash-chained audit \
            ledger before it is answered, and the counters are rebuilt from it at start. \
            SIGTERM or SIGINT drains in-flight requests and exits.
            """)

    @Option(name: .long, help: "Model package folder or bare model file (repeat for several models).")
    var model: [String] = []

    @Option(name: .long, help: "Unix domain socket path (a lock file PATH.lock guards it).")
    var socket: String?

    @Option(name: .long, help: "TCP port (0 picks a free one).")
    var port: Int?

    @Option(name: .long, help: "TCP address to bind (loopback by default).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Audit ledger file (created if absent).")
    var ledger: String?

    // Ledger integrity (issue 13).
    @Option(name: .long, help: "HMAC-SHA256 key file for the ledger's chain (32+ random bytes, mode 0600); a new ledger only.")
    var ledgerKey: String?
    @Option(name: .long, help: "Ed25519 private key file (vigil ledger keygen) signing ledger checkpoints.")
    var ledgerSigningKey: String?
    @Option(name: .long, help: "A signed checkpoint after every N ledger entries (and at start and stop).")
    var checkpointEvery = 1000

    @Option(name: .long, help: "Largest request body in bytes (larger: 413).")
    var maxBodyBytes = 4 << 20

    @Option(name: .long, help: "Rows one scoring call takes at most (micro-batching).")
    var maxBatchRows = 64

    @Option(name: .long, help: "Microseconds the scoring thread waits for more requests under load (0: never wait).")
    var batchWaitUs = 200

    @Option(name: .long, help: "Rows queued per model at most; beyond, 503 with Retry-After.")
    var queueLimit = 4096

    @Option(name: .long, help: "Alerts ignore a group with fewer than this in the rate's denominator (rows, positives or negatives); independent of the policy's min_group_size.")
    var alertMinGroupSize = 50
    @Option(name: .long, help: "Alerts fire when a test's p-value is below this (baseline drops, drift).")
    var alertAlpha = 0.0001
    @Option(name: .long, help: "Image models: ?explain= (integrated gradients) runs off the scoring thread; records leave the attribution out, with a warning, when it takes longer than this (ms).")
    var imageExplainTimeoutMs = 5000
    @Option(name: .long, help: "CDS Hooks: a positive card is 'critical' when the risk is at least this (0-1); without it positive cards are 'warning', negative ones 'info'.")
    var cdsCriticalRisk: Double?
    @Option(name: .long, help: "Seconds per monitor counter bucket (the windows' resolution).")
    var monitorBucketSeconds = 3600
    @Option(name: .long, help: "Windows the monitor reports beside the totals, comma-separated durations (s, m, h, d).")
    var monitorWindows = "24h,7d,30d"

    @Option(name: .long, help: "Unix socket permissions, octal, set after bind whatever the umask (the .lock file is always 0600).")
    var socketMode = "660"

    @Option(name: .long, help: "Group (name or id) the Unix socket is handed to after bind.")
    var socketGroup: String?

    @Option(name: .long, help: "Open connections per listener at most; beyond, new ones wait in the listen backlog.")
    var maxConnections = 256

    @Option(name: .long, help: "Seconds a connection may stay silent (idle keep-alive, stalled headers or body) before it is closed.")
    var idleTimeoutSeconds = 60

    @Option(name: .long, help: "File (mode 600) holding the bearer token every request but /v2/health/* must send; required off loopback.")
    var authTokenFile: String?

    @Flag(name: .long, help: "Allow a non-loopback --host without TLS (plain HTTP on the network; a token is still required).")
    var insecureNetwork = false

    @Option(name: .long, help: "TLS for the TCP listener: PEM certificate chain (with --tls-key).")
    var tlsCert: String?

    @Option(name: .long, help: "TLS for the TCP listener: PEM private key (mode 600).")
    var tlsKey: String?

    @Option(name: .long, help: "Mutual TLS: PEM CA whose certificates clients must present.")
    var tlsClientCa: String?

    @Option(name: .long, help: "Seconds a connection has to send a complete request after opening or after the previous response (slow clients are closed).")
    var requestReadTimeoutSeconds = 30

    @Option(name: .long, help: "This replica's name, in every ledger entry, GET /v1/models and vigil_replica_info in /metrics (default: the host name, in Kubernetes the pod's name); 1-63 of A-Z a-z 0-9 . _ - :")
    var replicaId: String?

    // Package signatures (issue 18).
    @Flag(name: .long, help: "Serve only packages with a valid signature (vigil sign) by a key in --trusted-keys; refuse to start otherwise.")
    var requireSigned = false
    @Option(name: .long, help: "Folder of trusted Ed25519 public keys (*.pub); signatures found are checked and shown in /v1/models.")
    var trustedKeys: String?

    @Option(name: .long, help: "A TCP port serving GET /metrics and the health probes only (for Prometheus when predictions go over the Unix socket).")
    var metricsPort: Int?
    @Option(name: .long, help: "Address of the metrics listener (loopback unless --insecure-network).")
    var metricsHost = "127.0.0.1"

    // Shadow deployment and promotion (issue 18).
    @Option(name: .long, help: "A shadow version, [NAME=]PKG: scores every request of production model NAME (the only one when one is served) off the response path; its entries and counters are marked shadow.")
    var shadow: [String] = []
    @Option(name: .long, help: "File (mode 600) holding the admin token POST /v1/admin/models/NAME/promote needs; without it promotion is off.")
    var adminTokenFile: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "warning"

    func run() async throws {
        var options = ServeOptions()
        options.modelPaths = model
        options.socket = socket
        options.port = port
        options.host = host
        options.ledger = ledger
        options.ledgerKeyFile = ledgerKey
        options.ledgerSigningKeyFile = ledgerSigningKey
        options.checkpointEvery = checkpointEvery
        options.maxBodyBytes = maxBodyBytes
        options.batching.maxBatchRows = max(1, maxBatchRows)
        options.batching.maxWaitMicros = max(0, batchWaitUs)
        options.batching.queueLimitRows = max(1, queueLimit)
        options.alertMinGroupSize = alertMinGroupSize
        guard alertAlpha > 0, alertAlpha < 0.5 else {
            FileHandle.standardError.write(Data("error: --alert-alpha: \(alertAlpha) must be in (0, 0.5)\n".utf8))
            throw ExitCode(2)
        }
        options.alertAlpha = alertAlpha
        guard (1...600_000).contains(imageExplainTimeoutMs) else {
            FileHandle.standardError.write(Data("error: --image-explain-timeout-ms: \(imageExplainTimeoutMs) must be in 1...600000\n".utf8))
            throw ExitCode(2)
        }
        options.imageExplainTimeoutMillis = imageExplainTimeoutMs
        if let c = cdsCriticalRisk {
            guard c > 0, c <= 1 else {
                FileHandle.standardError.write(Data("error: --cds-critical-risk: \(c) must be in (0, 1]\n".utf8))
                throw ExitCode(2)
            }
            options.cdsCriticalRisk = c
        }
        guard (1...MonitorWindows.maxSeconds).contains(monitorBucketSeconds) else {
            FileHandle.standardError.write(Data("error: --monitor-bucket-seconds: \(monitorBucketSeconds) must be in 1...\(MonitorWindows.maxSeconds)\n".utf8))
            throw ExitCode(2)
        }
        options.monitorWindows.bucketSeconds = monitorBucketSeconds
        do { options.monitorWindows.windows = try MonitorWindows.parse(monitorWindows) } catch let e as VigilError {
            FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
            throw ExitCode(2)
        }
        options.logLevel = logLevel
        guard let mode = UInt32(socketMode, radix: 8) else {
            FileHandle.standardError.write(Data("error: --socket-mode: '\(Untrusted.quote(socketMode))' is not an octal mode such as 660\n".utf8))
            throw ExitCode(2)
        }
        options.socketMode = mode
        options.socketGroup = socketGroup
        options.maxConnections = maxConnections
        options.idleTimeoutSeconds = idleTimeoutSeconds
        options.authTokenFile = authTokenFile
        options.insecureNetwork = insecureNetwork
        options.tlsCertFile = tlsCert
        options.tlsKeyFile = tlsKey
        options.tlsClientCAFile = tlsClientCa
        options.requestReadTimeoutSeconds = requestReadTimeoutSeconds
        options.replicaID = replicaId
        options.requireSigned = requireSigned
        options.trustedKeysDir = trustedKeys
        options.shadowPaths = shadow
        options.metricsPort = metricsPort
        options.metricsHost = metricsHost
        options.adminTokenFile = adminTokenFile
        if !ServeOptions.isLoopback(host), port != nil, insecureNetwork, tlsCert == nil {
            FileHandle.standardError.write(Data("warning: --host \(host) is not loopback and --insecure-network is given: tokens and data cross the network in plain HTTP\n".utf8))
        }
        let server: VigilServer
        do {
            server = try VigilServer(options: options)
        } catch let e as VigilError {
            FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
            throw ExitCode(e.kind == .usage ? 2 : 1)
        }
        for note in server.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        try await server.run(signals: true) { addresses in
            // One line on standard output once every listener is bound (scripts wait for it).
            FileHandle.standardOutput.write(Data("vigil serve: ready on \(addresses.joined(separator: " ")) replica \(server.replicaID) models \(server.modelNames.joined(separator: ","))\n".utf8))
        }
        FileHandle.standardError.write(Data("vigil serve: stopped\n".utf8))
    }
}
