internal import Foundation
internal import Hummingbird
internal import NIOCore
internal import VigilEngine
#if canImport(Glibc)
internal import Glibc
#endif

/// Bearer-token authentication (`--auth-token-file`): every request but the health probes
/// (`/v2/health/live`, `/v2/health/ready`, exempt so that Kubernetes probes need no secret)
/// must carry `Authorization: Bearer <token>`; otherwise 401 with `WWW-Authenticate: Bearer`
/// and a JSON body. The comparison takes the same time whatever the bytes that differ.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    let metrics: ServerMetrics

    static var exemptPaths: Set<String> { ["/v2/health/live", "/v2/health/ready"] }

    /// Paths under this prefix carry the admin token instead (`AdminRoutes`, which checks it and
    /// refuses everything when no admin token is configured).
    static var adminPrefix: String { "/v1/admin/" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Only the admin routes themselves take the admin token instead: any other path under
        // the prefix needs the client token like the rest (no unauthenticated probing).
        let admin = request.uri.path.hasPrefix(Self.adminPrefix) && Routes.template(request.uri.path) != nil
        if Self.exemptPaths.contains(request.uri.path) || admin { return try await next(request, context) }
        let given = request.headers[.authorization] ?? ""
        guard Self.carries(given, token) else {
            metrics.error(route: Routes.routeLabel(request.uri.path), status: 401)
            let message = given.isEmpty
                ? "authorization: missing; send Authorization: Bearer <token> (the server was started with --auth-token-file)"
                : "authorization: the bearer token is not the server's"
            return Response(
                status: .unauthorized,
                headers: [.contentType: "application/json", .wwwAuthenticate: "Bearer realm=\"vigil\""],
                body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\(JSON.string(message))}\n")))
        }
        return try await next(request, context)
    }

    /// Whether an `Authorization` header value is `Bearer <token>` (compared in constant time).
    static func carries(_ authorization: String, _ token: [UInt8]) -> Bool {
        let prefix = "Bearer "
        return authorization.hasPrefix(prefix) && constantTimeEqual(Array(authorization.utf8.dropFirst(prefix.utf8.count)), token)
    }

    /// Equal bytes, in a time that depends only on the lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0
    }

    /// Reads the token from `path`: refused when the file is readable by group or others, or
    /// empty. Surrounding whitespace (a trailing newline) is dropped.
    static func readToken(_ path: String, flag: String = "--auth-token-file") throws -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw VigilError(.usage, "\(flag) \(Untrusted.quote(path)): cannot read it (\(String(cString: strerror(errno))))")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw VigilError(.usage, "\(flag) \(Untrusted.quote(path)): mode \(String(st.st_mode & 0o777, radix: 8)) lets group or others read or write it; chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.usage, "\(flag) \(Untrusted.quote(path)): cannot read it")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.utf8.count >= 16 else {
            throw VigilError(.usage, "\(flag) \(Untrusted.quote(path)): the token has \(text.utf8.count) bytes; at least 16 are needed")
        }
        return Array(text.utf8)
    }
}
