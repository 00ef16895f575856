package import Foundation

/// A signature record (docs/FORMATS.md, "Signature record"): a person's Ed25519 signature over
/// a package's identity (package digest, model, policy), the change-control folder's digest,
/// who signed, in what role, when and what the signature means (21 CFR 11.50). A JSON file in
/// the package's `signatures/` folder; several may coexist (author, reviewer, QA).
///
/// The bytes signed are `canonicalMessage`, a domain-tagged text of the fields, never the
/// JSON as written, so that re-serialising a record (key order, spacing, escapes) cannot
/// change what was signed and no JSON parser differential can make two readers disagree.
package struct PackageSignature: Sendable, Equatable {
    package static let schema = "vigil.signature/1"
    /// The first line of the signed text.
    package static let domainTag = "vigil-package-signature:v1"

    package var packageDigest: String
    package var modelName: String
    package var modelVersion: String
    package var modelSHA256: String
    /// The policy's SHA-256, nil for a package without a policy.
    package var policySHA256: String?
    /// `ChangeControlDigest` of the change-control folder the signer approved, if any.
    package var changeControlDigest: String?
    package var signer: String
    package var role: String
    package var meaning: String
    /// RFC 3339 UTC to the second: `2026-12-03T09:14:05Z`.
    package var time: String
    /// The raw 32-byte Ed25519 public key.
    package var publicKey: [UInt8]
    /// `Ed25519PublicKey.id(of: publicKey)`.
    package var keyID: String
    /// The 64-byte Ed25519 signature of `canonicalMessage`.
    package var signature: [UInt8]

    /// Longest signer, role or meaning, in bytes of UTF-8.
    package static let maxTextBytes = 200
    /// Longest model name or version a record may carry.
    package static let maxNameBytes = 1024

    /// The text signed: the domain tag, then one `name: value` line per field in this fixed
    /// order, each value a JSON string literal (`JSON.string`) or `null`, each line ending in a
    /// line feed.
    package var canonicalMessage: [UInt8] {
        func q(_ s: String?) -> String { s.map(JSON.string) ?? "null" }
        let lines: [(String, String?)] = [
            ("package_digest", packageDigest), ("model_name", modelName), ("model_version", modelVersion),
            ("model_sha256", modelSHA256), ("policy_sha256", policySHA256), ("change_control_digest", changeControlDigest),
            ("signer", signer), ("role", role), ("meaning", meaning), ("time", time),
            ("public_key", publicKey.base64), ("key_id", keyID),
        ]
        return Array((Self.domainTag + "\n" + lines.map { "\($0.0): \(q($0.1))\n" }.joined()).utf8)
    }

    /// The record as written to its file (keys in this order, two-space indents).
    package var json: String {
        let o: JSONOutput = .object([
            ("schema", .string(Self.schema)),
            ("package_digest", .string(packageDigest)),
            ("model", .object([("name", .string(modelName)), ("version", .string(modelVersion)), ("sha256", .string(modelSHA256))])),
            ("policy_sha256", policySHA256.map { .string($0) } ?? .null),
            ("change_control_digest", changeControlDigest.map { .string($0) } ?? .null),
            ("signer", .string(signer)), ("role", .string(role)), ("meaning", .string(meaning)),
            ("time", .string(time)),
            ("public_key", .string(publicKey.base64)), ("key_id", .string(keyID)),
            ("signature", .string(signature.base64)),
        ])
        return o.text() + "\n"
    }

    // MARK: - Rules

    /// Why `text` may not be a signer, role or meaning, or nil: non-empty (not only spaces), at
    /// most `maxTextBytes` bytes, no control characters (C0, DEL, C1), no line or paragraph
    /// separators and no bidirectional overrides (which can make a shown meaning read otherwise).
    package static func textProblem(_ text: String) -> String? {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { return "must not be empty" }
        if text.utf8.count > maxTextBytes { return "is longer than \(maxTextBytes) bytes" }
        for u in text.unicodeScalars {
            switch u.value {
            case 0x00...0x1F, 0x7F...0x9F: return "must not contain control characters (U+\(String(format: "%04X", u.value)))"
            case 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F:
                return "must not contain line separators or bidirectional controls (U+\(String(format: "%04X", u.value)))"
            default: continue
            }
        }
        return nil
    }

    /// `date` as RFC 3339 UTC to the second.
    package static func timeText(_ date: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ldZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// Whether `s` is exactly `YYYY-MM-DDTHH:MM:SSZ` naming a real instant (month 1-12, a day
    /// the month has, hour < 24, minute and second < 60).
    package static func isTime(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 20 else { return false }
        let digitsAt = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        guard digitsAt.allSatisfy({ (0x30...0x39).contains(b[$0]) }),
              b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b[19] == 0x5A else { return false }
        func n(_ i: Int, _ len: Int) -> Int { (i..<(i + len)).reduce(0) { $0 * 10 + Int(b[$1] - 0x30) } }
        let (y, mo, d, h, mi, se) = (n(0, 4), n(5, 2), n(8, 2), n(11, 2), n(14, 2), n(17, 2))
        guard (1...12).contains(mo), d >= 1, h < 24, mi < 60, se < 60 else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
        return d <= days
    }

    /// The file name a record takes in `signatures/`: the signer as a slug (lowercase ASCII
    /// letters and digits, other runs as one `-`, at most 40 characters; `signer` if nothing
    /// is left) and the time without separators: `jane-doe-20261203T091405Z.json`.
    package static func fileStem(signer: String, time: String) -> String {
        var slug = ""
        for u in signer.lowercased().unicodeScalars {
            if u.isASCII, u.properties.isAlphabetic || ("0"..."9").contains(u) {
                slug.unicodeScalars.append(u)
            } else if !slug.isEmpty, !slug.hasSuffix("-") {
                slug += "-"
            }
            if slug.count >= 40 { break }
        }
        while slug.hasSuffix("-") { slug.removeLast() }
        if slug.isEmpty { slug = "signer" }
        let compact = time.filter { $0 != "-" && $0 != ":" }
        return "\(slug)-\(compact)"
    }

    // MARK: - Reading

    /// A record from the bytes of its file, checked strictly: UTF-8 JSON, an object with
    /// exactly the schema's keys, each of its type and rule. Throws `VigilError(.input)` whose
    /// message names the field, the value (cut to a readable length) and the rule; never traps.
    package static func parse(_ data: Data) throws -> PackageSignature {
        guard String(validating: data, as: UTF8.self) != nil else {
            throw VigilError(.input, "not UTF-8 text; a signature record is a JSON file")
        }
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch let e as JSONValue.ParseError {
            throw VigilError(.input, "not valid JSON: \(e.description)")
        }
        guard case .object(let o) = root else { throw VigilError(.input, "must be a JSON object (schema \(schema))") }
        func fail(_ key: String, _ rule: String) -> VigilError {
            VigilError(.input, "field '\(key)': value \(o[key].map { Untrusted.quote(show($0)) } ?? "(absent)") \(rule)")
        }
        // The schema first: a record of another schema is refused as such, not by its keys.
        guard case .string(let s)? = o["schema"] else { throw fail("schema", "must be the string \"\(schema)\"") }
        guard s == schema else { throw fail("schema", "is not a known signature schema (this Vigil reads \(schema))") }
        let allowed: Set<String> = ["schema", "package_digest", "model", "policy_sha256", "change_control_digest", "signer", "role", "meaning", "time", "public_key", "key_id", "signature"]
        if let unknown = o.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw VigilError(.input, "field '\(Untrusted.quote(unknown, limit: 40))': unknown in \(schema) (fields: \(allowed.sorted().joined(separator: ", ")))")
        }
        if let missing = allowed.sorted().first(where: { o[$0] == nil }) {
            throw VigilError(.input, "field '\(missing)': missing; \(schema) requires every field (null where the schema allows it)")
        }
        func string(_ key: String, in obj: [String: JSONValue], maxBytes: Int, fail: (String, String) -> VigilError) throws -> String {
            guard case .string(let s)? = obj[key] else { throw fail(key, "must be a string") }
            guard s.utf8.count <= maxBytes else { throw fail(key, "is longer than \(maxBytes) bytes") }
            return s
        }
        func hex(_ key: String, count: Int, in obj: [String: JSONValue], fail: (String, String) -> VigilError) throws -> String {
            let s = try string(key, in: obj, maxBytes: count, fail: fail)
            guard Untrusted.isLowercaseHex(s, count: count) else {
                throw fail(key, "must be \(count) lowercase hex digits")
            }
            return s
        }
        func optionalHex(_ key: String) throws -> String? {
            if case .null? = o[key] { return nil }
            guard case .string? = o[key] else { throw fail(key, "must be 64 lowercase hex digits or null") }
            return try hex(key, count: 64, in: o, fail: fail)
        }
        func text(_ key: String) throws -> String {
            let s = try string(key, in: o, maxBytes: 4 * maxTextBytes, fail: fail)
            if let problem = textProblem(s) { throw fail(key, problem) }
            return s
        }
        func base64(_ key: String, bytes: Int) throws -> [UInt8] {
            let s = try string(key, in: o, maxBytes: 4 * bytes, fail: fail)
            guard let d = Data(base64Encoded: s), d.count == bytes, d.base64EncodedString() == s else {
                throw fail(key, "must be the standard base64 (with padding) of exactly \(bytes) bytes")
            }
            return [UInt8](d)
        }
        let digest = try hex("package_digest", count: 64, in: o, fail: fail)
        guard case .object(let m)? = o["model"] else { throw fail("model", "must be an object {\"name\", \"version\", \"sha256\"}") }
        func failModel(_ key: String, _ rule: String) -> VigilError {
            VigilError(.input, "field 'model.\(Untrusted.quote(key, limit: 40))': value \(m[key].map { Untrusted.quote(show($0)) } ?? "(absent)") \(rule)")
        }
        if let unknown = m.keys.sorted().first(where: { !["name", "version", "sha256"].contains($0) }) {
            throw failModel(unknown, "is not a field of model (name, version, sha256)")
        }
        let name = try string("name", in: m, maxBytes: maxNameBytes, fail: failModel)
        let version = try string("version", in: m, maxBytes: maxNameBytes, fail: failModel)
        let modelSHA = try hex("sha256", count: 64, in: m, fail: failModel)
        let policy = try optionalHex("policy_sha256")
        let changeControl = try optionalHex("change_control_digest")
        let signer = try text("signer"), role = try text("role"), meaning = try text("meaning")
        let time = try string("time", in: o, maxBytes: 64, fail: fail)
        guard isTime(time) else { throw fail("time", "must be an RFC 3339 UTC time to the second, YYYY-MM-DDTHH:MM:SSZ") }
        let publicKey = try base64("public_key", bytes: 32)
        let keyID = try hex("key_id", count: 16, in: o, fail: fail)
        let signature = try base64("signature", bytes: 64)
        return PackageSignature(
            packageDigest: digest, modelName: name, modelVersion: version, modelSHA256: modelSHA, policySHA256: policy,
            changeControlDigest: changeControl, signer: signer, role: role, meaning: meaning, time: time,
            publicKey: publicKey, keyID: keyID, signature: signature)
    }

    /// A JSON value as an error message shows it.
    private static func show(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .number(let d): return Untrusted.integer(d).map(String.init) ?? JSON.number(d)
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "an array of \(a.count)"
        case .object(let o): return "an object of \(o.count) fields"
        }
    }
}

extension [UInt8] {
    var base64: String { Data(self).base64EncodedString() }
}
