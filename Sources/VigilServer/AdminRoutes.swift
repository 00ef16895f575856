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
        routes.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.exposition())))
        }
        return routes
    }

    /// The admin token, compared in constant time: 403 when the server has none (admin
    /// endpoints are off), 401 when it is missing or wrong.
    func checkAdmin(_ req: Request) throws {
        guard let token = server.adminToken else {
            throw ServerError(403, "admin endpoints are off: start vigil serve with --admin-token-file FILE to allow promotion")
        }
        let given = req.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard given.hasPrefix(prefix), BearerTokenMiddleware<BasicRequestContext>.constantTimeEqual(Array(given.utf8.dropFirst(prefix.utf8.count)), token) else {
            throw ServerError(401, given.isEmpty
                ? "authorization: missing; admin endpoints need Authorization: Bearer <admin token> (--admin-token-file)"
                : "authorization: the bearer token is not the server's admin token")
        }
    }
}
