// The pieces of the request-handling benchmarks that do not depend on the benchmark package:
// a real `vigil serve` started as a subprocess, a minimal HTTP/1.1 keep-alive client over its
// Unix-domain socket (plain POSIX calls, no allocation per request once warm), and the request
// bodies built from a model's test cohort and manifest. VigilServer's API is `package` access,
// so this package cannot call it in-process; going through the socket also measures what a
// client sees (HTTP parsing, routing, JSON, the scoring thread's hand-off).

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `vigil serve` subprocess on a Unix socket in its own temporary folder.
final class ServerProcess: @unchecked Sendable {
    let process: Process
    let directory: String
    let socketPath: String
    let binary: String

    /// The binary: $VIGIL_BIN, else `<repository>/.build/release/vigil`, else
    /// `<repository>/Benchmarks/.build/release/vigil` (where Benchmarks/README.md section 3 builds
    /// it, sharing this package's dependency builds). Nil when none exists.
    static func findBinary(repository: URL) -> (path: String?, tried: [String]) {
        if let bin = ProcessInfo.processInfo.environment["VIGIL_BIN"], !bin.isEmpty {
            return (FileManager.default.isExecutableFile(atPath: bin) ? bin : nil, [bin])
        }
        let candidates = [
            repository.appendingPathComponent(".build/release/vigil").path,
            repository.appendingPathComponent("Benchmarks/.build/release/vigil").path,
        ]
        return (candidates.first { FileManager.default.isExecutableFile(atPath: $0) }, candidates)
    }

    /// Starts `binary serve --model M... --socket DIR/vigil.sock [--ledger DIR/ledger.jsonl]` and
    /// waits (up to `timeout` seconds) for its `vigil serve: ready` line. Stops the process and
    /// throws, with its standard error, when it exits or does not get ready.
    init(binary: String, models: [String], ledger: Bool, timeout: Double = 60) throws {
        self.binary = binary
        // A short path: sockaddr_un holds 104-108 bytes.
        var template = Array("/tmp/vigil-bench.XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ServerError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: dir)
        socketPath = directory + "/vigil.sock"
        let outPath = directory + "/serve.out"
        let errPath = directory + "/serve.err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)

        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        var arguments = ["serve"]
        for m in models { arguments += ["--model", m] }
        arguments += ["--socket", socketPath]
        if ledger { arguments += ["--ledger", directory + "/ledger.jsonl"] }
        process.arguments = arguments
        // Files, not pipes: nobody has to drain them while the benchmark runs.
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw ServerError("cannot run \(binary): \(error)")
        }

        let command = ([binary] + arguments).joined(separator: " ")
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            if out.split(separator: "\n").contains(where: { $0.hasPrefix("vigil serve: ready") }) { break }
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            if !process.isRunning {
                process.waitUntilExit()
                let status = process.terminationStatus
                try? FileManager.default.removeItem(atPath: directory)
                throw ServerError("`\(command)` exited with status \(status) before it was ready:\n\(out)\(err)")
            }
            if Date() > deadline {
                process.terminate()
                process.waitUntilExit()
                try? FileManager.default.removeItem(atPath: directory)
                throw ServerError("`\(command)` printed no `vigil serve: ready` line within \(Int(timeout)) s:\n\(out)\(err)")
            }
            usleep(20_000)
        }
    }

    /// SIGTERM (the server drains and exits 0), wait, remove the folder. Returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
        return process.terminationStatus
    }
}

