package import Foundation
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// The public keys whose signatures count (`--trusted-keys DIR`): every `*.pub` file in the
/// folder, each as `vigil ledger keygen` writes it (one line of 64 hex digits, the raw Ed25519
/// public key). Other files are ignored. A key file that group or others may write is refused
/// (whoever can write it can make their own key trusted), as is a folder with no key.
package struct TrustedKeys: Sendable {
    package let dir: String
    package let keys: [Ed25519PublicKey]
    package static let maxKeys = 1000

    package init(dir: String) throws {
        self.dir = dir
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw VigilError(.usage, "--trusted-keys \(dir): not a folder (give the folder of trusted *.pub key files)")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw VigilError(.usage, "--trusted-keys \(dir): cannot list the folder (\(error.localizedDescription))")
        }
        let pubs = names.filter { $0.hasSuffix(".pub") && !$0.hasPrefix(".") }.sorted()
        guard !pubs.isEmpty else {
            throw VigilError(.usage, "--trusted-keys \(dir): no *.pub key file (vigil ledger keygen writes one; copy each signer's .pub here)")
        }
        guard pubs.count <= Self.maxKeys else {
            throw VigilError(.usage, "--trusted-keys \(dir): \(pubs.count) key files, more than \(Self.maxKeys)")
        }
        var keys: [Ed25519PublicKey] = []
        for name in pubs {
            let path = (dir as NSString).appendingPathComponent(name)
            var st = stat()
            if stat(path, &st) == 0, st.st_mode & 0o022 != 0 {
                throw VigilError(.usage, "--trusted-keys \(path): mode \(String(st.st_mode & 0o777, radix: 8)) lets group or others write a trusted key; chmod 644 it")
            }
            keys.append(try Ed25519PublicKey(file: path, what: "--trusted-keys"))
        }
        self.keys = keys
    }

    package func contains(_ raw: [UInt8]) -> Bool { keys.contains { $0.raw == raw } }

    /// `N keys in DIR (ids a, b, ...)`, for messages.
    package var summary: String {
        let ids = keys.prefix(8).map(\.id).joined(separator: ", ")
        return "\(keys.count) trusted key\(keys.count == 1 ? "" : "s") in \(dir) (ids \(ids)\(keys.count > 8 ? ", ..." : ""))"
    }
}

/// The digest of a change-control folder (docs/FORMATS.md, "Change-control digest"): the
/// `PackageDigest` rule applied to every regular file under it, recursively, by path relative to
/// the folder, so that `cd DIR && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0
/// sha256sum | sha256sum` recomputes it. A symlink counts as the file it points to when that is
/// a regular file inside the folder; a symlink leaving the folder, dangling or to a folder, and
/// any special file (device, FIFO, socket) are refused, as is a name `sha256sum` would escape
/// (backslash, line feed).
package enum ChangeControlDigest {
    package static let maxFiles = 100_000
    static let maxDepth = 64

    package static func compute(dir: String) throws -> PackageDigest {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw VigilError(.usage, "--change-control \(dir): not a folder")
        }
        guard let root = realpath(dir, nil).map({ p in defer { free(p) }; return String(cString: p) }) else {
            throw VigilError(.usage, "--change-control \(dir): cannot resolve the path")
        }
        var files: [PackageDigest.File] = []
        func walk(_ relative: String, depth: Int) throws {
            guard depth <= maxDepth else { throw VigilError(.usage, "--change-control \(dir): folders nested deeper than \(maxDepth) levels at \(relative)") }
            let here = relative.isEmpty ? root : root + "/" + relative
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: here) } catch {
                throw VigilError(.io, "--change-control \(dir): cannot list \(relative.isEmpty ? "." : relative) (\(error.localizedDescription))")
            }
            for name in names.sorted() {
                let rel = relative.isEmpty ? name : relative + "/" + name
                let path = root + "/" + rel
                guard !name.contains("\\"), !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                    throw VigilError(.usage, "--change-control \(dir): '\(Untrusted.quote(rel))': a name with a backslash or a control character (sha256sum would escape its line)")
                }
                var st = stat()
                guard lstat(path, &st) == 0 else { throw VigilError(.io, "--change-control \(dir): cannot stat \(Untrusted.quote(rel))") }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: try walk(rel, depth: depth + 1)
                case S_IFREG: files.append(.init(path: rel, sha256: try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: path))))
                case S_IFLNK:
                    guard let target = realpath(path, nil).map({ p in defer { free(p) }; return String(cString: p) }) else {
                        throw VigilError(.usage, "--change-control \(dir): '\(Untrusted.quote(rel))' is a dangling symlink")
                    }
                    guard target.hasPrefix(root + "/") else {
                        throw VigilError(.usage, "--change-control \(dir): '\(Untrusted.quote(rel))' is a symlink leaving the folder (to \(Untrusted.quote(target))); the digest covers only the folder's own files")
                    }
                    var t = stat()
                    guard stat(target, &t) == 0, (t.st_mode & S_IFMT) == S_IFREG else {
                        throw VigilError(.usage, "--change-control \(dir): '\(Untrusted.quote(rel))' is a symlink to something other than a regular file")
                    }
                    files.append(.init(path: rel, sha256: try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: target))))
                default:
                    throw VigilError(.usage, "--change-control \(dir): '\(Untrusted.quote(rel))' is not a regular file, folder or symlink")
                }
                guard files.count <= maxFiles else { throw VigilError(.usage, "--change-control \(dir): more than \(maxFiles) files") }
            }
        }
        try walk("", depth: 0)
        guard !files.isEmpty else { throw VigilError(.usage, "--change-control \(dir): the folder holds no file") }
        return PackageDigest(files: files)
    }
}

