import Foundation
import Testing
import VigilServer
import VigilTesting
#if canImport(Glibc)
import Glibc
#endif

/// TLS and mTLS on the TCP listener, checked with the real `curl` and `openssl` clients, and
/// the request-read deadline that closes slow (slowloris) connections.
struct ServerTLSTests {
    /// Runs a command; returns its exit status and standard output.
    @discardableResult
    private func run(_ args: [String], cwd: URL? = nil) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A CA, a server certificate for localhost/127.0.0.1 signed by it, and a client certificate.
    private func makeCertificates(in dir: URL) throws {
        let steps: [[String]] = [
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Vigil test CA",
             "-keyout", "ca.key", "-out", "ca.pem"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"],
            ["sh", "-c", "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext"],
            ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "san.ext", "-out", "server.pem"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=ehr-client", "-keyout", "client.key", "-out", "client.csr"],
            ["openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-out", "client.pem"],
            ["chmod", "600", "server.key", "client.key"],
        ]
        for s in steps {
            let r = try run(s, cwd: dir)
            guard r.status == 0 else { throw LoopbackHTTPClient.Failure(description: "\(s.joined(separator: " ")) failed (\(r.status))") }
        }
    }

    private func tlsOptions(_ pkg: ToyPackage, clientCA: Bool) -> ServeOptions {
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        let d = pkg.dir.url
        o.tlsCertFile = d.appendingPathComponent("server.pem").path
        o.tlsKeyFile = d.appendingPathComponent("server.key").path
        if clientCA { o.tlsClientCAFile = d.appendingPathComponent("ca.pem").path }
        return o
    }

    @Test func tlsServesCurlWithTheCAAndRefusesPlainHTTP() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        try makeCertificates(in: pkg.dir.url)
        let s = try await RunningServer(options: tlsOptions(pkg, clientCA: false))
        let d = pkg.dir.url.path
        let url = "https://localhost:\(s.port)/v2/health/live"
        let ok = try await offPool { try run(["curl", "-sS", "--max-time", "10", "--cacert", "\(d)/ca.pem", url]) }
        #expect(ok.status == 0 && ok.out.contains("\"live\":true"), "curl --cacert: \(ok.status) \(ok.out)")
        // Without the CA curl refuses the certificate (exit 60).
        let untrusted = try await offPool { try run(["curl", "-sS", "--max-time", "10", url]) }
        #expect(untrusted.status == 60, "curl without --cacert: \(untrusted.status)")
        // Plain HTTP to the TLS port gets no HTTP answer.
        let plain = try await offPool { try run(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:\(s.port)/v2/health/live"]) }
        #expect(plain.status != 0 && !plain.out.contains("live"), "plain HTTP: \(plain.status) \(plain.out)")
        // The Unix socket stays plain HTTP.
        #expect(try await s.unixClient().send("GET", "/v2/health/live").status == 200)
        try await s.stop()
    }

    @Test func mutualTLSRequiresAClientCertificate() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        try makeCertificates(in: pkg.dir.url)
        let s = try await RunningServer(options: tlsOptions(pkg, clientCA: true))
        let d = pkg.dir.url.path
        let url = "https://localhost:\(s.port)/v2/health/live"
        let without = try await offPool { try run(["curl", "-sS", "--max-time", "10", "--cacert", "\(d)/ca.pem", url]) }
        #expect(without.status != 0 && !without.out.contains("live"), "no client certificate: \(without.status) \(without.out)")
        let with = try await offPool {
            try run(["curl", "-sS", "--max-time", "10", "--cacert", "\(d)/ca.pem", "--cert", "\(d)/client.pem", "--key", "\(d)/client.key", url])
        }
        #expect(with.status == 0 && with.out.contains("\"live\":true"), "client certificate: \(with.status) \(with.out)")
        try await s.stop()
    }

    @Test func badTLSFilesAndNetworkBindsAreRefusedAtStart() throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        try makeCertificates(in: pkg.dir.url)
        var missing = tlsOptions(pkg, clientCA: false)
        missing.tlsKeyFile = nil
        #expect(throws: (any Error).self) { _ = try VigilServer(options: missing) }
        var wrongKey = tlsOptions(pkg, clientCA: false)
        wrongKey.tlsKeyFile = pkg.dir.url.appendingPathComponent("client.key").path
        #expect(throws: (any Error).self) { _ = try VigilServer(options: wrongKey) }
        var readable = tlsOptions(pkg, clientCA: false)
        try run(["chmod", "644", readable.tlsKeyFile!])
        #expect(throws: (any Error).self) { _ = try VigilServer(options: readable) }
        try run(["chmod", "600", readable.tlsKeyFile!])
        readable.socket = nil
        // A network bind needs a token, and TLS unless --insecure-network.
        readable.host = "0.0.0.0"
        #expect(throws: (any Error).self) { _ = try VigilServer(options: readable) }
        let token = pkg.dir.url.appendingPathComponent("token").path
        try Data("0123456789abcdef0123456789abcdef".utf8).write(to: URL(fileURLWithPath: token))
        try run(["chmod", "600", token])
        readable.authTokenFile = token
        _ = try VigilServer(options: readable)  // TLS and a token: allowed (not run)
        readable.tlsCertFile = nil
        readable.tlsKeyFile = nil
        #expect(throws: (any Error).self) { _ = try VigilServer(options: readable) }
        readable.insecureNetwork = true
        _ = try VigilServer(options: readable)
    }

    @Test func slowClientsAreClosedWhileValidRequestsStillSucceed() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.requestReadTimeoutSeconds = 2
        o.maxConnections = 8
        let s = try await RunningServer(options: o)
        let port = s.port
        // 8 slowloris connections (as many as the limit) sending one header byte every 300 ms.
        let closedEarly = try await offPool { () -> Int in
            var fds: [Int32] = []
            for _ in 0..<8 {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var addr = sockaddr_in()
                addr.sin_family = sa_family_t(AF_INET)
                addr.sin_port = in_port_t(UInt16(port).bigEndian)
                addr.sin_addr.s_addr = inet_addr("127.0.0.1")
                let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                guard rc == 0 else { throw LoopbackHTTPClient.Failure(description: "connect failed") }
                var tv = timeval(tv_sec: 0, tv_usec: 100_000)
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                fds.append(fd)
            }
            let header = Array("GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".utf8)
            var closed = Set<Int>()
            // At most 8 s: each byte keeps the idle timer alive; only the read deadline ends them.
            for step in 0..<27 {
                for (i, fd) in fds.enumerated() where !closed.contains(i) {
                    var b = header[min(step, header.count - 1)]
                    if send(fd, &b, 1, Int32(MSG_NOSIGNAL)) < 0 { closed.insert(i) }
                }
                if closed.count == fds.count { break }
                usleep(300_000)
            }
            for fd in fds { close(fd) }
            return closed.count
        }
        #expect(closedEarly == 8, "slow connections closed by the server: \(closedEarly) of 8")
        // The slots are free again: a valid request is answered.
        #expect(try await s.tcpClient().send("GET", "/v2/health/live").status == 200)
        try await s.stop()
    }
}
