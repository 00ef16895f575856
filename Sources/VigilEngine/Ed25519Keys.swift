internal import Crypto
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// An Ed25519 private key read from a key file that `vigil ledger keygen` writes: one line of 64
/// hex digits (the raw 32-byte key), mode 0600 or stricter. It signs ledger checkpoints
/// (`vigil serve --ledger-signing-key`) and package signature records (`vigil sign --key`).
package struct Ed25519SigningKey: Sendable {
    // Raw bytes (swift-crypto's key types are not Sendable); the key is made for each use.
    private let raw: [UInt8]
    package let publicKey: Ed25519PublicKey

    /// Reads the private key file; `what` names the option in errors (`--ledger-signing-key`).
    package init(file: String, what: String) throws {
        let bytes = try KeyFile.readHex(file, what: what, count: 32, secret: true)
        do {
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: bytes)
            raw = bytes
            publicKey = try Ed25519PublicKey(raw: Array(key.publicKey.rawRepresentation))
        } catch {
            throw VigilError(.usage, "\(what) \(file): not an Ed25519 private key (\(error))")
        }
    }

    /// The 64-byte Ed25519 signature of `message`.
    package func signature(for message: [UInt8]) throws -> [UInt8] {
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        return Array(try key.signature(for: message))
    }

    /// Writes a new key pair into `dir`: `<name>.key` (0600) and `<name>.pub` (0644), each one
    /// line of hex. Refuses to overwrite existing files.
    package static func generate(into dir: String, name: String) throws -> (privateFile: String, publicFile: String, keyID: String) {
        let key = Curve25519.Signing.PrivateKey()
        let priv = (dir as NSString).appendingPathComponent("\(name).key")
        let pub = (dir as NSString).appendingPathComponent("\(name).pub")
        try KeyFile.create(priv, text: KeyFile.hex(Array(key.rawRepresentation)) + "\n", mode: 0o600)
        try KeyFile.create(pub, text: KeyFile.hex(Array(key.publicKey.rawRepresentation)) + "\n", mode: 0o644)
        return (priv, pub, Ed25519PublicKey.id(of: Array(key.publicKey.rawRepresentation)))
    }
}

/// The public half: verifies signatures without the secret. Its id (ledger checkpoints'
/// `public_key_id`, signature records' `key_id`) is the first 8 bytes of the SHA-256 of the raw
/// 32-byte key, in hex.
package struct Ed25519PublicKey: Sendable, Hashable {
    package let raw: [UInt8]
    package let id: String

    package static func id(of raw: [UInt8]) -> String { String(SHA256Digest.hex(of: raw).prefix(16)) }

    /// A key from its raw 32 bytes; throws unless they are an Ed25519 public key.
    package init(raw: [UInt8]) throws {
        guard raw.count == 32 else { throw VigilError(.input, "an Ed25519 public key is 32 bytes, not \(raw.count)") }
        _ = try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        self.raw = raw
        id = Self.id(of: raw)
    }

    /// Reads a public key file (`vigil ledger keygen`'s `.pub`: one line of 64 hex digits).
    package init(file: String, what: String) throws {
        let bytes = try KeyFile.readHex(file, what: what, count: 32, secret: false)
        do { try self.init(raw: bytes) } catch {
            throw VigilError(.usage, "\(what) \(file): not an Ed25519 public key (\(error))")
        }
    }

    package func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// Reading and writing key files (the ledger's HMAC key, Ed25519 key pairs).
package enum KeyFile {
    private static let digits = Array("0123456789abcdef".utf8)

    package static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func unhex(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    /// The file's bytes; a secret must be a regular file that neither group nor others may
    /// access (mode & 077 == 0).
    package static func read(_ path: String, what: String, maximumBytes: Int, secret: Bool) throws -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw VigilError(.usage, "\(what) \(path): cannot read the key file (\(String(cString: strerror(errno))))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw VigilError(.usage, "\(what) \(path): not a regular file") }
        if secret, st.st_mode & 0o077 != 0 {
            throw VigilError(.usage, "\(what) \(path): mode \(String(st.st_mode & 0o777, radix: 8)) lets group or others read the secret key; chmod 600 it")
        }
        guard st.st_size <= maximumBytes else {
            throw VigilError(.usage, "\(what) \(path): \(st.st_size) bytes, more than a key file holds (\(maximumBytes))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.usage, "\(what) \(path): cannot read the key file")
        }
        return [UInt8](data)
    }

    /// A key file of one line holding `count` bytes in hex.
    package static func readHex(_ path: String, what: String, count: Int, secret: Bool) throws -> [UInt8] {
        let text = String(decoding: try read(path, what: what, maximumBytes: 1024, secret: secret), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = unhex(text), bytes.count == count else {
            throw VigilError(.usage, "\(what) \(path): must hold \(count * 2) hex digits (as vigil ledger keygen writes)")
        }
        return bytes
    }

    /// Creates `path` (never overwriting) with `mode` whatever the umask, writes `text` and syncs.
    package static func create(_ path: String, text: String, mode: UInt32) throws {
        let mode = mode_t(mode)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw VigilError(.io, "\(path): cannot create the file (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw VigilError(.io, "\(path): cannot set mode \(String(mode, radix: 8))") }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw VigilError(.io, "\(path): cannot write the file (\(String(cString: strerror(errno))))")
        }
    }
}