/// One signature record checked against a loaded package and the trusted keys.
package struct SignatureCheck: Sendable {
    /// The record's path as read.
    package let path: String
    /// Its path inside the package (`signatures/x.json`), or `path` for a record elsewhere.
    package let name: String
    /// SHA-256 of the file's bytes; nil when it could not be read.
    package let fileSHA256: String?
    /// The record, when it parsed.
    package let record: PackageSignature?
    /// Why it does not count (field, value, rule); nil when it is valid.
    package let problem: String?

    package var isValid: Bool { problem == nil }
}

/// What the signatures of one package came to: every record checked, and the one that
/// qualifies it (the latest valid by `time`, then by name); `checked` is false when no trusted
/// keys were given (nothing was read).
package struct SignatureAdmission: Sendable {
    package let checks: [SignatureCheck]
    package let checked: Bool

    package static let unchecked = SignatureAdmission(checks: [], checked: false)

    package init(checks: [SignatureCheck], checked: Bool) {
        self.checks = checks
        self.checked = checked
    }

    package var qualifying: SignatureCheck? {
        checks.filter(\.isValid).max { a, b in
            let (ta, tb) = (a.record?.time ?? "", b.record?.time ?? "")
            return ta != tb ? ta < tb : a.name < b.name
        }
    }

    /// SHA-256 of the qualifying record's file (ledger entries' `signature_sha256`).
    package var signatureSHA256: String? { qualifying?.fileSHA256 }

    /// One warning per record that does not count.
    package var warnings: [String] {
        checks.compactMap { c in c.problem.map { "signature \(c.name) does not count: \($0)" } }
    }
}

