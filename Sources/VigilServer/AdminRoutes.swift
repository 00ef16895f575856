internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// The operator's routes, mounted at the root: the audit ledger's head, the Prometheus
/// exposition, and promotion (`POST /v1/admin/models/{name}/promote`, authenticated by the
/// admin token of `--admin-token-file`, never by the client token; off without one).
extension Routes {
    func adminRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.post("v1/admin/models/:name/promote") { req, ctx in
            try checkAdmin(req)
            let body = try await readBody(req)
            let request = try VigilServer.PromotionRequest(try RequestParser.parseJSON(body))
            return json(try server.promote(name: ctx.parameters.get("name") ?? "", request))
        }
        routes.get("v1/ledger/head") { _, _ in
            guard let ledger = server.ledger else { throw ServerError(404, "this server runs without --ledger") }
            let head = ledger.head
            return json("{\"path\":\(JSON.string(ledger.path)),\"seq\":\(head.seq),\"hash\":\"\(head.hash)\",\"replica\":\(JSON.string(server.replicaID))}")
        }
        routes.get("openapi.json") { _, _ in json(OpenAPIDocument.json) }
        routes.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.exposition())))
        }
        return routes
    }

    /// The metrics listener's router (`--metrics-port`): `GET /metrics` and the health probes,
    /// nothing else (every other path is 404).
    func metricsRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: MetricsOnlyMiddleware())
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.exposition())))
        }
        router.get("v2/health/live") { _, _ in json("{\"live\":true}") }
        router.get("v2/health/ready") { _, _ in json("{\"ready\":\(server.isReady)}", status: server.isReady ? .ok : .serviceUnavailable) }
        return router
    }

    /// The admin token, compared in constant time: 403 when the server has none (admin
    /// endpoints are off), 401 when it is missing or wrong.
    func checkAdmin(_ req: Request) throws {
        guard let token = server.adminToken else {
            throw ServerError(403, "admin endpoints are off: start vigil serve with --admin-token-file FILE to allow promotion")
        }
        let given = req.headers[.authorization] ?? ""
        guard BearerTokenMiddleware<BasicRequestContext>.carries(given, token) else {
            throw ServerError(401, given.isEmpty
                ? "authorization: missing; admin endpoints need Authorization: Bearer <admin token> (--admin-token-file)"
                : "authorization: the bearer token is not the server's admin token")
        }
    }
}

/// The metrics listener answers every other path 404 with a JSON body naming what it serves.
struct MetricsOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    static var served: Set<String> { ["/metrics", "/v2/health/live", "/v2/health/ready"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.served.contains(request.uri.path), request.method == .get || request.method == .head else {
            return Response(
                status: .notFound, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\(JSON.string("\(request.method) \(Untrusted.quote(request.uri.path)): this is the metrics listener (--metrics-port); it serves GET /metrics and /v2/health/* only"))}\n")))
        }
        return try await next(request, context)
    }
}
