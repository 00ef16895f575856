package import Foundation
internal import Crypto

/// SHA-256 of files and byte strings, as lowercase hex (swift-crypto): the one hex digest of
/// Vigil (model files, policies, cohorts, the ledger's entry hashes and input hashes).
package enum SHA256Digest {
    package static func hex(of data: Data) -> String {
        hexText(SHA256.hash(data: data))
    }

    /// The digest of any bytes (e.g. a string's `utf8`).
    package static func hex(of bytes: some Sequence<UInt8>) -> String {
        hexText(SHA256.hash(data: Array(bytes)))
    }

    /// Hashes a file in 1 MiB blocks, so a large cohort needs no more memory than that.
    package static func hex(ofFileAt url: URL) throws -> String {
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw VigilError(.io, "\(url.path): cannot open the file to hash it")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
            hasher.update(data: block)
        }
        return hexText(hasher.finalize())
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lowercase hex, two digits a byte.
    private static func hexText(_ digest: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in digest {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
