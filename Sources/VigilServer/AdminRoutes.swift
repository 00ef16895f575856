internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// The operator's routes, mounted at the root: the audit ledger's head and the Prometheus
/// exposition.
extension Routes {
    func adminRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
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
}
