/// An error answered to the client as `{"error": message}` with `status`. Messages name the
/// field, the value and the rule, like `VigilError.input`.
package struct ServerError: Error, Sendable, CustomStringConvertible {
    package let status: Int
    package let message: String
    /// Seconds for a `Retry-After` header (503 when a queue is full).
    package let retryAfter: Int?

    package init(_ status: Int, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    package var description: String { "\(status): \(message)" }

    static func badRequest(_ message: String) -> ServerError { ServerError(400, message) }
    static func notFound(_ message: String) -> ServerError { ServerError(404, message) }
}
