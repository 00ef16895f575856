internal import VigilCore
package import VigilEngine
package import VigilFormats

/// The audit ledger's entry format, in one place: the bodies the server writes (prediction,
/// outcome, chain header, checkpoint) and the checked reading of them (verify, replay).
///
/// A body is the text between `"time":"..."` and `"prev"` of a ledger line, keys in a fixed
/// order (see `AuditLedger`). Reading never trusts the file: every number goes through
/// `Untrusted.integer(_:in:)` or a finiteness check, every string has a length limit, and a
/// field of the wrong type or a missing one is an error naming the line, the field and the rule.
package enum LedgerEntry {
    // MARK: - Kinds

    /// The kinds of entry a ledger may hold.
    package enum Kind: String, Sendable, CaseIterable {
        case prediction, outcome, checkpoint
        /// The first line of a keyed ledger: which scheme makes the `hash` fields.
        case chain
        /// A version switch without restart (`POST /v1/admin/models/{name}/promote`): which
        /// version a model's URL served before and after, and who asked.
        case deployment
    }

    /// Which side of a shadow deployment made an entry. Production entries carry no `role`
    /// field (the format before shadows); a shadow's carry `"role":"shadow"` and `shadow_of`,
    /// the production prediction the same request made.
    package enum Role: String, Sendable {
        case production, shadow
    }

    /// Longest string field read from a ledger line (ids, labels, names), in bytes.
    package static let maxStringBytes = 4096
    /// Most outputs, group labels or feature buckets one entry may hold.
    package static let maxArrayCount = 1 << 16
    /// Largest bucket index an entry may name (-1: missing or outside the reference).
    package static let maxBucket = 1 << 20

    // MARK: - Encoding

    /// `kind`, the model's identity, its policy's version and SHA-256 (`null` for a model
    /// without a policy file), the package digest (`null` for a bare model file), the SHA-256
    /// of the signature record that qualified the package (`null`: none checked or none valid)
    /// and the prediction id: what every prediction and outcome carries.
    /// A shadow's entries add `"role":"shadow","shadow_of":<production prediction id>`.
    static func commonFields(kind: Kind, model: VigilModel, signatureSHA256: String?, id: String, shadowOf: String? = nil) -> String {
        var s = "\"kind\":\"\(kind.rawValue)\",\"model\":\(JSON.string(model.name)),\"model_version\":\(JSON.string(model.version)),\"model_sha256\":\"\(model.sha256)\""
        s += ",\"policy_version\":\(JSON.string(model.policy.version)),\"policy_sha256\":" + (model.policy.sha256.isEmpty ? "null" : "\"\(model.policy.sha256)\"")
        s += ",\"package_digest\":" + (model.packageDigest.map { "\"\($0)\"" } ?? "null")
        s += ",\"signature_sha256\":" + (signatureSHA256.map { "\"\($0)\"" } ?? "null")
        s += ",\"prediction_id\":\(JSON.string(id))"
        if let shadowOf { s += ",\"role\":\"shadow\",\"shadow_of\":\(JSON.string(shadowOf))" }
        return s
    }

    /// A prediction: the record's id, the input's hash, outputs, threshold and decision (when the
    /// model makes decisions), group labels and the feature buckets that fed the monitor.
    static func predictionBody(model: VigilModel, signatureSHA256: String?, record r: PredictionRecord, id: String, inputHash: String, buckets: [Int], shadowOf: String? = nil) -> String {
        var s = commonFields(kind: .prediction, model: model, signatureSHA256: signatureSHA256, id: id, shadowOf: shadowOf)
        s += ",\"record_id\":\(JSON.string(r.id)),\"input_sha256\":\"\(inputHash)\""
        s += ",\"outputs\":[\(r.outputs.map(JSON.number).joined(separator: ","))]"
        if let t = r.threshold, let d = r.decision, let src = r.thresholdSource {
            s += ",\"threshold\":\(JSON.number(t)),\"threshold_source\":\(JSON.string(src.label)),\"decision\":\(d)"
        }
        s += ",\"group\":[\(r.groupLabels.map(JSON.string).joined(separator: ","))]"
        s += ",\"buckets\":[\(buckets.map(String.init).joined(separator: ","))]"
        return s
    }

    /// An outcome observed for an earlier prediction, with that prediction's risk, threshold,
    /// decision and groups repeated so that the entry reads on its own.
    static func outcomeBody(model: VigilModel, signatureSHA256: String?, id: String, label: Bool, risk: Double, threshold: Double?, decision: Bool?, labels: [String], shadowOf: String? = nil) -> String {
        var s = commonFields(kind: .outcome, model: model, signatureSHA256: signatureSHA256, id: id, shadowOf: shadowOf)
        s += ",\"label\":\(label),\"outputs\":[\(JSON.number(risk))]"
        if let t = threshold { s += ",\"threshold\":\(JSON.number(t))" }
        if let d = decision { s += ",\"decision\":\(d)" }
        s += ",\"group\":[\(labels.map(JSON.string).joined(separator: ","))]"
        return s
    }

    /// A promotion: the URL's model name, the version served before (`from`) and after (`to`),
    /// each as name, version, model SHA-256, package digest and qualifying signature's SHA-256
    /// (`null` when none), and who asked (`actor`, the admin endpoint's caller as given).
    static func deploymentBody(action: String, slot: String, from: VigilModel, fromSignature: String?, to: VigilModel, toSignature: String?, actor: String) -> String {
        func side(_ m: VigilModel, _ sig: String?) -> String {
            "{\"model\":\(JSON.string(m.name)),\"model_version\":\(JSON.string(m.version)),\"model_sha256\":\"\(m.sha256)\""
                + ",\"policy_sha256\":" + (m.policy.sha256.isEmpty ? "null" : "\"\(m.policy.sha256)\"")
                + ",\"package_digest\":" + (m.packageDigest.map { "\"\($0)\"" } ?? "null")
                + ",\"signature_sha256\":" + (sig.map { "\"\($0)\"" } ?? "null") + "}"
        }
        return "\"kind\":\"deployment\",\"action\":\(JSON.string(action)),\"slot\":\(JSON.string(slot)),\"from\":\(side(from, fromSignature)),\"to\":\(side(to, toSignature)),\"actor\":\(JSON.string(actor))"
    }

    /// The chain header (seq 1 of a keyed ledger): the scheme and the key's id, never the key.
    static func chainBody(scheme: String, keyID: String) -> String {
        "\"kind\":\"chain\",\"chain\":\(JSON.string(scheme)),\"key_id\":\(JSON.string(keyID))"
    }

    /// A signed checkpoint covering the entry before it (`covers_seq` = seq - 1, `covers_hash`
    /// = that entry's hash = this entry's `prev`).
    static func checkpointBody(coversSeq: Int, coversHash: String, publicKeyID: String, signature: String) -> String {
        "\"kind\":\"checkpoint\",\"covers_seq\":\(coversSeq),\"covers_hash\":\"\(coversHash)\",\"public_key_id\":\"\(publicKeyID)\",\"signature\":\"\(signature)\""
    }

    /// The bytes an Ed25519 checkpoint signs: a domain tag, the covered seq and hash.
    package static func checkpointMessage(coversSeq: Int, coversHash: String) -> [UInt8] {
        Array("vigil-ledger-checkpoint:v1:\(coversSeq):\(coversHash)".utf8)
    }

    // MARK: - Decoding

    /// Checked reads of one entry's fields; every error names `place` (line and seq).
    package struct Fields {
        package let object: [String: JSONValue]
        package let place: String

        package init(_ object: [String: JSONValue], place: String) {
            self.object = object
            self.place = place
        }

        func fail(_ key: String, _ rule: String) -> VigilError {
            let shown = object[key].map { Untrusted.quote("\($0)") } ?? "(absent)"
            return VigilError(.io, "\(place), field '\(key)': value \(shown) \(rule)")
        }

        package func string(_ key: String, maxBytes: Int = LedgerEntry.maxStringBytes) throws -> String {
            guard case .string(let s)? = object[key] else { throw fail(key, "must be a string") }
            guard s.utf8.count <= maxBytes else { throw fail(key, "is longer than \(maxBytes) bytes") }
            return s
        }

        /// A string of `count` lowercase hex digits (hashes, key ids, signatures).
        package func hex(_ key: String, count: Int) throws -> String {
            let s = try string(key, maxBytes: count)
            guard Untrusted.isLowercaseHex(s, count: count) else {
                throw fail(key, "must be \(count) lowercase hex digits")
            }
            return s
        }

        package func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int {
            guard case .number(let d)? = object[key] else { throw fail(key, "must be an integer in \(range.lowerBound)...\(range.upperBound)") }
            guard let i = Untrusted.integer(d, in: range) else {
                throw fail(key, "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }

        package func bool(_ key: String) throws -> Bool {
            guard case .bool(let b)? = object[key] else { throw fail(key, "must be true or false") }
            return b
        }

        /// `hex(key, count:)`, or nil when the field is absent (entries written before it
        /// existed) or `null` (nothing to hash, e.g. no policy file).
        package func optionalHex(_ key: String, count: Int) throws -> String? {
            switch object[key] { case nil, .null?: return nil; default: break }
            return try hex(key, count: count)
        }

        package func optionalBool(_ key: String) throws -> Bool? {
            switch object[key] { case nil, .null?: return nil; default: break }
            return try bool(key)
        }

        /// A number; `null` (how the writer shows a non-finite output) reads as NaN.
        package func number(_ key: String) throws -> Double {
            switch object[key] {
            case .number(let d)?: return d
            case .null?: return .nan
            default: throw fail(key, "must be a number")
            }
        }

        package func optionalNumber(_ key: String) throws -> Double? {
            if object[key] == nil { return nil }
            return try number(key)
        }

        func array(_ key: String) throws -> [JSONValue] {
            guard case .array(let a)? = object[key] else { throw fail(key, "must be an array") }
            guard a.count <= LedgerEntry.maxArrayCount else { throw fail(key, "holds more than \(LedgerEntry.maxArrayCount) items") }
            return a
        }

        package func numbers(_ key: String) throws -> [Double] {
            try array(key).enumerated().map { i, v in
                switch v {
                case .number(let d): return d
                case .null: return .nan
                default: throw fail(key, "item \(i) must be a number")
                }
            }
        }

        package func strings(_ key: String) throws -> [String] {
            try array(key).enumerated().map { i, v in
                guard case .string(let s) = v, s.utf8.count <= LedgerEntry.maxStringBytes else {
                    throw fail(key, "item \(i) must be a string of at most \(LedgerEntry.maxStringBytes) bytes")
                }
                return s
            }
        }

        package func integers(_ key: String, in range: ClosedRange<Int>) throws -> [Int] {
            try array(key).enumerated().map { i, v in
                guard case .number(let d) = v, let n = Untrusted.integer(d, in: range) else {
                    throw fail(key, "item \(i) must be an integer in \(range.lowerBound)...\(range.upperBound)")
                }
                return n
            }
        }
    }

    /// What every entry carries: `seq`, `time`, `kind`, `prev`; and `replica` when the server
    /// had a replica id (absent in ledgers written before replica ids: accepted).
    package struct Header: Sendable {
        package var seq: Int
        package var kind: Kind
        package var prev: String
        package var replica: String?
        /// `time` as seconds since 1970 (UTC); nil when it is not the writer's
        /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (verify does not require the form; the monitor's windows do).
        package var epochSeconds: Double?

        /// Largest sequence number a ledger may hold (2^53: exact in a JSON number).
        package static let maxSeq = 1 << 53

        package init(_ f: Fields) throws {
            seq = try f.integer("seq", in: 1...Header.maxSeq)
            epochSeconds = LedgerEntry.epochSeconds(try f.string("time", maxBytes: 64))
            let k = try f.string("kind", maxBytes: 64)
            guard let kind = Kind(rawValue: k) else {
                throw f.fail("kind", "is not a ledger entry kind (\(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            self.kind = kind
            prev = try f.hex("prev", count: 64)
            if f.object["replica"] != nil {
                let r = try f.string("replica", maxBytes: ReplicaID.maxBytes)
                guard ReplicaID.isValid(r) else { throw f.fail("replica", ReplicaID.rule) }
                replica = r
            }
        }
    }

    /// The fields of a prediction or outcome shared by both: model, its SHA-256, the policy's
    /// SHA-256 and the package digest (nil in entries written before issue 18, or `null`: no
    /// policy file, a bare model file), the signature record's SHA-256 (nil when absent, in
    /// entries written before signatures, or `null`: no valid signature checked), prediction id.
    package struct ModelRef: Sendable {
        package var model: String
        package var modelSHA256: String
        package var policySHA256: String?
        package var packageDigest: String?
        package var signatureSHA256: String?
        package var predictionID: String
        /// `.shadow` for a shadow's entries (then `shadowOf` is the production prediction's id).
        package var role: Role = .production
        package var shadowOf: String?

        package init(_ f: Fields) throws {
            model = try f.string("model")
            modelSHA256 = try f.string("model_sha256", maxBytes: 128)
            policySHA256 = try f.optionalHex("policy_sha256", count: 64)
            packageDigest = try f.optionalHex("package_digest", count: 64)
            signatureSHA256 = try f.optionalHex("signature_sha256", count: 64)
            predictionID = try f.string("prediction_id")
            if f.object["role"] != nil {
                let r = try f.string("role", maxBytes: 32)
                guard let role = Role(rawValue: r) else { throw f.fail("role", "is not a role (production, shadow)") }
                self.role = role
            }
            if role == .shadow {
                shadowOf = try f.string("shadow_of")
            } else if f.object["shadow_of"] != nil {
                throw f.fail("shadow_of", "belongs to a shadow's entry only (\"role\": \"shadow\")")
            }
        }
    }

    /// A prediction entry, as replay needs it.
    package struct Prediction: Sendable {
        package var ref: ModelRef
        package var outputs: [Double]
        package var labels: [String]
        package var buckets: [Int]
        package var decision: Bool?
        package var threshold: Double?

        package init(_ f: Fields) throws {
            ref = try ModelRef(f)
            _ = try f.string("record_id")
            outputs = try f.numbers("outputs")
            labels = try f.strings("group")
            buckets = try f.integers("buckets", in: -1...LedgerEntry.maxBucket)
            decision = try f.optionalBool("decision")
            threshold = try f.optionalNumber("threshold")
        }
    }

    /// An outcome entry.
    package struct Outcome: Sendable {
        package var ref: ModelRef
        package var label: Bool

        package init(_ f: Fields) throws {
            ref = try ModelRef(f)
            label = try f.bool("label")
            _ = try f.numbers("outputs")
            _ = try f.strings("group")
        }
    }

    /// A chain header.
    package struct Chain: Sendable {
        package var scheme: String
        package var keyID: String

        package static let hmacSHA256 = "hmac-sha256"

        package init(_ f: Fields) throws {
            scheme = try f.string("chain", maxBytes: 64)
            guard scheme == Chain.hmacSHA256 else { throw f.fail("chain", "is not a known chain scheme (\(Chain.hmacSHA256))") }
            keyID = try f.hex("key_id", count: 16)
        }
    }

    /// A deployment entry (a promotion).
    package struct Deployment: Sendable {
        package struct Side: Sendable {
            package var model: String
            package var modelVersion: String
            package var modelSHA256: String
            package var packageDigest: String?
        }

        package var action: String
        package var slot: String
        package var from: Side
        package var to: Side
        package var actor: String

        package init(_ f: Fields) throws {
            action = try f.string("action", maxBytes: 64)
            guard action == "promote" else { throw f.fail("action", "is not a deployment action (promote)") }
            slot = try f.string("slot")
            from = try Self.side(f, "from")
            to = try Self.side(f, "to")
            actor = try f.string("actor")
        }

        static func side(_ f: Fields, _ key: String) throws -> Side {
            guard case .object(let o)? = f.object[key] else { throw f.fail(key, "must be an object (model, model_version, model_sha256, policy_sha256, package_digest, signature_sha256)") }
            let g = Fields(o, place: "\(f.place), field '\(key)'")
            _ = try g.optionalHex("policy_sha256", count: 64)
            _ = try g.optionalHex("signature_sha256", count: 64)
            return Side(model: try g.string("model"), modelVersion: try g.string("model_version"), modelSHA256: try g.string("model_sha256", maxBytes: 128), packageDigest: try g.optionalHex("package_digest", count: 64))
        }
    }

    /// A checkpoint entry.
    package struct Checkpoint: Sendable {
        package var coversSeq: Int
        package var coversHash: String
        package var publicKeyID: String
        package var signature: String

        package init(_ f: Fields) throws {
            coversSeq = try f.integer("covers_seq", in: 0...Header.maxSeq)
            coversHash = try f.hex("covers_hash", count: 64)
            publicKeyID = try f.hex("public_key_id", count: 16)
            signature = try f.hex("signature", count: 128)
        }
    }

    /// Seconds since 1970 of a ledger time `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, as
    /// `AuditLedger.timestamp()` writes it), or nil for any other text or an impossible date.
    package static func epochSeconds(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard b.count == 24, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b[19] == 0x2E, b[23] == 0x5A else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13), let mi = num(14..<16),
              let sec = num(17..<19), let ms = num(20..<23),
              (1970...9999).contains(y), (1...12).contains(mo), (0...23).contains(h), (0...59).contains(mi), (0...60).contains(sec) else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[mo - 1]).contains(d) else { return nil }
        // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
        let yy = mo <= 2 ? y - 1 : y
        let era = yy / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86_400 + h * 3600 + mi * 60 + sec) + Double(ms) / 1000
    }

    /// Checks the body of an entry of `kind` (what verify does for every line).
    package static func check(kind: Kind, _ f: Fields) throws {
        switch kind {
        case .prediction: _ = try Prediction(f)
        case .outcome: _ = try Outcome(f)
        case .chain: _ = try Chain(f)
        case .checkpoint: _ = try Checkpoint(f)
        case .deployment: _ = try Deployment(f)
        }
    }
}
