internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// Answers every error as `{"error": "..."}` with its status: `ServerError` as given,
/// `VigilError.input` as 400, Hummingbird's errors (404 no route, 413 body too large) with
/// their status and a message naming the rule.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    let maxBody: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, message, retry) = Self.describe(error, request: request, maxBody: maxBody)
            metrics.error(route: Routes.routeLabel(request.uri.path), status: status)
            var headers: HTTPFields = [.contentType: "application/json"]
            if let retry { headers[.retryAfter] = String(retry) }
            return Response(
                status: .init(code: status), headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\(JSON.string(message))}\n")))
        }
    }

    static func describe(_ error: any Error, request: Request, maxBody: Int) -> (Int, String, Int?) {
        switch error {
        case let e as ServerError: return (e.status, e.message, e.retryAfter)
        case let e as VigilError: return (e.kind == .input ? 400 : 500, e.message, nil)
        case let e as any HTTPResponseError:
            let code = Int(e.status.code)
            switch code {
            case 404: return (404, "\(request.method) \(request.uri.path): no such endpoint (see GET /v2 and docs/SERVER.md)", nil)
            case 405: return (405, "\(request.method) \(request.uri.path): method not allowed on this endpoint", nil)
            case 413: return (413, "body: larger than the limit of \(maxBody) bytes", nil)
            default: return (code, (e as? HTTPError)?.body ?? "\(e.status)", nil)
            }
        default: return (500, "internal error: \(error)", nil)
        }
    }
}

/// The HTTP routes: Open Inference Protocol (KServe v2) under /v2, native records, outcomes
/// and monitoring under /v1, Prometheus at /metrics.
struct Routes: Sendable {
    let server: VigilServer

    static func routeLabel(_ path: String) -> String {
        let parts = path.split(separator: "/")
        if parts.count >= 4, parts[1] == "models" { return "\(parts[0])/models/{name}/\(parts[3...].joined(separator: "/"))" }
        if parts.count == 3, parts[1] == "models" { return "\(parts[0])/models/{name}" }
        return parts.prefix(3).joined(separator: "/")
    }

