internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import Hummingbird
internal import HummingbirdTLS
internal import NIOSSL
internal import HummingbirdCore
internal import Logging
internal import NIOCore
internal import ServiceLifecycle
internal import UnixSignals
#if canImport(Glibc)
internal import Glibc
#endif
internal import Dispatch
internal import CDispatch

/// What `vigil serve` is asked to do.
package struct ServeOptions: Sendable {
    package var modelPaths: [String] = []
    /// Unix domain socket path; guarded by `<path>.lock` (flock) so a second server cannot take it.
    package var socket: String?
    /// TCP port (0 = any free port, for tests); bound to `host`.
    package var port: Int?
    package var host = "127.0.0.1"
    package var ledger: String?
    /// fdatasync each ledger batch (tests switch it off for in-process servers only).
    package var ledgerSync = true
    // Ledger integrity (issue 13): HMAC chain key file, Ed25519 checkpoint signing key file,
    // and entries between checkpoints.
    package var ledgerKeyFile: String?
    package var ledgerSigningKeyFile: String?
    package var checkpointEvery = 1000
    package var maxBodyBytes = 4 << 20
    package var maxRowsPerRequest = 10_000
    /// Image models: `?explain=` (integrated gradients) runs off the scoring thread and is left
    /// out of the records, with a warning, when it takes longer than this.
    package var imageExplainTimeoutMillis = 5000
    package var batching = BatchingOptions()
    /// Alerts consider a group only with at least this many in the rate's denominator (rows for
    /// the selection rate, positives for TPR, negatives for FPR); independent of the policy's
    /// `min_group_size`, which governs threshold fitting.
    package var alertMinGroupSize = 50
    package var logLevel = "warning"
    /// Permissions of the Unix socket, set after bind whatever the umask (owner and group may
    /// connect; others may not). Its `.lock` file is always 0600.
    package var socketMode: UInt32 = 0o660
    /// Group the socket is handed to (chown) after bind, by name or numeric id; nil keeps the
    /// process's group.
    package var socketGroup: String?
    /// Open connections per listener at most; beyond, new ones wait in the listen backlog.
    package var maxConnections = 256
    /// Seconds a connection may stay open without reading or writing (keep-alive idle, and a
    /// client that stalls while sending headers or a body) before it is closed.
    package var idleTimeoutSeconds = 60
    /// File holding the bearer token every request but the health probes must send; required
    /// when TCP binds a non-loopback address.
    package var authTokenFile: String?
    /// Allows a non-loopback TCP bind without TLS; the CLI warns.
    package var insecureNetwork = false
    /// TLS for the TCP listener: a PEM certificate chain and its PEM private key; with
    /// `tlsClientCA`, clients must present a certificate signed by that CA (mTLS). The Unix
    /// socket stays plain HTTP (file permissions guard it).
    package var tlsCertFile: String?
    package var tlsKeyFile: String?
    package var tlsClientCAFile: String?
    /// Seconds a connection has to deliver a complete request (head and body) from its opening
    /// or the end of the previous response; a slower client (slowloris) is closed.
    package var requestReadTimeoutSeconds = 30
    /// This replica's name (`ReplicaID`): in every ledger entry, `/v1/models` and `/metrics`;
    /// nil takes the host name.
    package var replicaID: String?
    /// Package signatures (issue 18): `trustedKeysDir` holds the trusted Ed25519 public keys
    /// (`*.pub`); with `requireSigned` every package needs a valid signature by one of them.
    package var requireSigned = false
    package var trustedKeysDir: String?
    /// Shadow versions (`--shadow [NAME=]PKG`): each scores the requests of the production model
    /// NAME (the only one when a single model is served) off the response path.
    package var shadowPaths: [String] = []
    /// File holding the admin token that `POST /v1/admin/...` (promotion) must send; without
    /// it the admin endpoints are off (403).
    package var adminTokenFile: String?
    /// The monitor's time buckets and reported windows.
    package var monitorWindows = MonitorWindows()
    /// A TCP listener for `GET /metrics` (and the health probes) only, so that Prometheus can
    /// scrape a server that serves predictions on a Unix socket alone; loopback unless
    /// `insecureNetwork` (the counters name groups, never patients; it has no other route).
    package var metricsPort: Int?
    package var metricsHost = "127.0.0.1"
    /// Every monitor alert (baseline, gap, drift) fires only when its p-value is below this.
    package var alertAlpha = 0.0001
    /// CDS Hooks: a card is `critical` when the risk is at least this (and the decision positive);
    /// nil = positive decisions are `warning`, negative ones `info`.
    package var cdsCriticalRisk: Double?

    package init() {}

    /// Whether `host` is a loopback address.
    package static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The server: loaded models, the ledger, counters, and the HTTP listeners.
package final class VigilServer: @unchecked Sendable {
    package let options: ServeOptions
    /// The production version behind each model URL; a promotion replaces one.
    package var models: [String: ServedModel] { slotLock.withLock { slots } }
    let slotLock = NSLock()
    var slots: [String: ServedModel]
    /// One promotion at a time.
    let promotionLock = NSLock()
    /// The admin token (`--admin-token-file`), or nil: admin endpoints off.
    let adminToken: [UInt8]?
    package let metrics = ServerMetrics()
    package let ledger: AuditLedger?
    /// This replica's name (`--replica-id`, else the host name).
    package let replicaID: String
    /// The bearer token (`--auth-token-file`), or nil when none is required.
    let authToken: [UInt8]?
    /// TLS for the TCP listener (nil: plain HTTP).
    let tls: TLSConfiguration?
    /// The trusted signing keys (`--trusted-keys`), for admitting packages
    /// (`PackageSignatures.admit(model:trustedKeys:required: options.requireSigned)`).
    let trustedKeys: TrustedKeys?
    let index = PredictionIndex()
    /// Notes for the operator (model load warnings, ledger recovery).
    package private(set) var notes: [String] = []
    private var lockFD: Int32 = -1
    private let groupLock = NSLock()
    private var serviceGroup: ServiceGroup?
    private var shuttingDown = false

    package var modelNames: [String] { models.keys.sorted() }
    package var isReady: Bool { !shuttingDown }

    /// Loads the models and the ledger, and rebuilds the counters from the ledger.
    package init(options: ServeOptions) throws {
        self.options = options
        guard !options.modelPaths.isEmpty else { throw VigilError(.usage, "--model: at least one model package or file is needed") }
        guard options.socket != nil || options.port != nil else { throw VigilError(.usage, "give --socket PATH and/or --port N") }
        if let p = options.metricsPort {
            guard (0...65535).contains(p) else { throw VigilError(.usage, "--metrics-port: \(p) is not a port (0...65535)") }
            guard ServeOptions.isLoopback(options.metricsHost) || options.insecureNetwork else {
                throw VigilError(.usage, "--metrics-host \(Untrusted.quote(options.metricsHost)): not loopback; the metrics listener has no authentication, so a network bind needs --insecure-network (or scrape through a sidecar)")
            }
        }
        if let p = options.port, !(0...65535).contains(p) { throw VigilError(.usage, "--port: \(p) is not a port (0...65535)") }
        guard options.maxConnections >= 1 else { throw VigilError(.usage, "--max-connections: \(options.maxConnections) must be at least 1") }
        guard options.idleTimeoutSeconds >= 1 else { throw VigilError(.usage, "--idle-timeout-seconds: \(options.idleTimeoutSeconds) must be at least 1") }
        guard options.socketMode & ~0o777 == 0 else {
            throw VigilError(.usage, "--socket-mode: \(String(options.socketMode, radix: 8)) is not a permission mode (octal, at most 777)")
        }
        if let g = options.socketGroup { _ = try Self.groupID(g) }
        guard options.requestReadTimeoutSeconds >= 1 else {
            throw VigilError(.usage, "--request-read-timeout-seconds: \(options.requestReadTimeoutSeconds) must be at least 1")
        }
        let replicaID = try ReplicaID.resolve(options.replicaID)
        self.replicaID = replicaID
        tls = try ServerTLS.configuration(options)
        if options.port != nil, !ServeOptions.isLoopback(options.host) {
            guard options.authTokenFile != nil else {
                throw VigilError(.usage, "--host \(Untrusted.quote(options.host)): not loopback; a network bind needs --auth-token-file (and TLS: --tls-cert, --tls-key)")
            }
            guard tls != nil || options.insecureNetwork else {
                throw VigilError(.usage, "--host \(Untrusted.quote(options.host)): not loopback; a network bind needs TLS (--tls-cert, --tls-key), or --insecure-network to serve plain HTTP on the network")
            }
        }
        authToken = try options.authTokenFile.map { try BearerTokenMiddleware<BasicRequestContext>.readToken($0) }
        adminToken = try options.adminTokenFile.map { try BearerTokenMiddleware<BasicRequestContext>.readToken($0, flag: "--admin-token-file") }
        if let a = adminToken, let t = authToken, a == t {
            throw VigilError(.usage, "--admin-token-file: the admin token equals the --auth-token-file token; promotion needs its own secret")
        }
        if options.requireSigned, options.trustedKeysDir == nil {
            throw VigilError(.usage, "--require-signed needs --trusted-keys DIR (the public keys whose signatures count)")
        }
        let trustedKeys = try options.trustedKeysDir.map { try TrustedKeys(dir: $0) }
        self.trustedKeys = trustedKeys
        var notes: [String] = []
        if let socket = options.socket {
            lockFD = try Self.lockSocketPath(socket)
        }
        var ledgerKeys = AuditLedger.Keys()
        ledgerKeys.hmac = try options.ledgerKeyFile.map { try LedgerHMACKey(file: $0) }
        ledgerKeys.signing = try options.ledgerSigningKeyFile.map { try LedgerSigningKey(file: $0) }
        ledgerKeys.checkpointEvery = max(1, options.checkpointEvery)
        if options.ledger == nil, options.ledgerKeyFile != nil || options.ledgerSigningKeyFile != nil {
            throw VigilError(.usage, "--ledger-key and --ledger-signing-key need --ledger FILE")
        }
        let ledger = try options.ledger.map { try AuditLedger(path: $0, sync: options.ledgerSync, keys: ledgerKeys, replicaID: replicaID) }
        notes += ledger?.notes ?? []
        self.ledger = ledger
        var loaded: [String: (model: VigilModel, signatures: SignatureAdmission)] = [:]
        var order: [String] = []
        for path in options.modelPaths {
            let (m, signatures) = try Self.admit(path: path, flag: "--model", trustedKeys: trustedKeys, required: options.requireSigned, notes: &notes)
            guard loaded[m.name] == nil else {
                throw VigilError(.usage, "--model \(path): a model named '\(m.name)' is already served; names must be unique (they are the URL)")
            }
            loaded[m.name] = (m, signatures)
            order.append(m.name)
        }
        // Shadows: `NAME=PATH` names the production model; a bare path needs a single model.
        var shadows: [String: ServedModel] = [:]
        for spec in options.shadowPaths {
            var target = order.count == 1 ? order[0] : nil, path = spec
            if let eq = spec.firstIndex(of: "="), loaded[String(spec[..<eq])] != nil {
                target = String(spec[..<eq])
                path = String(spec[spec.index(after: eq)...])
            }
            guard let target, let production = loaded[target]?.model else {
                throw VigilError(.usage, "--shadow \(Untrusted.quote(spec)): \(order.count) models are served; name the one it shadows: --shadow NAME=PATH (NAME one of \(order.joined(separator: ", ")))")
            }
            guard shadows[target] == nil else { throw VigilError(.usage, "--shadow \(Untrusted.quote(spec)): model '\(target)' already has a shadow; one shadow per model") }
            let (s, signatures) = try Self.admit(path: path, flag: "--shadow", trustedKeys: trustedKeys, required: options.requireSigned, notes: &notes)
            guard s.sha256 != production.sha256 || s.policy.sha256 != production.policy.sha256 else {
                throw VigilError(.usage, "--shadow \(Untrusted.quote(path)): the same model and policy as production '\(target)' (model SHA-256 \(s.sha256)); a shadow is another version")
            }
            guard s.makesDecisions == production.makesDecisions, s.ir.outputCount == production.ir.outputCount else {
                throw VigilError(.usage, "--shadow \(Untrusted.quote(path)): '\(s.name)' (\(s.ir.objective.summary)) does not answer the same question as '\(target)' (\(production.ir.objective.summary)); a shadow is compared with production")
            }
            shadows[target] = ServedModel(model: s, metrics: metrics, ledger: ledger, index: index, options: options.batching, signatures: signatures, role: .shadow, windows: options.monitorWindows)
        }
        var models: [String: ServedModel] = [:]
        for (name, l) in loaded {
            models[name] = ServedModel(model: l.model, metrics: metrics, ledger: ledger, index: index, options: options.batching, signatures: l.signatures, shadow: shadows[name], windows: options.monitorWindows)
        }
        self.slots = models
        if let ledger {
            do { notes += try replay(ledger) } catch {
                ledger.close(checkpoint: false)
                throw error
            }
        }
        self.notes = notes
        metrics.replica(replicaID)
        for m in models.values {
            m.start()
            m.shadow?.start()
        }
    }

    deinit {
        if lockFD >= 0 { close(lockFD) }
        for m in slots.values {
            m.stop()
            m.shadow?.stop()
        }
    }

    /// Loads a package for `flag` (`--model`, `--shadow`, a promotion) and checks what every
    /// served package must pass: its signatures (`--require-signed`).
    static func admit(path: String, flag: String, trustedKeys: TrustedKeys?, required: Bool, notes: inout [String]) throws -> (VigilModel, SignatureAdmission) {
        let m = try VigilModel.load(path: path)
        notes += m.loadWarnings.map { "\(m.name): \($0)" }
        let signatures: SignatureAdmission
        do { signatures = try PackageSignatures.admit(model: m, trustedKeys: trustedKeys, required: required) } catch let e as VigilError {
            throw VigilError(e.kind, "\(flag) \(path): \(e.message)")
        }
        notes += signatures.warnings.map { "\(m.name): warning: \($0)" }
        return (m, signatures)
    }


    /// Rebuilds counters and the prediction index from the ledger: entries of a served model
    /// with the same SHA-256 count; others stay in the ledger only.
    /// Every field is read through `LedgerEntry` (checked); a malformed entry refuses the start.
    private func replay(_ ledger: AuditLedger) throws -> [String] {
        var counted = 0, skipped = 0
        // Entries count for the served version with the same role, name and SHA-256.
        var served: [String: ServedModel] = [:]
        for m in models.values {
            served[Self.identity(.production, m.model.name, m.model.sha256)] = m
            if let s = m.shadow { served[Self.identity(.shadow, s.model.name, s.model.sha256)] = s }
        }
        for (i, e) in ledger.entries.enumerated() {
            let f = LedgerEntry.Fields(e, place: "\(ledger.path): line \(i + 1)")
            let header = try LedgerEntry.Header(f)
            let kind = header.kind
            guard kind == .prediction || kind == .outcome else { continue }  // chain header, checkpoints, deployments
            let ref = try LedgerEntry.ModelRef(f)
            guard let m = served[Self.identity(ref.role, ref.model, ref.modelSHA256)] else { skipped += 1; continue }
            if kind == .prediction {
                guard let time = header.epochSeconds else {
                    throw f.fail("time", "is not a UTC time YYYY-MM-DDTHH:MM:SS.mmmZ (the monitor's windows need it)")
                }
                m.replay(prediction: try LedgerEntry.Prediction(f), time: time)
                counted += 1
            } else {
                let outcome = try LedgerEntry.Outcome(f)
                let id = outcome.ref.predictionID
                guard let info = index.lookup(id), info.served === m, index.claimOutcome(id) else { continue }
                applyOutcome(info, id: id, label: outcome.label)
                counted += 1
            }
        }
        ledger.releaseEntries()
        var notes: [String] = []
        if counted + skipped > 0 {
            notes.append("ledger \(ledger.path): \(counted) entries counted, \(skipped) for other models or model versions kept but not counted")
        }
        return notes
    }

    private static func identity(_ role: LedgerEntry.Role, _ name: String, _ sha256: String) -> String {
        "\(role.rawValue)\u{1}\(name)\u{1}\(sha256)"
    }

    /// Counts an outcome for the version that made the prediction.
    private func applyOutcome(_ info: PredictionInfo, id: String, label: Bool) {
        guard let decision = info.decision else { return }
        let m = info.served
        m.monitor.recordOutcome(labels: info.labels, decision: decision, label: label, bucket: info.bucket)
        let kind = decision ? (label ? "tp" : "fp") : (label ? "fn" : "tn")
        metrics.outcome(model: m.model.name, groups: m.monitor.metricLabels(info.labels), kind: kind, role: m.role)
    }

    // MARK: - Outcomes

    /// `POST /v1/models/{name}/outcomes`: `{"prediction_id": "...", "label": 0|1|true|false}` or
    /// an array of them. All items are checked before any is recorded; unknown ids are 404,
    /// an id that already has an outcome 409.
    func recordOutcomes(_ m: ServedModel, _ body: JSONValue) throws -> String {
        let items: [JSONValue]
        switch body {
        case .object: items = [body]
        case .array(let a) where !a.isEmpty:
            guard a.count <= options.maxRowsPerRequest else { throw ServerError(413, "body: \(a.count) outcomes, more than the limit of \(options.maxRowsPerRequest) per request") }
            items = a
        default: throw ServerError.badRequest("body: an outcome object {\"prediction_id\": ..., \"label\": 0 or 1} or a non-empty array of them")
        }
        guard m.model.makesDecisions else {
            throw ServerError.badRequest("model '\(m.model.name)': outcomes are recorded for binary models only (this one is \(m.model.ir.objective.summary))")
        }
        var parsed: [(id: String, label: Bool, info: PredictionInfo)] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            let place = items.count == 1 ? "outcome" : "outcome \(i)"
            guard case .object(let o) = item else { throw ServerError.badRequest("\(place): must be an object with prediction_id and label") }
            for key in o.keys where key != "prediction_id" && key != "label" {
                throw ServerError.badRequest("\(place), field '\(key)': unknown (prediction_id, label)")
            }
            guard case .string(let id)? = o["prediction_id"] else {
                throw ServerError.badRequest("\(place), field 'prediction_id': required, the string a score response returned")
            }
            let label: Bool
            switch o["label"] {
            case .bool(let b)?: label = b
            case .number(let d)? where d == 0 || d == 1: label = d == 1
            default: throw ServerError.badRequest("\(place), field 'label': value \(o["label"].map { "\($0)" } ?? "(absent)") must be 0, 1, true or false")
            }
            guard let info = index.lookup(id), info.model == m.model.name, info.shadowOf == nil else {
                throw ServerError.notFound("\(place), field 'prediction_id': '\(id)' is not a prediction of model '\(m.model.name)' on this server")
            }
            guard !info.hasOutcome, !seen.contains(id) else {
                throw ServerError(409, "\(place), field 'prediction_id': '\(id)' already has an outcome; outcomes are recorded once")
            }
            seen.insert(id)
            parsed.append((id, label, info))
        }
        var claimed: [String] = []
        for p in parsed {
            guard index.claimOutcome(p.id) else {
                for c in claimed { index.releaseOutcome(c) }
                throw ServerError(409, "outcome, field 'prediction_id': '\(p.id)' already has an outcome; outcomes are recorded once")
            }
            claimed.append(p.id)
        }
        // A prediction the shadow scored too: the outcome is recorded for the shadow as well
        // (after production's, in the same ledger write), so the two versions compare on it.
        var shadowOutcomes: [(id: String, label: Bool, info: PredictionInfo, of: String)] = []
        for p in parsed {
            if let sid = index.lookup(p.id)?.shadowID, let sinfo = index.lookup(sid), index.claimOutcome(sid) {
                shadowOutcomes.append((sid, p.label, sinfo, p.id))
                claimed.append(sid)
            }
        }
        var seqs: [Int] = []
        if let ledger {
            do {
                let range = try ledger.append(count: parsed.count + shadowOutcomes.count) { _ in
                    parsed.map { p in
                        LedgerEntry.outcomeBody(model: p.info.served.model, signatureSHA256: p.info.served.signatures.signatureSHA256, id: p.id, label: p.label, risk: p.info.risk, threshold: p.info.threshold, decision: p.info.decision, labels: p.info.labels)
                    } + shadowOutcomes.map { s in
                        LedgerEntry.outcomeBody(model: s.info.served.model, signatureSHA256: s.info.served.signatures.signatureSHA256, id: s.id, label: s.label, risk: s.info.risk, threshold: s.info.threshold, decision: s.info.decision, labels: s.info.labels, shadowOf: s.of)
                    }
                }
                seqs = Array(range)
            } catch {
                for c in claimed { index.releaseOutcome(c) }
                throw ServerError(500, "audit ledger: \(error); the outcomes were not recorded")
            }
        }
        for p in parsed { applyOutcome(p.info, id: p.id, label: p.label) }
        for s in shadowOutcomes { applyOutcome(s.info, id: s.id, label: s.label) }
        let entries = parsed.enumerated().map { i, p in
            "{\"prediction_id\":\(JSON.string(p.id)),\"label\":\(p.label),\"audit_seq\":\(seqs.isEmpty ? "null" : String(seqs[i]))}"
        }
        return "{\"recorded\":[\(entries.joined(separator: ","))]}"
    }

    // MARK: - Running

    /// Binds the listeners and serves until SIGTERM/SIGINT (when `signals`) or `shutdown()`;
    /// in-flight requests are drained before it returns. `onReady` gets the bound addresses
    /// (`unix:PATH`, `tcp:HOST:PORT`).
    package func run(signals: Bool = true, onReady: @escaping @Sendable ([String]) -> Void = { _ in }) async throws {
        var logger = Logger(label: "vigil")
        logger.logLevel = Logger.Level(rawValue: options.logLevel) ?? .warning
        let router = Routes(server: self).build()
        var addresses: [BindAddress] = []
        if let s = options.socket { addresses.append(.unixDomainSocket(path: s)) }
        if let p = options.port { addresses.append(.hostname(options.host, port: p)) }
        let bound = BoundList(count: addresses.count + (options.metricsPort == nil ? 0 : 1), onReady: onReady)
        var services: [any Service] = []
        let idle = TimeAmount.seconds(Int64(options.idleTimeoutSeconds))
        let bindLogger = logger
        let readTimeout = TimeAmount.seconds(Int64(options.requestReadTimeoutSeconds))
        for (i, address) in addresses.enumerated() {
            let http1 = HTTPServerBuilder.http1(configuration: .init(
                additionalChannelHandlers: [HTTPParserErrorHandler(), RequestReadDeadlineHandler(timeout: readTimeout)],
                idleTimeout: idle))
            let isUnix = options.socket != nil && i == 0
            let app = Application(
                router: router,
                server: try isUnix || tls == nil ? http1 : .tls(http1, tlsConfiguration: tls!),
                configuration: .init(
                    address: address, serverName: "vigil",
                    availableConnectionsDelegate: MaximumAvailableConnections(options.maxConnections, logger: logger)),
                onServerRunning: { channel in
                    let text: String
                    if let sock = self.options.socket, i == 0 {
                        do {
                            try Self.restrictSocket(sock, mode: self.options.socketMode, group: self.options.socketGroup)
                        } catch {
                            // Never serve on a socket whose access could not be narrowed.
                            bindLogger.error("\(error)")
                            unlink(sock)
                            Task { await self.shutdown() }
                        }
                        text = "unix:\(sock)"
                    } else {
                        text = "tcp:\(self.options.host):\(channel.localAddress?.port ?? -1)"
                    }
                    bound.add(text)
                },
                logger: logger)
            services.append(app)
        }
        if let metricsPort = options.metricsPort {
            let http1 = HTTPServerBuilder.http1(configuration: .init(
                additionalChannelHandlers: [HTTPParserErrorHandler(), RequestReadDeadlineHandler(timeout: readTimeout)], idleTimeout: idle))
            let host = options.metricsHost
            services.append(Application(
                router: Routes(server: self).metricsRouter(), server: http1,
                configuration: .init(address: .hostname(host, port: metricsPort), serverName: "vigil-metrics",
                                     availableConnectionsDelegate: MaximumAvailableConnections(16, logger: logger)),
                onServerRunning: { channel in bound.add("metrics:tcp:\(host):\(channel.localAddress?.port ?? -1)") },
                logger: logger))
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
            logger: logger))
        groupLock.withLock { serviceGroup = group }
        defer {
            shuttingDown = true
            for m in models.values {
                m.stop()
                m.shadow?.stop()
            }
            if let s = options.socket { unlink(s) }
            // Release the socket's lock and the ledger so that a new server may take them.
            ledger?.close()
            if lockFD >= 0 { close(lockFD) }
            lockFD = -1
        }
        try await group.run()
    }

    /// Starts a graceful shutdown (tests; `vigil serve` uses SIGTERM).
    package func shutdown() async {
        shuttingDown = true
        let g = groupLock.withLock { serviceGroup }
        await g?.triggerGracefulShutdown()
    }
}

/// Collects the bound addresses and calls `onReady` once all listeners run.
private final class BoundList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    private let count: Int
    private let onReady: @Sendable ([String]) -> Void

    init(count: Int, onReady: @escaping @Sendable ([String]) -> Void) {
        self.count = count
        self.onReady = onReady
    }

    func add(_ s: String) {
        lock.lock()
        list.append(s)
        let done = list.count == count ? list.sorted() : nil
        lock.unlock()
        if let done { onReady(done) }
    }
}

extension VigilServer {
    /// The `/metrics` route label of `path` (tests).
    package static func routeLabelForTests(_ path: String) -> String { Routes.routeLabel(path) }
}
