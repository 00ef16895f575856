internal import Foundation
internal import VigilEngine
internal import VigilJSON

/// Promotion without restart (`POST /v1/admin/models/{name}/promote`, docs/SERVER.md
/// "Shadow deployment and promotion").
///
/// The new version is loaded and admitted like a `--model` (tabular, the same name as the URL,
/// and in `--require-signed` mode a valid signature by a trusted key), the switch is written to
/// the ledger (`kind: deployment`) before the new version scores anything, and the URL's slot
/// is swapped under a lock: a request is scored wholly by the version it reached, never by a
/// mix. The old version scores what it already queued and stops; a request that reached it in
/// the instant of the swap is answered 503 (`Retry-After: 0`) and reaches the new version when
/// sent again. The new version's counters start empty (counters are per version); its shadow
/// stays, unless the shadow is what was promoted.
extension VigilServer {
    /// What a promotion request asks: a package path, or the current shadow; and who asks.
    struct PromotionRequest {
        var packagePath: String?
        var fromShadow = false
        var actor: String

        static let keys = "package, shadow, actor"

        /// Reads `{"package": PATH, "actor": NAME}` or `{"shadow": true, "actor": NAME}`.
        init(_ body: JSONValue) throws {
            guard case .object(let o) = body else {
                throw ServerError.badRequest("body: a promotion is an object {\"package\": PATH, \"actor\": NAME} or {\"shadow\": true, \"actor\": NAME}")
            }
            for key in o.keys where !["package", "shadow", "actor"].contains(key) {
                throw ServerError.badRequest("body.\(Untrusted.quote(key)): unknown key (\(Self.keys))")
            }
            switch o["package"] {
            case nil: break
            case .string(let p)? where !p.isEmpty && p.utf8.count <= 4096 && !Untrusted.containsControlCharacter(p): packagePath = p
            case let v?: throw ServerError.badRequest("body.package: value \(Untrusted.quote("\(v)")) must be a package path (1-4096 bytes, no control characters)")
            }
            switch o["shadow"] {
            case nil: break
            case .bool(let b)?: fromShadow = b
            case let v?: throw ServerError.badRequest("body.shadow: value \(Untrusted.quote("\(v)")) must be true or false")
            }
            guard (packagePath != nil) != fromShadow else {
                throw ServerError.badRequest("body: give exactly one of \"package\" (a path on the server) and \"shadow\": true (promote the running shadow)")
            }
            guard case .string(let a)? = o["actor"], !a.isEmpty, a.utf8.count <= 200, !Untrusted.containsControlCharacter(a) else {
                throw ServerError.badRequest("body.actor: value \(o["actor"].map { Untrusted.quote("\($0)") } ?? "(absent)") must name who promotes (1-200 bytes, no control characters); it goes into the ledger")
            }
            actor = a
        }
    }

    /// Promotes `request` into the slot `name`; answers the switch as JSON.
    func promote(name: String, _ request: PromotionRequest) throws -> String {
        promotionLock.lock()
        defer { promotionLock.unlock() }
        guard isReady else { throw ServerError(503, "the server is shutting down", retryAfter: 1) }
        guard let current = models[name] else {
            throw ServerError.notFound("model '\(name)': not served here (models: \(modelNames.joined(separator: ", ")))")
        }
        let next: VigilModel, signatures: SignatureAdmission
        var shadow = current.shadow
        var promoteNotes: [String] = []
        if request.fromShadow {
            guard let s = current.shadow else {
                throw ServerError(409, "model '\(name)': has no shadow to promote (start vigil serve with --shadow, or send \"package\")")
            }
            (next, signatures) = (s.model, s.signatures)
            shadow = nil
        } else {
            do {
                (next, signatures) = try Self.admit(path: request.packagePath!, flag: "package", trustedKeys: trustedKeys, required: options.requireSigned, notes: &promoteNotes)
            } catch let e as VigilError {
                // A package that does not load, or is refused, is the request's fault: 422.
                throw ServerError(422, "body.package: \(e.message)")
            }
            if let s = shadow, s.model.sha256 == next.sha256, s.model.policy.sha256 == next.policy.sha256 { shadow = nil }
        }
        guard next.name == name else {
            throw ServerError(422, "body: the package is model '\(next.name)', and the URL serves model '\(name)': a promotion replaces a version of the same model (serve another model beside it with --model)")
        }
        guard next.sha256 != current.model.sha256 || next.policy.sha256 != current.model.policy.sha256 else {
            throw ServerError(409, "model '\(name)': version \(next.version) (model SHA-256 \(next.sha256)) with this policy is what is served already")
        }
        guard next.makesDecisions == current.model.makesDecisions, next.ir.outputCount == current.model.ir.outputCount else {
            throw ServerError(422, "body: '\(name)' \(next.version) (\(next.ir.objective.summary)) does not answer the same question as the served \(current.model.version) (\(current.model.ir.objective.summary)); clients would break")
        }
        let served = ServedModel(model: next, metrics: metrics, ledger: ledger, index: index, options: options.batching, signatures: signatures, shadow: shadow, windows: options.monitorWindows)
        var seq: Int?
        if let ledger {
            do {
                seq = try ledger.append(count: 1) { _ in
                    [LedgerEntry.deploymentBody(action: "promote", slot: name, from: current.model, fromSignature: current.signatures.signatureSHA256, to: next, toSignature: signatures.signatureSHA256, actor: request.actor)]
                }.lowerBound
            } catch {
                throw ServerError(500, "audit ledger: \(error); nothing was promoted")
            }
        }
        served.start()
        slotLock.withLock { slots[name] = served }
        current.stop(retired: true)
        if request.fromShadow { current.shadow?.stop(retired: true) }
        metrics.promoted(model: name)
        func side(_ m: VigilModel, _ sig: String?) -> String {
            "{\"version\":\(JSON.string(m.version)),\"sha256\":\"\(m.sha256)\",\"policy_sha256\":" + (m.policy.sha256.isEmpty ? "null" : "\"\(m.policy.sha256)\"")
                + ",\"package_digest\":" + (m.packageDigest.map { "\"\($0)\"" } ?? "null") + ",\"signature_sha256\":" + (sig.map { "\"\($0)\"" } ?? "null") + "}"
        }
        return "{\"promoted\":\(JSON.string(name)),\"from\":\(side(current.model, current.signatures.signatureSHA256)),\"to\":\(side(next, signatures.signatureSHA256))"
            + ",\"shadow\":" + (shadow.map { JSON.string("\($0.model.name) \($0.model.version)") } ?? "null")
            + ",\"actor\":\(JSON.string(request.actor)),\"audit_seq\":\(seq.map(String.init) ?? "null"),\"warnings\":[\(promoteNotes.map(JSON.string).joined(separator: ","))]}"
    }
}