    func build() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware(metrics: server.metrics, maxBody: server.options.maxBodyBytes))

        // MARK: Open Inference Protocol
        router.get("/v2/health/live") { _, _ in json("{\"live\":true}") }
        router.get("/v2/health/ready") { _, _ in json("{\"ready\":\(server.isReady)}", status: server.isReady ? .ok : .serviceUnavailable) }
        router.get("/v2") { _, _ in
            json("{\"name\":\"vigil\",\"version\":\(JSON.string(VigilVersion.current)),\"extensions\":[],\"models\":[\(server.modelNames.map(JSON.string).joined(separator: ","))]}")
        }
        router.get("/v2/models/:name") { _, ctx in json(try metadata(try model(ctx))) }
        router.get("/v2/models/:name/ready") { _, ctx in
            let m = try model(ctx)
            return json("{\"name\":\(JSON.string(m.model.name)),\"ready\":true}")
        }
        router.post("/v2/models/:name/infer") { req, ctx in
            let start = DispatchTime.now().uptimeNanoseconds
            let m = try model(ctx)
            let body = try await readBody(req)
            let response = try await infer(m, body)
            server.metrics.request(route: "v2_infer", model: m.model.name, seconds: elapsed(start))
            return json(response)
        }

        // MARK: Native
        router.get("/v1/models") { _, _ in
            json("{\"models\":[\(server.models.values.sorted { $0.model.name < $1.model.name }.map { "{\"name\":\(JSON.string($0.model.name)),\"version\":\(JSON.string($0.model.version)),\"sha256\":\"\($0.model.sha256)\"}" }.joined(separator: ","))]}")
        }
        router.post("/v1/models/:name/score") { req, ctx in
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
            }
            let rows = try await m.score(batch, explain: mode != nil)
            let encoder = mode == nil ? m.recordJSON : RecordJSON(model: m.model, explain: mode)
            let records = rows.map { encoder.text($0.record, extra: Self.serverFields($0)) }
            let isArray: Bool = { if case .array = value { return true } else { return false } }()
            let text = isArray ? "[\(records.joined(separator: ","))]" : records[0]
            server.metrics.request(route: "v1_score", model: m.model.name, seconds: elapsed(start))
            return json(text)
        }
        router.post("/v1/models/:name/outcomes") { req, ctx in
            let m = try model(ctx)
            let body = try await readBody(req)
            return json(try server.recordOutcomes(m, try RequestParser.parseJSON(body)))
        }
        router.get("/v1/models/:name/monitor") { _, ctx in json(server.monitorReport(try model(ctx))) }
        router.get("/v1/ledger/head") { _, _ in
            guard let ledger = server.ledger else { throw ServerError(404, "this server runs without --ledger") }
            let head = ledger.head
            return json("{\"path\":\(JSON.string(ledger.path)),\"seq\":\(head.seq),\"hash\":\"\(head.hash)\"}")
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.exposition())))
        }
        return router
    }

    // MARK: - Helpers

    func model(_ ctx: BasicRequestContext) throws -> ServedModel {
        let name = ctx.parameters.get("name") ?? ""
        guard let m = server.models[name] else {
            throw ServerError.notFound("model '\(name)': not served here (models: \(server.modelNames.joined(separator: ", ")))")
        }
        return m
    }

    func readBody(_ req: Request) async throws -> Data {
        var req = req
        let buffer = try await req.collectBody(upTo: server.options.maxBodyBytes)
        return Data(buffer.readableBytesView)
    }

    func elapsed(_ start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    func json(_ s: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    /// The members a server record adds to `vigil score`'s JSON Lines record (`RecordJSON`):
    /// `prediction_id` (for outcomes) and `audit_seq` (the ledger entry, null without a ledger).
    static func serverFields(_ s: ScoredRow) -> String {
        ",\"prediction_id\":\(JSON.string(s.predictionID)),\"audit_seq\":\(s.auditSeq.map(String.init) ?? "null")"
    }

    /// `GET /v2/models/{name}`: inputs listed by manifest feature name (FP64, [-1]; FP32 is
    /// accepted too), the group fields as BYTES, and the single-tensor form as a parameter.
    func metadata(_ m: ServedModel) -> String {
        let model = m.model
        var inputs = model.schema.names.map { "{\"name\":\(JSON.string($0)),\"datatype\":\"FP64\",\"shape\":[-1]}" }
        inputs += model.fieldGroups.map { "{\"name\":\(JSON.string($0.field)),\"datatype\":\"BYTES\",\"shape\":[-1]}" }
        var outputs = [String]()
        switch model.ir.objective {
        case .binaryLogistic: outputs.append("{\"name\":\"risk\",\"datatype\":\"FP64\",\"shape\":[-1]}")
        case .multiclassSoftmax(let k): outputs.append("{\"name\":\"risk\",\"datatype\":\"FP64\",\"shape\":[-1,\(k)]}")
        case .regression: outputs.append("{\"name\":\"prediction\",\"datatype\":\"FP64\",\"shape\":[-1]}")
        }
        if model.makesDecisions {
            outputs.append("{\"name\":\"decision\",\"datatype\":\"BOOL\",\"shape\":[-1]}")
            outputs.append("{\"name\":\"threshold\",\"datatype\":\"FP64\",\"shape\":[-1]}")
        }
        outputs.append("{\"name\":\"prediction_id\",\"datatype\":\"BYTES\",\"shape\":[-1]}")
        let f = model.schema.count
        return "{\"name\":\(JSON.string(model.name)),\"versions\":[\(JSON.string(model.version))],\"platform\":\"vigil-\(model.format.rawValue)\","
            + "\"inputs\":[\(inputs.joined(separator: ","))],\"outputs\":[\(outputs.joined(separator: ","))],"
            + "\"parameters\":{\"sha256\":\"\(model.sha256)\",\"policy_version\":\(JSON.string(model.policy.version)),"
            + "\"matrix_input\":{\"datatype\":\"FP64\",\"shape\":[-1,\(f)],\"feature_order\":[\(model.schema.names.map(JSON.string).joined(separator: ","))]},"
            + "\"group_fields\":[\(model.fieldGroups.map { JSON.string($0.field) }.joined(separator: ","))],\"id_field\":\(JSON.string(model.idField))}}"
    }

    /// `POST /v2/models/{name}/infer`.
    func infer(_ m: ServedModel, _ body: Data) async throws -> String {
        guard case .object(let req) = try RequestParser.parseJSON(body) else {
            throw ServerError.badRequest("body: an inference request is a JSON object with 'inputs'")
        }
        for key in req.keys where !["id", "inputs", "outputs", "parameters"].contains(key) {
            throw ServerError.badRequest("body.\(key): unknown key (id, inputs, outputs, parameters)")
        }
        guard case .array(let inputs)? = req["inputs"] else { throw ServerError.badRequest("inputs: required, an array of tensors") }
        var wantAttribution = false
        if let p = req["parameters"] {
            guard case .object(let params) = p else { throw ServerError.badRequest("parameters: must be an object") }
            for (k, v) in params {
                switch (k, v) {
                case ("attribution", .bool(let b)), ("explain", .bool(let b)): wantAttribution = b
                case ("attribution", _), ("explain", _): throw ServerError.badRequest("parameters.\(k): must be true or false")
                default: break  // OIP lets clients send parameters a server does not know.
                }
            }
        }
        var requested: Set<String>?
        if case .array(let outs)? = req["outputs"] {
            requested = Set(try outs.enumerated().map { i, o in
                guard case .object(let oo) = o, case .string(let n)? = oo["name"] else { throw ServerError.badRequest("outputs[\(i)].name: must be a string") }
                return n
            })
        }
        let batch = try m.parser.inferRows(inputs, maxRows: server.options.maxRowsPerRequest)
        if wantAttribution, case .failure = m.model.explainer {
            throw ServerError(501, "parameters.attribution: model '\(m.model.name)' cannot be explained (\(m.model.explainer.failureMessage)); send the request without it")
        }
        let rows = try await m.score(batch, explain: wantAttribution)
        let n = rows.count, model = m.model
        var outputs: [(String, String)] = []
        switch model.ir.objective {
        case .binaryLogistic:
            outputs.append(("risk", "{\"name\":\"risk\",\"datatype\":\"FP64\",\"shape\":[\(n)],\"data\":[\(rows.map { JSON.number($0.record.outputs[0]) }.joined(separator: ","))]}"))
        case .multiclassSoftmax(let k):
            outputs.append(("risk", "{\"name\":\"risk\",\"datatype\":\"FP64\",\"shape\":[\(n),\(k)],\"data\":[\(rows.flatMap { $0.record.outputs.map(JSON.number) }.joined(separator: ","))]}"))
        case .regression:
            outputs.append(("prediction", "{\"name\":\"prediction\",\"datatype\":\"FP64\",\"shape\":[\(n)],\"data\":[\(rows.map { JSON.number($0.record.outputs[0]) }.joined(separator: ","))]}"))
        }
        if model.makesDecisions {
            outputs.append(("decision", "{\"name\":\"decision\",\"datatype\":\"BOOL\",\"shape\":[\(n)],\"data\":[\(rows.map { "\($0.record.decision ?? false)" }.joined(separator: ","))]}"))
            outputs.append(("threshold", "{\"name\":\"threshold\",\"datatype\":\"FP64\",\"shape\":[\(n)],\"data\":[\(rows.map { JSON.number($0.record.threshold ?? .nan) }.joined(separator: ","))]}"))
        }
        outputs.append(("prediction_id", "{\"name\":\"prediction_id\",\"datatype\":\"BYTES\",\"shape\":[\(n)],\"data\":[\(rows.map { JSON.string($0.predictionID) }.joined(separator: ","))]}"))
        if wantAttribution {
            // Each row's block in pred_contrib layout: per output, contributions then the base.
            let blocks = rows.map { $0.record.attribution?.block ?? [] }
            let w = blocks.first?.count ?? model.ir.outputCount * (model.schema.count + 1)
            outputs.append(("attribution", "{\"name\":\"attribution\",\"datatype\":\"FP64\",\"shape\":[\(n),\(w)],\"data\":[\(blocks.joined().map(JSON.number).joined(separator: ","))]}"))
        }
        if let requested {
            let known = Set(outputs.map(\.0))
            if let bad = requested.first(where: { !known.contains($0) }) {
                throw ServerError.badRequest("outputs: '\(bad)' is not an output of model '\(model.name)' (\(outputs.map(\.0).joined(separator: ", ")))")
            }
            outputs = outputs.filter { requested.contains($0.0) }
        }
        var id = ""
        if case .string(let s)? = req["id"] { id = ",\"id\":\(JSON.string(s))" }
        let warnings = rows.map { "[\($0.record.warnings.map(JSON.string).joined(separator: ","))]" }
        return "{\"model_name\":\(JSON.string(model.name)),\"model_version\":\(JSON.string(model.version))\(id),"
            + "\"parameters\":{\"group\":[\(rows.map { "\(JSON.string(m.monitor.groupLabel($0.record.groupLabels)))" }.joined(separator: ","))],\"warnings\":[\(warnings.joined(separator: ","))]},"
            + "\"outputs\":[\(outputs.map(\.1).joined(separator: ","))]}"
    }
}
