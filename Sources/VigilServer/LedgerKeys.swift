internal import Crypto
package import Foundation
package import VigilCore
internal import VigilEngine

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
        let bytes = try KeyFile.read(file, what: "--ledger-key", maximumBytes: Self.maximumBytes, secret: true)
        try self.init(bytes: bytes)
    }

    func mac(_ bytes: some Sequence<UInt8>) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(bytes), using: SymmetricKey(data: self.bytes))
        return KeyFile.hex(Array(code))
    }
}

/// The Ed25519 key that signs checkpoints (`vigil ledger keygen` writes it; the key file format
/// and the key types are VigilEngine's `Ed25519SigningKey`, shared with `vigil sign`).
package struct LedgerSigningKey: Sendable {
    private let key: Ed25519SigningKey
    package var publicKey: LedgerPublicKey { LedgerPublicKey(key.publicKey) }

    package init(file: String) throws {
        key = try Ed25519SigningKey(file: file, what: "--ledger-signing-key")
    }

    /// The signature of `message` in hex (128 digits).
    func sign(_ message: [UInt8]) throws -> String {
        KeyFile.hex(try key.signature(for: message))
    }

    /// Writes a new key pair into `dir`: `ledger-signing.key` (0600) and `ledger-signing.pub`
    /// (0644), each one line of hex. Refuses to overwrite existing files.
    package static func generate(into dir: String) throws -> (privateFile: String, publicFile: String, keyID: String) {
        try Ed25519SigningKey.generate(into: dir, name: "ledger-signing")
    }
}

/// The public half, which verifies checkpoints without the secret.
package struct LedgerPublicKey: Sendable {
    private let key: Ed25519PublicKey
    /// First 8 bytes of the SHA-256 of the raw public key, in hex.
    package var id: String { key.id }

    init(_ key: Ed25519PublicKey) { self.key = key }

    package init(file: String) throws {
        key = try Ed25519PublicKey(file: file, what: "--public-key")
    }

    func isValid(signatureHex: String, for message: [UInt8]) -> Bool {
        guard let sig = KeyFile.unhex(signatureHex) else { return false }
        return key.isValidSignature(sig, for: message)
    }
}
