internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// The Open Inference Protocol (KServe v2) routes, mounted at `/v2`: health, server and model
/// metadata, readiness, and `infer` (tensors in, risks, decisions, thresholds, prediction ids
/// and optionally attributions out).
extension Routes {
    func oipRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("health/live") { _, _ in json("{\"live\":true}") }
        routes.get("health/ready") { _, _ in json("{\"ready\":\(server.isReady)}", status: server.isReady ? .ok : .serviceUnavailable) }
        routes.get("") { _, _ in
            json("{\"name\":\"vigil\",\"version\":\(JSON.string(VigilVersion.current)),\"extensions\":[],\"models\":[\(server.modelNames.map(JSON.string).joined(separator: ","))]}")
        }
        routes.get("models/:name") { _, ctx in json(try metadata(try model(ctx))) }
        routes.get("models/:name/ready") { _, ctx in
            let m = try model(ctx)
            return json("{\"name\":\(JSON.string(m.model.name)),\"ready\":true}")
        }
        routes.post("models/:name/infer") { req, ctx in
            let start = DispatchTime.now().uptimeNanoseconds
            let m = try model(ctx)
            let body = try await readBody(req)
            let response = try await infer(m, body)
            server.metrics.request(route: "v2_infer", model: m.model.name, seconds: elapsed(start))
            return json(response)
        }
        return routes
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
        // OIP parameter values are strings, numbers or booleans: an absent hash is left out.
        var identity = "\"sha256\":\"\(model.sha256)\",\"policy_version\":\(JSON.string(model.policy.version)),"
        if !model.policy.sha256.isEmpty { identity += "\"policy_sha256\":\"\(model.policy.sha256)\"," }
        identity += "\"policy_bound\":\(model.policy.modelBinding != nil),"
        if let digest = model.packageDigest { identity += "\"package_digest\":\"\(digest)\"," }
        return "{\"name\":\(JSON.string(model.name)),\"versions\":[\(JSON.string(model.version))],\"platform\":\"vigil-\(model.format.rawValue)\","
            + "\"inputs\":[\(inputs.joined(separator: ","))],\"outputs\":[\(outputs.joined(separator: ","))],"
            + "\"parameters\":{\(identity)"
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
        let maxRows = server.options.maxRowsPerRequest
        m.feedShadow(rows) { try $0.inferRows(inputs, maxRows: maxRows) }
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
