import ArgumentParser
import Foundation
import VigilEngine

/// `vigil sign`: an Ed25519 signature record over a package (docs/FORMATS.md, "Signature record").
struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign a model package: who, in what role, when and what the signature means.",
        discussion: """
            Writes PKG/signatures/<signer>-<time>.json: the package digest, the model's name, \
            version and SHA-256, the policy's SHA-256, the change-control folder's digest \
            (--change-control), signer, role, meaning and time (RFC 3339 UTC), the public key \
            and its id, and an Ed25519 signature of those fields (21 CFR 11.50: the printed name, \
            the time and the meaning of a signature). The key is an Ed25519 private key file as \
            `vigil ledger keygen` writes it (mode 0600). The package digest does not cover \
            signatures/, so several people can sign one package (author, reviewer, QA). Check \
            with vigil verify-signature; vigil serve --require-signed serves only signed packages.
            """)

    @Option(name: .customLong("package"), help: "Model package folder to sign.")
    var packagePath: String

    @Option(name: .long, help: "Ed25519 private key file (vigil ledger keygen; mode 0600).")
    var key: String

    @Option(name: .long, help: "The signer's printed name (1-200 bytes, no control characters).")
    var signer: String

    @Option(name: .long, help: "The signer's role, e.g. \"clinical safety officer\".")
    var role: String

    @Option(name: .long, help: "What the signature means, e.g. \"approved for production\".")
    var meaning: String

    @Option(name: .long, help: "Change-control folder (vigil change-control --out) whose digest the record carries.")
    var changeControl: String?

    func run() throws {
        try runReportingErrors {
            let signingKey = try Ed25519SigningKey(file: key, what: "--key")
            let model = try VigilModel.load(path: packagePath)
            for w in model.loadWarnings { FileHandle.standardError.write(Data("note: \(w)\n".utf8)) }
            let made = try PackageSignatures.sign(
                model: model, key: signingKey, signer: signer, role: role, meaning: meaning, changeControl: changeControl)
            print("wrote \(made.path)")
            print("key id \(made.record.keyID); package digest \(made.record.packageDigest); change-control digest \(made.record.changeControlDigest ?? "none")")
        }
    }
}

/// `vigil verify-signature`: checks a package's signature records against trusted public keys.
struct VerifySignature: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-signature",
        abstract: "Check a package's signature records against trusted public keys.",
        discussion: """
            Checks every record in PKG/signatures/ (or only --signature FILE): a well-formed \
            record, its Ed25519 signature valid over its fields, its key one of the *.pub files \
            in --trusted-keys, and its package digest, model SHA-256 and policy SHA-256 those of \
            the package as it loads now (with --change-control, also that folder's digest). \
            Prints one line per record, `ok: ...` or `refused: FILE: field, value, rule`; exits 1 \
            when no record is valid (with --signature: when that one is not).
            """)

    @Option(name: .customLong("package"), help: "Model package folder.")
    var packagePath: String

    @Option(name: .long, help: "Folder of trusted Ed25519 public key files (*.pub, as vigil ledger keygen writes them).")
    var trustedKeys: String

    @Option(name: .long, help: "Check only this record file.")
    var signature: String?

    @Option(name: .long, help: "Change-control folder the records must name (its digest).")
    var changeControl: String?

    func run() throws {
        try runReportingErrors {
            let trusted = try TrustedKeys(dir: trustedKeys)
            let model = try VigilModel.load(path: packagePath)
            guard let dir = model.packageURL else {
                throw VigilError(.usage, "--package \(packagePath): a bare model file has no package digest and no signatures; give a package folder")
            }
            let cc = try changeControl.map { try ChangeControlDigest.compute(dir: $0).hex }
            let checks: [SignatureCheck]
            if let signature {
                checks = [PackageSignatures.check(path: signature, model: model, trustedKeys: trusted, changeControlDigest: cc)]
            } else {
                checks = try PackageSignatures.checkAll(model: model, packageDir: dir, trustedKeys: trusted, changeControlDigest: cc)
            }
            guard !checks.isEmpty else {
                throw VigilError(.package, "\(dir.appendingPathComponent(PackageSignatures.folder).path): no signature record (vigil sign writes them)")
            }
            for c in checks {
                if let r = c.record, c.isValid {
                    print("ok: \(c.name): signer '\(Untrusted.quote(r.signer))', role '\(Untrusted.quote(r.role))', meaning '\(Untrusted.quote(r.meaning))', time \(r.time), key \(r.keyID); file sha256 \(c.fileSHA256 ?? "-")")
                } else {
                    print("refused: \(c.name): \(c.problem ?? "")")
                }
            }
            let valid = checks.filter(\.isValid).count
            print("\(valid) of \(checks.count) signature records valid for '\(model.name)' \(model.version), package digest \(model.packageDigest ?? "-")")
            if valid == 0 { throw ExitCode(1) }
        }
    }
}
