internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore
internal import NIOHTTP1

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
            let described = Self.describe(error, request: request, maxBody: maxBody)
            var (status, message) = (described.0, described.1)
            let retry = described.2
            // The router answers a known path with another method as 404; HTTP says 405 + Allow.
            var allow: String?
            if status == 404, error is any HTTPResponseError, let t = Routes.template(request.uri.path) {
                status = 405
                allow = t.allow
                message = "\(request.method) \(Untrusted.quote(request.uri.path)): method not allowed on this endpoint (allowed: \(t.allow))"
            }
            metrics.error(route: Routes.routeLabel(request.uri.path), status: status)
            var headers: HTTPFields = [.contentType: "application/json"]
            if let retry { headers[.retryAfter] = String(retry) }
            if let allow { headers[.allow] = allow }
            // A body that failed to parse leaves the connection's framing unknown: close it.
            if Self.isFramingError(error) { headers[.connection] = "close" }
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
            case 404: return (404, "\(request.method) \(Untrusted.quote(request.uri.path)): no such endpoint (see GET /v2 and docs/SERVER.md)", nil)
            case 405: return (405, "\(request.method) \(request.uri.path): method not allowed on this endpoint", nil)
            case 413: return (413, "body: larger than the limit of \(maxBody) bytes", nil)
            default: return (code, (e as? HTTPError)?.body ?? "\(e.status)", nil)
            }
        case let e as HTTPParserError:
            return (400, "request body: malformed HTTP framing (\(e)); chunk sizes are hexadecimal and a body is as long as its Content-Length", nil)
        case is CancellationError, is ChannelError, is IOError:
            return (400, "request body: the connection ended before the body was complete (Content-Length or chunked framing not honoured)", nil)
        default: return (500, "internal error: \(error)", nil)
        }
    }

    /// Errors raised while reading the body's bytes, after which the connection is not reused.
    static func isFramingError(_ error: any Error) -> Bool {
        error is HTTPParserError || error is ChannelError || error is IOError || error is CancellationError
    }
}

/// The HTTP routes: Open Inference Protocol (KServe v2) under /v2, native records, outcomes
/// and monitoring under /v1, Prometheus at /metrics.
struct Routes: Sendable {
    let server: VigilServer

    /// The route templates a metric label may name; any other path is `unmatched`. A label never
    /// carries request text (a raw path, an unknown model name): each distinct value is a new
    /// Prometheus series, so labels from request text let a client grow /metrics without bound.
    static let routeTemplates: [(path: [String], allow: String)] = [
        (["v2"], "GET, HEAD"), (["v2", "health", "live"], "GET, HEAD"), (["v2", "health", "ready"], "GET, HEAD"),
        (["v2", "models", "{name}"], "GET, HEAD"), (["v2", "models", "{name}", "ready"], "GET, HEAD"),
        (["v2", "models", "{name}", "infer"], "POST"),
        (["v1", "models"], "GET, HEAD"), (["v1", "models", "{name}", "score"], "POST"),
        (["v1", "models", "{name}", "outcomes"], "POST"), (["v1", "models", "{name}", "monitor"], "GET, HEAD"),
        (["v1", "ledger", "head"], "GET, HEAD"), (["metrics"], "GET, HEAD"),
    ]

    /// The route template `path` matches, with the methods it answers.
    static func template(_ path: String) -> (path: [String], allow: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return routeTemplates.first { t in
            t.path.count == parts.count && zip(t.path, parts).allSatisfy { $0 == "{name}" || $0 == $1 }
        }
    }

    /// The label for `path`: its route template (`v2/models/{name}/infer`) or `unmatched`.
    static func routeLabel(_ path: String) -> String {
        template(path)?.path.joined(separator: "/") ?? "unmatched"
    }

    func build() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: JSONErrorMiddleware(metrics: server.metrics, maxBody: server.options.maxBodyBytes))
        if let token = server.authToken { router.add(middleware: BearerTokenMiddleware(token: token, metrics: server.metrics)) }

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
