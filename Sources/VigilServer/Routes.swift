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
            // A 401 names its scheme (RFC 9110): the admin routes' refusals come through here.
            if status == 401 { headers[.wwwAuthenticate] = "Bearer realm=\"vigil-admin\"" }
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
package struct Routes: Sendable {
    let server: VigilServer

    /// Every route the server answers, as `(path template, methods)`: what the OpenAPI document
    /// must describe (OpenAPIContractTests).
    package static var table: [(path: String, methods: [String])] {
        routeTemplates.map { ("/" + $0.path.joined(separator: "/"), $0.allow.components(separatedBy: ", ")) }
    }

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
        (["v1", "admin", "models", "{name}", "promote"], "POST"),
        (["fhir", "{name}", "$score"], "POST"),
        (["cds-services"], "GET, HEAD"), (["cds-services", "{name}"], "POST"), (["cds-services", "{name}", "feedback"], "POST"),
        (["v1", "models", "{name}", "card"], "GET, HEAD"), (["openapi.json"], "GET, HEAD"),
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

        router.addRoutes(oipRoutes(), atPath: "/v2")
        router.addRoutes(nativeRoutes(), atPath: "/v1")
        router.addRoutes(adminRoutes(), atPath: "/")
        router.addRoutes(fhirRoutes(), atPath: "/")
        router.addRoutes(cdsRoutes(), atPath: "/")
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
}