/// Signing a package and checking its signatures (`vigil sign`, `vigil verify-signature`,
/// `vigil serve --require-signed`, and promotion of a new package in that mode).
package enum PackageSignatures {
    /// The folder of a package that holds its signature records (not in the package digest).
    package static let folder = "signatures"
    /// Largest signature record file read.
    package static let maxFileBytes = 64 << 10
    /// Most records one package's folder may hold.
    package static let maxRecords = 256

    /// Checks every record in the package's `signatures/` folder (`trustedKeys` given), or
    /// reads nothing (`.unchecked`, no keys). With `required`, throws unless one record is
    /// valid: by a trusted key, its signature good, its package digest, model SHA-256 and policy
    /// SHA-256 those of `model` as loaded. The error names the package, each record and why.
    package static func admit(model: VigilModel, trustedKeys: TrustedKeys?, required: Bool) throws -> SignatureAdmission {
        guard let trustedKeys else {
            if required { throw VigilError(.usage, "--require-signed needs --trusted-keys DIR (the public keys whose signatures count)") }
            return .unchecked
        }
        guard let dir = model.packageURL else {
            if required {
                throw VigilError(.package, "\(model.modelURL.path): a bare model file has no package digest and cannot be signed; --require-signed serves signed package folders only")
            }
            return SignatureAdmission(checks: [], checked: true)
        }
        let checks = try checkAll(model: model, packageDir: dir, trustedKeys: trustedKeys)
        let admission = SignatureAdmission(checks: checks, checked: true)
        if required, admission.qualifying == nil {
            let folder = dir.appendingPathComponent(Self.folder).path
            let why = checks.isEmpty
                ? "no signature record in \(folder) (vigil sign writes one)"
                : checks.map { "\($0.name): \($0.problem ?? "")" }.joined(separator: "; ")
            throw VigilError(.package, "model package \(dir.path) ('\(model.name)' \(model.version)): no valid signature by a trusted key (--require-signed): \(why)")
        }
        return admission
    }

    /// Every `*.json` record in the package's `signatures/` folder, sorted by name, checked.
    package static func checkAll(model: VigilModel, packageDir: URL, trustedKeys: TrustedKeys, changeControlDigest: String? = nil) throws -> [SignatureCheck] {
        let folder = packageDir.appendingPathComponent(Self.folder).path
        var st = stat()
        guard lstat(folder, &st) == 0 else { return [] }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw VigilError(.package, "\(folder): not a folder (a package's signatures/ is a folder of records, not a symlink or file)")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw VigilError(.io, "\(folder): cannot list the folder (\(error.localizedDescription))")
        }
        let records = names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
        guard records.count <= maxRecords else {
            throw VigilError(.package, "\(folder): \(records.count) records, more than \(maxRecords)")
        }
        return records.map { name in
            check(path: (folder as NSString).appendingPathComponent(name), name: "\(Self.folder)/\(name)", model: model, trustedKeys: trustedKeys, changeControlDigest: changeControlDigest)
        }
    }

    /// Checks one record file; never throws: what is wrong is the check's `problem`. The rules
    /// in order: a regular file of at most `maxFileBytes`, a well-formed record
    /// (`PackageSignature.parse`), `key_id` the id of `public_key`, the signature valid over the
    /// record's canonical text, the key trusted, and the record naming this package: package
    /// digest, model name, version and SHA-256, policy SHA-256 (and, if given, the change-control
    /// digest).
    package static func check(path: String, name: String? = nil, model: VigilModel, trustedKeys: TrustedKeys, changeControlDigest: String? = nil) -> SignatureCheck {
        let name = name ?? path
        func refuse(_ problem: String, sha: String? = nil, record: PackageSignature? = nil) -> SignatureCheck {
            SignatureCheck(path: path, name: name, fileSHA256: sha, record: record, problem: problem)
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { return refuse("cannot read the file (\(String(cString: strerror(errno))))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return refuse("not a regular file (a symlink or special file is not read as a record)") }
        guard st.st_size <= maxFileBytes else { return refuse("\(st.st_size) bytes, more than a signature record may hold (\(maxFileBytes))") }
        guard let handle = FileHandle(forReadingAtPath: path) else { return refuse("cannot open the file") }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: maxFileBytes + 1) ?? Data() else { return refuse("cannot read the file") }
        guard data.count <= maxFileBytes else { return refuse("more than \(maxFileBytes) bytes, more than a signature record may hold") }
        let sha = SHA256Digest.hex(of: data)
        let r: PackageSignature
        do { r = try PackageSignature.parse(data) } catch {
            return refuse((error as? VigilError)?.message ?? "\(error)", sha: sha)
        }
        func bad(_ problem: String) -> SignatureCheck { refuse(problem, sha: sha, record: r) }
        func cut(_ s: String) -> String { "\"\(Untrusted.quote(s, limit: 24))\"" }
        let key: Ed25519PublicKey
        do { key = try Ed25519PublicKey(raw: r.publicKey) } catch {
            return bad("field 'public_key': value \(cut(r.publicKey.base64)) is not an Ed25519 public key")
        }
        guard key.id == r.keyID else {
            return bad("field 'key_id': value \(cut(r.keyID)) is not the id of public_key (\(key.id)); the id is the first 8 bytes of the key's SHA-256")
        }
        guard key.isValidSignature(r.signature, for: r.canonicalMessage) else {
            return bad("field 'signature': value \(cut(r.signature.base64)) is not a valid Ed25519 signature of the record's fields by key \(r.keyID); a field was changed after signing")
        }
        guard trustedKeys.contains(r.publicKey) else {
            return bad("field 'key_id': value \(cut(r.keyID)) is not one of the \(trustedKeys.summary); the signer's key is not trusted")
        }
        guard let digest = model.packageDigest, r.packageDigest == digest else {
            return bad("field 'package_digest': value \(cut(r.packageDigest)) is not the package's digest (\(model.packageDigest ?? "none")); the package changed after it was signed")
        }
        guard r.modelSHA256 == model.sha256 else {
            return bad("field 'model.sha256': value \(cut(r.modelSHA256)) is not the model file's SHA-256 (\(model.sha256))")
        }
        guard r.modelName == model.name, r.modelVersion == model.version else {
            return bad("field 'model': \(cut(r.modelName)) \(cut(r.modelVersion)) is not the package's model '\(Untrusted.quote(model.name))' \(Untrusted.quote(model.version))")
        }
        let policy = model.policy.sha256.isEmpty ? nil : model.policy.sha256
        guard r.policySHA256 == policy else {
            return bad("field 'policy_sha256': value \(r.policySHA256.map(cut) ?? "null") is not the SHA-256 of the policy loaded (\(policy ?? "none")); the record was signed for another policy")
        }
        if let changeControlDigest, r.changeControlDigest != changeControlDigest {
            return bad("field 'change_control_digest': value \(r.changeControlDigest.map(cut) ?? "null") is not the digest of the given change-control folder (\(changeControlDigest))")
        }
        return SignatureCheck(path: path, name: name, fileSHA256: sha, record: r, problem: nil)
    }

    /// Signs the package `model` was loaded from: writes `signatures/<signer>-<time>.json`
    /// (0644, never overwriting; `-2`, `-3`... when that name is taken) and returns its path and
    /// the record. `changeControl` is a folder whose `ChangeControlDigest` the record carries.
    package static func sign(
        model: VigilModel, key: Ed25519SigningKey, signer: String, role: String, meaning: String,
        changeControl: String? = nil, now: Date = Date()
    ) throws -> (path: String, record: PackageSignature) {
        guard let dir = model.packageURL, let digest = model.packageDigest else {
            throw VigilError(.usage, "--package \(model.modelURL.path): a bare model file has no package digest; sign a package folder (manifest.json + model + policy)")
        }
        for (option, value) in [("--signer", signer), ("--role", role), ("--meaning", meaning)] {
            if let problem = PackageSignature.textProblem(value) {
                throw VigilError(.usage, "\(option): '\(Untrusted.quote(value))' \(problem)")
            }
        }
        let cc = try changeControl.map { try ChangeControlDigest.compute(dir: $0).hex }
        var record = PackageSignature(
            packageDigest: digest, modelName: model.name, modelVersion: model.version, modelSHA256: model.sha256,
            policySHA256: model.policy.sha256.isEmpty ? nil : model.policy.sha256, changeControlDigest: cc,
            signer: signer, role: role, meaning: meaning, time: PackageSignature.timeText(now),
            publicKey: key.publicKey.raw, keyID: key.publicKey.id, signature: [])
        record.signature = try key.signature(for: record.canonicalMessage)
        let folder = dir.appendingPathComponent(Self.folder).path
        var st = stat()
        if lstat(folder, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw VigilError(.usage, "\(folder): exists and is not a folder") }
        } else {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false) } catch {
                throw VigilError(.io, "\(folder): cannot create the folder (\(error.localizedDescription))")
            }
        }
        let stem = PackageSignature.fileStem(signer: signer, time: record.time)
        for n in 1...100 {
            let path = (folder as NSString).appendingPathComponent(n == 1 ? "\(stem).json" : "\(stem)-\(n).json")
            if lstat(path, &st) == 0 { continue }
            try KeyFile.create(path, text: record.json, mode: 0o644)
            return (path, record)
        }
        throw VigilError(.io, "\(folder): 100 records named \(stem) already")
    }
}

extension VigilModel {
    /// The package folder the model was loaded from; nil for a bare model file. (A manifest's
    /// model file is a name inside the folder, never a path.)
    package var packageURL: URL? { manifest == nil ? nil : modelURL.deletingLastPathComponent() }
}
