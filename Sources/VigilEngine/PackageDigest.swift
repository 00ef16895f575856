internal import Foundation

/// The one digest of a model package (docs/FORMATS.md, "Package digest"): the SHA-256 of the
/// `sha256sum`-style lines `"<sha256 of the file>  <file name>\n"` of its manifest, model file,
/// policy and model card, sorted by file name as bytes (`LC_ALL=C`), so that an auditor can
/// recompute it with coreutils alone:
///
///     cd models/sepsis && sha256sum MODEL_CARD.md manifest.json model.txt policy.json | sha256sum
///
/// A file the package does not hold (no `policy.json`, no `MODEL_CARD.md`) has no line; the
/// manifest and the model file always have one. Each hash is of the bytes Vigil loaded (the
/// model card, which Vigil does not read, is hashed from the file).
package struct PackageDigest: Sendable, Equatable {
    /// One file the digest covers: its name inside the package folder and its SHA-256.
    package struct File: Sendable, Equatable {
        package let path: String
        package let sha256: String

        package init(path: String, sha256: String) {
            self.path = path
            self.sha256 = sha256
        }
    }

    /// The files covered, sorted by name as bytes.
    package let files: [File]
    /// The SHA-256 of `lines`, 64 lowercase hex digits.
    package let hex: String

    package static let policyFile = "policy.json"
    package static let modelCardFile = "MODEL_CARD.md"
    /// The names the package's own files take; a manifest's model file may not be one of them.
    package static let reservedNames: Set<String> = [Manifest.fileName, policyFile, modelCardFile]

    package init(files: [File]) {
        self.files = files.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        hex = SHA256Digest.hex(of: Self.lines(self.files).utf8)
    }

    /// The canonical text hashed: one `"<sha256>  <path>\n"` line per file, in `files`' order
    /// (the output of `sha256sum` given the names in that order).
    package static func lines(_ files: [File]) -> String {
        files.map { "\($0.sha256)  \($0.path)\n" }.joined()
    }
}
