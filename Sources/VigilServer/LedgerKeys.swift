internal import Crypto
package import Foundation
package import VigilCore
#if canImport(Glibc)
internal import Glibc
#endif

/// The secret that keys the ledger's hash chain: each entry's `hash` is HMAC-SHA256(key, the
/// line without its hash). Read from a file of at least 32 bytes (its bytes, as they are) that
/// only its owner may read (mode 0600 or stricter). Its id, the first 8 bytes of the key's
/// SHA-256 in hex, is written into the ledger; the key never is.
package struct LedgerHMACKey: Sendable {
    // Raw bytes (swift-crypto's key types are not Sendable); the key is made for each use.
    private let bytes: [UInt8]
    package let id: String

    package static let minimumBytes = 32
    static let maximumBytes = 4096

    package init(bytes: [UInt8]) throws {
        guard bytes.count >= Self.minimumBytes else {
            throw VigilError(.usage, "ledger key: \(bytes.count) bytes; an HMAC key needs at least \(Self.minimumBytes) random bytes (e.g. head -c 32 /dev/urandom > KEY)")
        }
        self.bytes = bytes
        id = String(AuditLedger.sha256Hex(bytes).prefix(16))
    }

    /// Reads the key file, refusing one that its group or others may read or write.
    package init(file: String) throws {
        let bytes = try LedgerKeyFile.read(file, what: "--ledger-key", maximumBytes: Self.maximumBytes, secret: true)
        try self.init(bytes: bytes)
    }

    func mac(_ bytes: some Sequence<UInt8>) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(bytes), using: SymmetricKey(data: self.bytes))
        return LedgerKeyFile.hex(Array(code))
    }
}

/// The Ed25519 key that signs checkpoints (`vigil ledger keygen` writes it).
package struct LedgerSigningKey: Sendable {
    private let raw: [UInt8]
    package let publicKey: LedgerPublicKey
    private var key: Curve25519.Signing.PrivateKey {
        // Checked at init: the raw bytes are a valid key.
        (try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)) ?? Curve25519.Signing.PrivateKey()
    }

    package init(file: String) throws {
        let bytes = try LedgerKeyFile.readHex(file, what: "--ledger-signing-key", count: 32, secret: true)
        do {
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: bytes)
            raw = bytes
            publicKey = LedgerPublicKey(key.publicKey)
        } catch {
            throw VigilError(.usage, "--ledger-signing-key \(file): not an Ed25519 private key (\(error))")
        }
    }

    /// The signature of `message` in hex (128 digits).
    func sign(_ message: [UInt8]) throws -> String {
        LedgerKeyFile.hex(Array(try key.signature(for: message)))
    }

    /// Writes a new key pair into `dir`: `ledger-signing.key` (0600) and `ledger-signing.pub`
    /// (0644), each one line of hex. Refuses to overwrite existing files.
    package static func generate(into dir: String) throws -> (privateFile: String, publicFile: String, keyID: String) {
        let key = Curve25519.Signing.PrivateKey()
        let priv = (dir as NSString).appendingPathComponent("ledger-signing.key")
        let pub = (dir as NSString).appendingPathComponent("ledger-signing.pub")
        try LedgerKeyFile.create(priv, text: LedgerKeyFile.hex(Array(key.rawRepresentation)) + "\n", mode: 0o600)
        try LedgerKeyFile.create(pub, text: LedgerKeyFile.hex(Array(key.publicKey.rawRepresentation)) + "\n", mode: 0o644)
        return (priv, pub, LedgerPublicKey(key.publicKey).id)
    }
}

/// The public half, which verifies checkpoints without the secret.
package struct LedgerPublicKey: Sendable {
    private let raw: [UInt8]
    /// First 8 bytes of the SHA-256 of the raw public key, in hex.
    package let id: String

    init(_ key: Curve25519.Signing.PublicKey) {
        raw = Array(key.rawRepresentation)
        id = String(AuditLedger.sha256Hex(raw).prefix(16))
    }

    package init(file: String) throws {
        let bytes = try LedgerKeyFile.readHex(file, what: "--public-key", count: 32, secret: false)
        do { self.init(try Curve25519.Signing.PublicKey(rawRepresentation: bytes)) } catch {
            throw VigilError(.usage, "--public-key \(file): not an Ed25519 public key (\(error))")
        }
    }

    func isValid(signatureHex: String, for message: [UInt8]) -> Bool {
        guard let sig = LedgerKeyFile.unhex(signatureHex),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
        return key.isValidSignature(sig, for: message)
    }
}

/// Reading and writing key files.
enum LedgerKeyFile {
    private static let digits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ s: String) -> [UInt8]? {
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
    static func read(_ path: String, what: String, maximumBytes: Int, secret: Bool) throws -> [UInt8] {
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
    static func readHex(_ path: String, what: String, count: Int, secret: Bool) throws -> [UInt8] {
        let text = String(decoding: try read(path, what: what, maximumBytes: 1024, secret: secret), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = unhex(text), bytes.count == count else {
            throw VigilError(.usage, "\(what) \(path): must hold \(count * 2) hex digits (as vigil ledger keygen writes)")
        }
        return bytes
    }

    static func create(_ path: String, text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw VigilError(.io, "\(path): cannot create the key file (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw VigilError(.io, "\(path): cannot set mode \(String(mode, radix: 8))") }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw VigilError(.io, "\(path): cannot write the key file (\(String(cString: strerror(errno))))")
        }
    }
}
