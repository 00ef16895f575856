internal import Foundation
internal import NIOSSL
internal import VigilEngine

/// TLS for the TCP listener (swift-nio-ssl): the certificate chain and key from PEM files,
/// TLS 1.2 at least, and with a client CA, mutual TLS (a client without a certificate signed
/// by that CA fails the handshake). Files are read when the server starts, so a bad path or a
/// key that does not match its certificate stops `vigil serve` with an error naming the file.
enum ServerTLS {
    static func configuration(_ options: ServeOptions) throws -> TLSConfiguration? {
        switch (options.tlsCertFile, options.tlsKeyFile) {
        case (nil, nil):
            guard options.tlsClientCAFile == nil else {
                throw VigilError(.usage, "--tls-client-ca: needs --tls-cert and --tls-key (client certificates are checked by a TLS listener)")
            }
            return nil
        case (nil, _?), (_?, nil):
            throw VigilError(.usage, "--tls-cert and --tls-key: give both (the certificate chain and its private key, PEM)")
        case (let cert?, let key?):
            guard options.port != nil else {
                throw VigilError(.usage, "--tls-cert: TLS is for the TCP listener (--port); the Unix socket is guarded by its file mode")
            }
            let chain: [NIOSSLCertificate]
            do { chain = try NIOSSLCertificate.fromPEMFile(cert) } catch {
                throw VigilError(.io, "--tls-cert \(Untrusted.quote(cert)): not a readable PEM certificate chain (\(Untrusted.quote("\(error)")))")
            }
            guard !chain.isEmpty else { throw VigilError(.io, "--tls-cert \(Untrusted.quote(cert)): holds no certificate") }
            let privateKey: NIOSSLPrivateKey
            do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
                throw VigilError(.io, "--tls-key \(Untrusted.quote(key)): not a readable PEM private key (\(Untrusted.quote("\(error)")))")
            }
            try requirePrivate(key, flag: "--tls-key")
            var config = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
            config.minimumTLSVersion = .tlsv12
            if let ca = options.tlsClientCAFile {
                guard FileManager.default.isReadableFile(atPath: ca) else {
                    throw VigilError(.io, "--tls-client-ca \(Untrusted.quote(ca)): cannot read the file")
                }
                config.trustRoots = .file(ca)
                config.certificateVerification = .noHostnameVerification
            }
            // A key that does not match the certificate fails here, at start, not at the first
            // handshake.
            do { _ = try NIOSSLContext(configuration: config) } catch {
                throw VigilError(.io, "--tls-cert/--tls-key: cannot make a TLS context (\(Untrusted.quote("\(error)"))); does the key belong to the certificate?")
            }
            return config
        }
    }

    /// Refuses a private key file that group or others can read.
    static func requirePrivate(_ path: String, flag: String) throws {
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        if let mode = (attrs?[.posixPermissions] as? NSNumber)?.uint16Value, mode & 0o077 != 0 {
            throw VigilError(.usage, "\(flag) \(Untrusted.quote(path)): mode \(String(mode, radix: 8)) lets group or others read the key; chmod 600 it")
        }
    }
}
