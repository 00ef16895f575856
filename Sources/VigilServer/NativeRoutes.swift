internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// Vigil's native routes, mounted at `/v1`: the served models, full prediction records
/// (`score`, the JSON Lines record of `vigil score` plus `prediction_id` and `audit_seq`),
/// observed outcomes, and the monitor.
extension Routes {
    func nativeRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("models") { _, _ in
            json("{\"models\":[\(server.models.values.sorted { $0.model.name < $1.model.name }.map { servedEntry($0) }.joined(separator: ","))],\"replica\":\(JSON.string(server.replicaID))}")
        }
        routes.post("models/:name/score") { req, ctx in
            let start = DispatchTime.now().uptimeNanoseconds
            let m = try model(ctx)
            let body = try await readBody(req)
            let value = try RequestParser.parseJSON(body)
            let batch = try m.parser.nativeRows(value, maxRows: server.options.maxRowsPerRequest)
            // ?explain=K or ?explain=all: each record carries its attribution (as vigil score
            // --explain), computed by the engine in the model's scoring batch.
            var mode: ExplainMode?
            if let text = req.uri.queryParameters.get("explain") {
                do { mode = try ExplainMode(parsing: text) } catch { throw ServerError.badRequest("query explain: \((error as? VigilError)?.message ?? "\(error)")") }
                guard case .success = m.model.explainer else {
                    throw ServerError(501, "query explain: model '\(m.model.name)' cannot be explained (\(m.model.explainer.failureMessage))")
                }
                // Integrated gradients cost a few hundred gradients an image: a few per request.
                if m.model.imageInput != nil { try ImageRequest(m.model).checkCount(batch.count, explain: true) }
            }
            // Images explain off the scoring thread, within a time limit (ImageExplanation).
            let imageExplain = mode != nil && m.model.imageInput != nil
            var rows = try await m.score(batch, explain: mode != nil && !imageExplain)
            if imageExplain {
                let timeout = server.options.imageExplainTimeoutMillis
                if let attributions = await ImageExplanation.run(m.model, batch, timeoutMillis: timeout) {
                    for i in rows.indices where i < attributions.count { rows[i].record.attribution = attributions[i] }
                } else {
                    for i in rows.indices { rows[i].record.warnings.append("attribution: integrated gradients took longer than \(timeout) ms (--image-explain-timeout-ms); left out") }
                }
            }
            let maxRows = server.options.maxRowsPerRequest
            m.feedShadow(rows) { try $0.nativeRows(value, maxRows: maxRows) }
            let encoder = mode == nil ? m.recordJSON : RecordJSON(model: m.model, explain: mode)
            let records = rows.map { encoder.text($0.record, extra: Self.serverFields($0)) }
            let isArray: Bool = { if case .array = value { return true } else { return false } }()
            let text = isArray ? "[\(records.joined(separator: ","))]" : records[0]
            server.metrics.request(route: "v1_score", model: m.model.name, seconds: elapsed(start))
            return json(text)
        }
        routes.post("models/:name/outcomes") { req, ctx in
            let m = try model(ctx)
            let body = try await readBody(req)
            return json(try server.recordOutcomes(m, try RequestParser.parseJSON(body)))
        }
        routes.get("models/:name/monitor") { _, ctx in json(server.monitorReport(try model(ctx))) }
        return routes
    }
}

extension Routes {
    /// One served model in `GET /v1/models`: name, version, model file SHA-256, the policy's
    /// version and SHA-256 (null without a policy file), `policy_bound` (whether the policy
    /// names the model it was fitted for; one that names another model never loads) and the
    /// package digest (null for a bare model file), and `signatures`: each signature record of
    /// the package as checked at start (null when no --trusted-keys was given: none was read).
    /// A production version's entry, with its shadow's (`"shadow": {...}`, or null).
    func servedEntry(_ m: ServedModel) -> String {
        var s = modelEntry(m.model, signatures: m.signatures)
        s.removeLast()
        return s + ",\"shadow\":" + (m.shadow.map { modelEntry($0.model, signatures: $0.signatures) } ?? "null") + "}"
    }

    func modelEntry(_ m: VigilModel, signatures: SignatureAdmission) -> String {
        var s = "{\"name\":\(JSON.string(m.name)),\"version\":\(JSON.string(m.version)),\"sha256\":\"\(m.sha256)\""
        s += ",\"policy_version\":\(JSON.string(m.policy.version))"
        s += ",\"policy_sha256\":" + (m.policy.sha256.isEmpty ? "null" : "\"\(m.policy.sha256)\"")
        s += ",\"policy_bound\":\(m.policy.modelBinding != nil)"
        s += ",\"package_digest\":" + (m.packageDigest.map { "\"\($0)\"" } ?? "null")
        s += ",\"signatures\":" + (signatures.checked ? "[\(signatures.checks.map { Self.signatureEntry($0, qualifying: $0.name == signatures.qualifying?.name) }.joined(separator: ","))]" : "null") + "}"
        return s
    }

    /// One signature record in `GET /v1/models`: its file, the file's SHA-256, signer, role,
    /// meaning, time and key id (null when the record did not parse), whether it is valid and
    /// why not (`reason`, null when valid); `qualifying` marks the one whose SHA-256 ledger
    /// entries carry.
    static func signatureEntry(_ c: SignatureCheck, qualifying: Bool) -> String {
        func q(_ s: String?) -> String { s.map(JSON.string) ?? "null" }
        let r = c.record
        var s = "{\"file\":\(JSON.string(c.name)),\"sha256\":\(q(c.fileSHA256))"
        s += ",\"signer\":\(q(r?.signer)),\"role\":\(q(r?.role)),\"meaning\":\(q(r?.meaning)),\"time\":\(q(r?.time)),\"key_id\":\(q(r?.keyID))"
        s += ",\"valid\":\(c.isValid),\"reason\":\(q(c.problem)),\"qualifying\":\(qualifying)}"
        return s
    }
}