struct ServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// HTTP/1.1 over one keep-alive Unix-domain socket connection, one request at a time.
/// `send` writes a complete prepared request and reads the whole response (headers, then
/// `Content-Length` bytes of body, or a chunked body) into a reused buffer.
final class UnixHTTPClient: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = Array(repeating: 0, count: 1 << 16)
    /// Bytes in `buffer` (a response, possibly with the start of nothing else).
    private var filled = 0

    init(socketPath: String) throws {
        #if os(Linux)
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let s = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard s >= 0 else { throw ServerError("socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        #if !os(Linux)
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else {
            close(s)
            throw ServerError("socket path too long (\(path.count) bytes): \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(s)
            throw ServerError("connect(\(socketPath)): \(message)")
        }
        fd = s
    }

    deinit { close(fd) }

    /// A complete request: `method path`, Host, Content-Type, Content-Length, keep-alive, body.
    static func request(method: String, path: String, body: [UInt8]) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        if !body.isEmpty || method == "POST" {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// Sends `request` and reads the whole response. Returns the status code and the body's
    /// length; the body is `lastBody` until the next call. Throws on a socket error, a closed
    /// connection or a response it cannot parse.
    func send(_ request: [UInt8]) throws -> (status: Int, bodyLength: Int) {
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                #if os(Linux)
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                #else
                let n = Darwin.send(fd, raw.baseAddress! + sent, raw.count - sent, 0)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ServerError("send: \(String(cString: strerror(errno)))")
                }
                sent += n
            }
        }
        filled = 0
        // Headers.
        var headerEnd = -1
        while headerEnd < 0 {
            try readMore()
            headerEnd = find(crlfcrlf, from: 0)
        }
        let bodyStart = headerEnd + 4
        let status = try statusCode()
        if let length = try contentLength(headerEnd: headerEnd) {
            while filled < bodyStart + length { try readMore() }
            lastBodyRange = bodyStart..<(bodyStart + length)
            return (status, length)
        }
        if headerContains("transfer-encoding: chunked", headerEnd: headerEnd) {
            let length = try readChunked(from: bodyStart)
            return (status, length)
        }
        throw ServerError("response with neither Content-Length nor chunked body:\n\(text(0..<headerEnd))")
    }

    private var lastBodyRange = 0..<0

    /// The last response's body as text (for error messages).
    var lastBody: String { text(lastBodyRange) }

    private let crlfcrlf: [UInt8] = Array("\r\n\r\n".utf8)
    private let crlf: [UInt8] = Array("\r\n".utf8)

    private func text(_ range: Range<Int>) -> String {
        String(decoding: buffer[range], as: UTF8.self)
    }

    private func readMore() throws {
        if filled == buffer.count { buffer += Array(repeating: 0, count: buffer.count) }
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
            if n > 0 { filled += n; return }
            if n == 0 { throw ServerError("the server closed the connection after \(filled) bytes of a response") }
            if errno == EINTR { continue }
            throw ServerError("read: \(String(cString: strerror(errno)))")
        }
    }

    private func find(_ needle: [UInt8], from: Int) -> Int {
        guard filled >= needle.count else { return -1 }
        var i = from
        while i + needle.count <= filled {
            if buffer[i] == needle[0] {
                var k = 1
                while k < needle.count && buffer[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return -1
    }

    /// `HTTP/1.1 200 OK` -> 200.
    private func statusCode() throws -> Int {
        // "HTTP/1.x " is 9 bytes, then three digits.
        guard filled >= 12, buffer[0] == UInt8(ascii: "H") else {
            throw ServerError("not an HTTP response: \(text(0..<min(filled, 80)))")
        }
        var code = 0
        for i in 9..<12 {
            let d = Int(buffer[i]) - Int(UInt8(ascii: "0"))
            guard (0...9).contains(d) else { throw ServerError("bad status line: \(text(0..<min(filled, 80)))") }
            code = code * 10 + d
        }
        return code
    }

    /// Case-insensitive comparison of the header line starting at `start` with `name:`.
    private func lineStarts(at start: Int, with lowercased: [UInt8], end: Int) -> Bool {
        guard start + lowercased.count <= end else { return false }
        for k in 0..<lowercased.count {
            var c = buffer[start + k]
            if c >= 65 && c <= 90 { c += 32 }
            if c != lowercased[k] { return false }
        }
        return true
    }

    private let contentLengthName: [UInt8] = Array("content-length:".utf8)

    private func contentLength(headerEnd: Int) throws -> Int? {
        var line = find(crlf, from: 0) + 2
        while line < headerEnd {
            if lineStarts(at: line, with: contentLengthName, end: headerEnd) {
                var i = line + contentLengthName.count
                while buffer[i] == UInt8(ascii: " ") { i += 1 }
                var value = 0
                var digits = 0
                while i < headerEnd, buffer[i] >= 48, buffer[i] <= 57 {
                    value = value * 10 + Int(buffer[i] - 48)
                    i += 1
                    digits += 1
                }
                guard digits > 0 else { throw ServerError("bad Content-Length header") }
                return value
            }
            let next = find(crlf, from: line)
            if next < 0 { break }
            line = next + 2
        }
        return nil
    }

    private func headerContains(_ lowercased: String, headerEnd: Int) -> Bool {
        text(0..<headerEnd).lowercased().contains(lowercased)
    }

    /// Reads a chunked body in place; returns its total length (chunk data only).
    private func readChunked(from start: Int) throws -> Int {
        var position = start
        var total = 0
        while true {
            var lineEnd = find(crlf, from: position)
            while lineEnd < 0 { try readMore(); lineEnd = find(crlf, from: position) }
            var size = 0
            for i in position..<lineEnd {
                let c = buffer[i]
                let v: Int
                switch c {
                case 48...57: v = Int(c) - 48
                case 97...102: v = Int(c) - 87
                case 65...70: v = Int(c) - 55
                default: v = -1
                }
                if v < 0 { break }  // chunk extensions
                size = size * 16 + v
            }
            position = lineEnd + 2
            if size == 0 {
                // Trailers, if any, then an empty line.
                while true {
                    var end = find(crlf, from: position)
                    while end < 0 { try readMore(); end = find(crlf, from: position) }
                    let empty = end == position
                    position = end + 2
                    if empty { break }
                }
                lastBodyRange = start..<position
                return total
            }
            while filled < position + size + 2 { try readMore() }
            position += size + 2
            total += size
        }
    }
}

/// The request bodies for one patient (a row of `models/<name>/test_cohort.csv`): the native
/// record `POST /v1/models/<name>/score` takes (id field, every manifest feature, every group
/// input field; an empty cell is `null`), and the same patient as an Open Inference Protocol
/// request for `POST /v2/models/<name>/infer` (one FP64 `[1]` tensor per feature, one BYTES
/// `[1]` tensor per group field and one for the id), and in the `[1, F]` matrix form. The same bodies as scripts/load.sh builds,
/// but in the per-feature OIP form.
struct PatientBodies {
    let native: [UInt8]
    let oip: [UInt8]
    /// The OIP request with the features as one FP64 `[1, F]` tensor in manifest order (the
    /// form scripts/load.sh sends), group fields and id as above.
    let oipMatrix: [UInt8]

    init(modelDirectory: URL, row: Int = 0) throws {
        let manifestURL = modelDirectory.appendingPathComponent("manifest.json")
        guard let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any],
              let featureList = manifest["features"] as? [[String: Any]]
        else { throw ServerError("\(manifestURL.path): no features") }
        let features = featureList.compactMap { $0["name"] as? String }
        let groups = (manifest["groups"] as? [[String: Any]]) ?? []
        let fields = groups.filter { ($0["source"] as? String) == "field" }.compactMap { $0["field"] as? String }
        let idField = (manifest["id_field"] as? String) ?? "id"

        let csvURL = modelDirectory.appendingPathComponent("test_cohort.csv")
        let lines = try String(contentsOf: csvURL, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count > row + 1 else { throw ServerError("\(csvURL.path): fewer than \(row + 1) rows") }
        // The cohort files hold no quoted cells (numbers, codes and labels without commas).
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let cells = lines[row + 1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard header.count == cells.count else { throw ServerError("\(csvURL.path): row \(row + 1) has \(cells.count) cells, header \(header.count)") }
        var value: [String: String] = [:]
        for (k, v) in zip(header, cells) { value[k] = v.trimmingCharacters(in: .whitespacesAndNewlines) }
        func cell(_ name: String) throws -> String {
            guard let v = value[name] else { throw ServerError("\(csvURL.path): no column \(name)") }
            return v
        }
        func number(_ name: String) throws -> Any {
            let text = try cell(name)
            if text.isEmpty { return NSNull() }
            guard let d = Double(text) else { throw ServerError("\(csvURL.path): \(name) = \(text) is not a number") }
            return d
        }

        var record: [String: Any] = [idField: try cell(idField)]
        for f in features { record[f] = try number(f) }
        for f in fields { record[f] = try cell(f) }
        native = Array(try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]))

        var inputs: [[String: Any]] = []
        for f in features {
            inputs.append(["name": f, "shape": [1], "datatype": "FP64", "data": [try number(f)]])
        }
        for f in fields {
            inputs.append(["name": f, "shape": [1], "datatype": "BYTES", "data": [try cell(f)]])
        }
        inputs.append(["name": idField, "shape": [1], "datatype": "BYTES", "data": [try cell(idField)]])
        oip = Array(try JSONSerialization.data(withJSONObject: ["inputs": inputs], options: [.sortedKeys]))

        let row: [Any] = try features.map { try number($0) }
        let matrix: [String: Any] = ["name": "features", "shape": [1, features.count], "datatype": "FP64", "data": [row]]
        oipMatrix = Array(try JSONSerialization.data(
            withJSONObject: ["inputs": [matrix] + inputs.dropFirst(features.count)], options: [.sortedKeys]))
    }
}
