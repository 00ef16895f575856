internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore
internal import HTTPTypes

/// The Open Inference Protocol (KServe v2) routes, mounted at `/v2`: health, server and model
/// metadata, readiness, and `infer` (tensors in, risks, decisions, thresholds, prediction ids
/// and optionally attributions out).
extension Routes {
    func oipRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("health/live") { _, _ in json("{\"live\":true}") }
        routes.get("health/ready") { _, _ in json("{\"ready\":\(server.isReady)}", status: server.isReady ? .ok : .serviceUnavailable) }
        routes.get("") { _, _ in
            json("{\"name\":\"vigil\",\"version\":\(JSON.string(VigilVersion.current)),\"extensions\":[\"binary_tensor_data\"],\"models\":[\(server.modelNames.map(JSON.string).joined(separator: ","))]}")
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
            let headerLength = HTTPField.Name(BinaryTensors.headerName).flatMap { req.headers[$0] }
            let (response, jsonLength) = try await infer(m, body, headerLength: headerLength)
            server.metrics.request(route: "v2_infer", model: m.model.name, seconds: elapsed(start))
            guard let jsonLength else { return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: response))) }
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[HTTPField.Name(BinaryTensors.headerName)!] = String(jsonLength)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: response)))
        }
        return routes
    }

    /// `GET /v2/models/{name}`: inputs listed by manifest feature name (FP64, [-1]; FP32 is
    /// accepted too), the group fields as BYTES, and the single-tensor form as a parameter.
    func metadata(_ m: ServedModel) -> String {
        let model = m.model
        var inputs = model.schema.names.map { "{\"name\":\(JSON.string($0)),\"datatype\":\"FP64\",\"shape\":[-1]}" }
        if let spec = model.imageInput {
            // The preprocessed tensor, as Triton and KServe take the ONNX input (PNG/JPEG files
            // as a BYTES tensor 'image' [N] are accepted too: parameters.image_files).
            inputs = ["{\"name\":\"image\",\"datatype\":\"FP32\",\"shape\":[-1,\(spec.channels),\(spec.height),\(spec.width)]}"]
        }
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
            + (model.imageInput != nil
                ? "\"image_files\":{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[-1],\"formats\":\"PNG, JPEG\"},"
                : "\"matrix_input\":{\"datatype\":\"FP64\",\"shape\":[-1,\(f)],\"feature_order\":[\(model.schema.names.map(JSON.string).joined(separator: ","))]},")
            + "\"group_fields\":[\(model.fieldGroups.map { JSON.string($0.field) }.joined(separator: ","))],\"id_field\":\(JSON.string(model.idField))}}"
    }

    /// `POST /v2/models/{name}/infer`: the response's bytes, and the length of its JSON part when
    /// binary outputs follow it (`BinaryTensors`).
    func infer(_ m: ServedModel, _ body: Data, headerLength: String? = nil) async throws -> (Data, Int?) {
        var jsonPart = body, binary: Data?
        if let headerLength { (jsonPart, binary) = try BinaryTensors.split(body, headerLength: headerLength) }
        guard case .object(let req) = try RequestParser.parseJSON(jsonPart) else {
            throw ServerError.badRequest("body: an inference request is a JSON object with 'inputs'")
        }
        for key in req.keys where !["id", "inputs", "outputs", "parameters"].contains(key) {
            throw ServerError.badRequest("body.\(key): unknown key (id, inputs, outputs, parameters)")
        }
        guard case .array(var inputs)? = req["inputs"] else { throw ServerError.badRequest("inputs: required, an array of tensors") }
        // An image model reads its tensors itself (BYTES image files are not text).
        let rawInputs = inputs, rawBinary = binary ?? Data()
        if m.model.imageInput == nil { inputs = try BinaryTensors.inline(inputs, binary: rawBinary) }
        var wantAttribution = false
        var allBinary = false
        if let id = req["id"] { guard case .string = id else { throw ServerError.badRequest("id: must be a string (the request id, echoed in the response)") } }
        if let p = req["parameters"] {
            guard case .object(let params) = p else { throw ServerError.badRequest("parameters: must be an object") }
            if let a = params["attribution"], let e = params["explain"], a != e {
                throw ServerError.badRequest("parameters: 'attribution' and 'explain' disagree; give one of them (they mean the same)")
            }
            for (k, v) in params {
                switch (k, v) {
                case ("attribution", .bool(let b)), ("explain", .bool(let b)): wantAttribution = b
                case ("attribution", _), ("explain", _): throw ServerError.badRequest("parameters.\(k): must be true or false")
                case ("binary_data_output", .bool(let b)): allBinary = b
                case ("binary_data_output", _): throw ServerError.badRequest("parameters.binary_data_output: must be true or false")
                default: break  // OIP lets clients send parameters a server does not know.
                }
            }
        }
        var requested: Set<String>?
        var binaryOutputs = Set<String>()
        if let o = req["outputs"], o != .null {
            guard case .array = o else { throw ServerError.badRequest("outputs: must be an array of {name, parameters?}") }
        }
        if case .array(let outs)? = req["outputs"] {
            requested = Set(try outs.enumerated().map { i, o in
                guard case .object(let oo) = o, case .string(let n)? = oo["name"] else { throw ServerError.badRequest("outputs[\(i)].name: must be a string") }
                for key in oo.keys where key != "name" && key != "parameters" {
                    throw ServerError.badRequest("outputs[\(i)].\(Untrusted.quote(key)): unknown key (name, parameters)")
                }
                if let p = oo["parameters"], p != .null { guard case .object = p else { throw ServerError.badRequest("outputs[\(i)].parameters: must be an object") } }
                if case .object(let p)? = oo["parameters"] {
                    switch p["binary_data"] {
                    case nil: break
                    case .bool(let b)?: if b { binaryOutputs.insert(n) }
                    default: throw ServerError.badRequest("outputs[\(i)].parameters.binary_data: must be true or false")
                    }
                }
                return n
            })
        }
        let isImage = m.model.imageInput != nil
        let batch = isImage
            ? try ImageRequest(m.model).infer(rawInputs, binary: rawBinary, explain: wantAttribution)
            : try m.parser.inferRows(inputs, maxRows: server.options.maxRowsPerRequest)
        if wantAttribution, case .failure = m.model.explainer {
            throw ServerError(501, "parameters.attribution: model '\(m.model.name)' cannot be explained (\(m.model.explainer.failureMessage)); send the request without it")
        }
        let rows = try await m.score(batch, explain: wantAttribution)
        let maxRows = server.options.maxRowsPerRequest
        let inlined = inputs
        m.feedShadow(rows) { p in
            p.model.imageInput != nil ? try ImageRequest(p.model).infer(rawInputs, binary: rawBinary, explain: false) : try p.inferRows(inlined, maxRows: maxRows)
        }
        let n = rows.count, model = m.model
        // Each output as (name, datatype, shape, values): JSON data, or binary after the JSON.
        var outputs: [(name: String, datatype: String, shape: [Int], values: BinaryTensors.Values)] = []
        switch model.ir.objective {
        case .binaryLogistic:
            outputs.append(("risk", "FP64", [n], .fp64(rows.map { $0.record.outputs[0] })))
        case .multiclassSoftmax(let k):
            outputs.append(("risk", "FP64", [n, k], .fp64(rows.flatMap(\.record.outputs))))
        case .regression:
            outputs.append(("prediction", "FP64", [n], .fp64(rows.map { $0.record.outputs[0] })))
        }
        if model.makesDecisions {
            outputs.append(("decision", "BOOL", [n], .bool(rows.map { $0.record.decision ?? false })))
            outputs.append(("threshold", "FP64", [n], .fp64(rows.map { $0.record.threshold ?? .nan })))
        }
        outputs.append(("prediction_id", "BYTES", [n], .bytes(rows.map(\.predictionID))))
        if wantAttribution {
            // Each row's block in pred_contrib layout: per output, contributions then the base.
            let blocks = rows.map { $0.record.attribution?.block ?? [] }
            let w = blocks.first?.count ?? model.ir.outputCount * (model.schema.count + 1)
            outputs.append(("attribution", "FP64", [n, w], .fp64(Array(blocks.joined()))))
        }
        if let requested {
            let known = Set(outputs.map(\.name))
            if let bad = requested.first(where: { !known.contains($0) }) {
                throw ServerError.badRequest("outputs: '\(bad)' is not an output of model '\(model.name)' (\(outputs.map(\.name).joined(separator: ", ")))")
            }
            outputs = outputs.filter { requested.contains($0.name) }
        }
        var binaryTail = Data()
        var anyBinary = false
        let tensors = outputs.map { o -> String in
            var t = "{\"name\":\(JSON.string(o.name)),\"datatype\":\"\(o.datatype)\",\"shape\":[\(o.shape.map(String.init).joined(separator: ","))]"
            if allBinary || binaryOutputs.contains(o.name) {
                let bytes = BinaryTensors.encode(o.values)
                binaryTail.append(bytes)
                anyBinary = true
                return t + ",\"parameters\":{\"binary_data_size\":\(bytes.count)}}"
            }
            t += ",\"data\":[\(o.values.json)]}"
            return t
        }
        var id = ""
        if case .string(let s)? = req["id"] { id = ",\"id\":\(JSON.string(s))" }
        let warnings = rows.map { "[\($0.record.warnings.map(JSON.string).joined(separator: ","))]" }
        let text = "{\"model_name\":\(JSON.string(model.name)),\"model_version\":\(JSON.string(model.version))\(id),"
            + "\"parameters\":{\"group\":[\(rows.map { "\(JSON.string(m.monitor.groupLabel($0.record.groupLabels)))" }.joined(separator: ","))],\"warnings\":[\(warnings.joined(separator: ","))]},"
            + "\"outputs\":[\(tensors.joined(separator: ","))]}"
        var data = Data(text.utf8)
        guard anyBinary else { return (data, nil) }
        let jsonLength = data.count
        data.append(binaryTail)
        return (data, jsonLength)
    }
}
