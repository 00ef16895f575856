package import Foundation
#if canImport(Glibc)
internal import Glibc
#endif
internal import Dispatch
internal import CDispatch

/// A minimal blocking HTTP/1.1 client over a Unix domain socket or loopback TCP, with
/// keep-alive: for the tests and `vigil load` (URLSession on Linux cannot use Unix sockets).
/// It reads `Content-Length` bodies only (the server never sends chunked responses here).
package final class LoopbackHTTPClient: @unchecked Sendable {
    package enum Target: Sendable, CustomStringConvertible {
        case unix(String)
        case tcp(port: Int)

        package var description: String {
            switch self {
            case .unix(let p): return "unix:\(p)"
            case .tcp(let port): return "127.0.0.1:\(port)"
            }
        }
    }

    package struct Response: Sendable {
        package let status: Int
        package let headers: [String: String]
        package let body: Data
        package var text: String { String(decoding: body, as: UTF8.self) }
        package func json() -> Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
        package init(description: String) { self.description = description }
    }

    let target: Target
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    package init(_ target: Target) {
        self.target = target
    }

    deinit { disconnect() }

    package func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        buffer.removeAll()
    }

    private func connectIfNeeded() throws {
        guard fd < 0 else { return }
        switch target {
        case .unix(let path):
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(s); throw Failure(description: "socket path too long") }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
                raw[bytes.count] = 0
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else { let e = errno; close(s); throw Failure(description: "connect \(path): \(String(cString: strerror(e)))") }
            fd = s
        case .tcp(let port):
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { let e = errno; close(s); throw Failure(description: "connect 127.0.0.1:\(port): \(String(cString: strerror(e)))") }
            var one: Int32 = 1
            setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            fd = s
        }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one request and reads its response; reconnects once if a kept-alive connection
    /// was closed by the server.
    package func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws -> Response {
        var raw = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (k, v) in headers { raw += "\(k): \(v)\r\n" }
        if let body {
            if headers["Content-Type"] == nil { raw += "Content-Type: application/json\r\n" }
            raw += "Content-Length: \(body.count)\r\n"
        }
        raw += "\r\n"
        var bytes = Array(raw.utf8)
        if let body { bytes += body }
        for attempt in 0..<2 {
            do {
                try connectIfNeeded()
                try send(bytes)
                return try readResponse()
            } catch let e as Failure where attempt == 0 && buffer.isEmpty && e.description.hasPrefix("closed") {
                disconnect()
            }
        }
        throw Failure(description: "unreachable")
    }

    /// Sends `bytes` as they are (a malformed request, a truncated body) on a fresh connection
    /// and reads one response; `endWrite` half-closes the connection after sending (EOF to
    /// the server, as a client that gives up mid-body).
    package func raw(_ bytes: [UInt8], endWrite: Bool = false) throws -> Response {
        disconnect()
        try connectIfNeeded()
        try send(bytes)
        if endWrite { shutdown(fd, Int32(SHUT_WR)) }
        defer { disconnect() }
        // A response to HEAD has no body, whatever its Content-Length says.
        return try readResponse(bodyless: bytes.starts(with: Array("HEAD ".utf8)))
    }

    package func request(_ method: String, _ path: String, json: String) throws -> Response {
        try request(method, path, body: Data(json.utf8))
    }

    private func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                disconnect()
                throw Failure(description: "closed: send: \(String(cString: strerror(e)))")
            }
            off += n
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBufferPointer { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { buffer += chunk[0..<n]; return }
            if n < 0, errno == EINTR { continue }
            let e = n == 0 ? "closed by the server" : String(cString: strerror(errno))
            disconnect()
            throw Failure(description: "closed: \(e)")
        }
    }

    private func readResponse(bodyless: Bool = false) throws -> Response {
        let sep: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if buffer.count >= 4 {
                for i in 0...(buffer.count - 4) where buffer[i] == 13 && Array(buffer[i..<(i + 4)]) == sep {
                    headerEnd = i
                    break
                }
            }
            if headerEnd == nil { try fill() }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad status line '\(statusLine)'") }
        var headers: [String: String] = [:]
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        let length = bodyless ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        let start = headerEnd! + 4
        while buffer.count < start + length { try fill() }
        let body = Data(buffer[start..<(start + length)])
        buffer.removeFirst(start + length)
        if headers["connection"]?.lowercased() == "close" { disconnect() }
        return Response(status: status, headers: headers, body: body)
    }
}
