internal import Crypto
package import Foundation
internal import VigilEngine
package import VigilJSON
#if canImport(Glibc)
internal import Glibc
#endif
internal import Dispatch
internal import CDispatch

/// The audit ledger: an append-only JSON Lines file, one entry per prediction and per outcome,
/// each entry carrying the SHA-256 of the previous one (a hash chain).
///
/// An entry is one line, its keys in a fixed order, `hash` last:
///
///     {"seq":7,"time":"...","kind":"prediction",...,"prev":"<64 hex>","hash":"<64 hex>"}
///
/// `hash` is the SHA-256 of the line's bytes with `,"hash":"..."` removed (so of the text that
/// ends `"prev":"<64 hex>"}`). `prev` is the previous entry's `hash` (64 zeros for the first),
/// `seq` counts from 1 without gaps. `verify` therefore detects an edited entry (its hash no
/// longer matches), a deleted or reordered one (`seq` or `prev` breaks). Without a secret, a
/// forger who recomputes every later hash, appends entries, or removes entries from the end
/// leaves a valid chain; two keys close that (docs/SERVER.md, "Ledger threat model"):
///
/// - **Keyed chain** (`--ledger-key`): line 1 is a chain header
///   `{"seq":1,...,"kind":"chain","chain":"hmac-sha256","key_id":"<16 hex>",...}` and every
///   `hash` (the header's too) is HMAC-SHA256(key, the line without its hash). The key id is the
///   first 8 bytes of the key's SHA-256; the key is never written.
/// - **Signed checkpoints** (`--ledger-signing-key`): an entry `kind: "checkpoint"` with
///   `covers_seq`, `covers_hash` (the entry before it) and an Ed25519 `signature` of
///   `LedgerEntry.checkpointMessage`, after the batch that brings the entries since the last
///   checkpoint to `checkpointEvery`, at start and at graceful shutdown.
///
/// Plain ledgers (no header) stay as they were and verify as before.
///
/// Replicas (`vigil serve --replica-id`): a server with a replica id writes it into every entry
/// right after `time` (`"replica":"vigil-0"`), so the hash chain, the HMAC and the checkpoints
/// cover it. Entries without it (ledgers written before replica ids) verify as before; a ledger
/// whose entries name two replicas fails verify, and a server refuses to extend a ledger whose
/// last replica id is not its own (one ledger per replica, each chain single-writer).
///
/// Durability: `append` writes a batch of entries with one `write` and one `fdatasync`
/// (group commit), and returns only after both; the server answers a request only after the
/// append of its entries returned. A line torn by a crash (no final newline) was therefore
/// never acknowledged: opening the ledger drops it and says so in `notes`.
///
/// One process at a time: the file is locked with `flock` while open.
package final class AuditLedger: @unchecked Sendable {
    package static let genesis = String(repeating: "0", count: 64)

    package let path: String
    private var fd: Int32
    private let lock = NSLock()
    package private(set) var lastSeq: Int
    package private(set) var lastHash: String
    /// What opening the ledger found worth saying (a torn final line that was dropped).
    package private(set) var notes: [String] = []
    /// Whether to fdatasync after each batch (always on in `vigil serve`; tests may switch it
    /// off to keep the suite fast on slow disks: they never kill the in-process server).
    package let sync: Bool

    /// Opens (or creates) the ledger, verifies the whole chain and returns it with its entries,
    /// for the caller to rebuild counters from. Refuses a ledger whose chain is broken.
    package init(path: String, sync: Bool = true, keys: Keys = Keys(), replicaID: String? = nil) throws {
        self.path = path
        self.sync = sync
        self.keys = keys
        self.replicaID = replicaID
        if let r = replicaID, !ReplicaID.isValid(r) {
            throw VigilError(.usage, "\(path): replica id '\(Untrusted.quote(r))' \(ReplicaID.rule)")
        }
        // 0600 whatever the umask: open creates with 0600 (the umask can only remove bits), and
        // fchmod sets it exactly; an existing ledger that group or others may access is
        // tightened to 0600 and the note says so (earlier versions created it 0644).
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw VigilError(.io, "\(path): cannot open the audit ledger (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw VigilError(.io, "\(path): the audit ledger is in use by another process (flock); one server per ledger")
        }
        var notes: [String] = []
        var st = stat()
        if fstat(fd, &st) == 0, st.st_mode & 0o777 != 0o600 {
            if st.st_size > 0 {
                notes.append("\(path): the audit ledger had mode \(String(st.st_mode & 0o777, radix: 8)); set to 0600 (it holds record ids, risks and decisions)")
            }
            guard fchmod(fd, 0o600) == 0 else {
                Glibc.close(fd)
                throw VigilError(.io, "\(path): cannot set the audit ledger's mode to 0600 (\(String(cString: strerror(errno))))")
            }
        }
        let data = FileManager.default.contents(atPath: path) ?? Data()
        var validLength = data.count
        if let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) {
            validLength = lastNewline + 1
        } else {
            validLength = 0
        }
        if validLength < data.count {
            notes.append("\(path): dropped a torn final entry of \(data.count - validLength) bytes (written during a crash, never acknowledged)")
            guard ftruncate(fd, off_t(validLength)) == 0 else {
                Glibc.close(fd)
                throw VigilError(.io, "\(path): cannot truncate the torn final entry (\(String(cString: strerror(errno))))")
            }
        }
        var verifyOptions = VerifyOptions()
        verifyOptions.hmacKey = keys.hmac
        verifyOptions.publicKey = keys.signing?.publicKey
        verifyOptions.allowUnsignedTail = true  // after a crash; the checkpoint at start covers it
        let report = Self.verify(data: data.prefix(validLength), file: path, options: verifyOptions)
        if let problem = report.problems.first {
            Glibc.close(fd)
            throw VigilError(.io, "\(path): the audit ledger fails verification, refusing to append to it: \(problem)")
        }
        // The scheme must match the key: a keyed ledger is extended only under its key, and a
        // plain one never becomes keyed half-way (start a new ledger to key it).
        if report.headSeq > 0 {
            if report.scheme == LedgerEntry.Chain.hmacSHA256, keys.hmac == nil {
                Glibc.close(fd)
                throw VigilError(.usage, "\(path): the audit ledger is keyed (HMAC-SHA256, key id \(report.keyID ?? "?")); start with --ledger-key and that key")
            }
            if report.scheme != LedgerEntry.Chain.hmacSHA256, keys.hmac != nil {
                Glibc.close(fd)
                throw VigilError(.usage, "\(path): the audit ledger is a plain SHA-256 chain of \(report.headSeq) entries; --ledger-key applies to a new ledger only (move this one aside and keep it, or serve without the key)")
            }
        }
        if let mine = replicaID, let theirs = report.replicaIDs.last, theirs != mine {
            Glibc.close(fd)
            throw VigilError(.usage, "\(path): the audit ledger belongs to replica '\(theirs)' but this server is replica '\(mine)'; one ledger per replica (start with --replica-id \(theirs), or give this replica its own ledger)")
        }
        self.fd = fd
        self.notes = notes
        entries = report.entries
        lastSeq = report.headSeq
        lastHash = report.headHash
        lastCheckpointSeq = report.lastCheckpointSeq
        _ = lseek(fd, 0, SEEK_END)
        // A new keyed ledger starts with its chain header; a signing server covers what it
        // found with a checkpoint.
        if lastSeq == 0, let hmac = keys.hmac {
            _ = try append(count: 1) { _ in [LedgerEntry.chainBody(scheme: LedgerEntry.Chain.hmacSHA256, keyID: hmac.id)] }
        }
        try checkpoint()
    }

    /// The keys a server writes the ledger with.
    package struct Keys: Sendable {
        /// HMAC-SHA256 chain key (`--ledger-key`).
        package var hmac: LedgerHMACKey?
        /// Ed25519 checkpoint signer (`--ledger-signing-key`).
        package var signing: LedgerSigningKey?
        /// A checkpoint follows the batch that brings the entries since the last one to this.
        package var checkpointEvery = 1000

        package init() {}
    }

    package let keys: Keys
    /// The replica id written into every entry (nil: none, as before replica ids).
    package let replicaID: String?
    /// Seq of the last checkpoint entry (0: none yet).
    package private(set) var lastCheckpointSeq = 0

    /// Appends a signed checkpoint covering the head, when there is a signing key and entries
    /// after the last checkpoint (the server calls it at start and at graceful shutdown).
    package func checkpoint() throws {
        lock.lock()
        defer { lock.unlock() }
        guard keys.signing != nil, fd >= 0, lastSeq > lastCheckpointSeq else { return }
        var out = ""
        var seq = lastSeq, hash = lastHash
        try appendCheckpoint(to: &out, seq: &seq, prev: &hash, time: Self.timestamp())
        try writeAll(Array(out.utf8))
        if sync, fdatasync(fd) != 0 {
            throw VigilError(.io, "\(path): fdatasync failed (\(String(cString: strerror(errno))))")
        }
        lastSeq = seq
        lastHash = hash
        lastCheckpointSeq = seq
    }

    /// The line `{"seq":..,"time":..,<body>,"prev":..,"hash":..}` for the entry after `seq`.
    private func line(seq: Int, time: String, body: String, prev: String) -> (text: String, hash: String) {
        let replica = replicaID.map { ",\"replica\":\(JSON.string($0))" } ?? ""
        let unsigned = "{\"seq\":\(seq),\"time\":\"\(time)\"\(replica),\(body),\"prev\":\"\(prev)\"}"
        let hash = keys.hmac.map { $0.mac(unsigned.utf8) } ?? Self.sha256Hex(unsigned.utf8)
        return (String(unsigned.dropLast()) + ",\"hash\":\"\(hash)\"}\n", hash)
    }

    private func appendCheckpoint(to out: inout String, seq: inout Int, prev: inout String, time: String) throws {
        guard let signing = keys.signing else { return }
        let signature = try signing.sign(LedgerEntry.checkpointMessage(coversSeq: seq, coversHash: prev))
        let body = LedgerEntry.checkpointBody(coversSeq: seq, coversHash: prev, publicKeyID: signing.publicKey.id, signature: signature)
        let l = line(seq: seq + 1, time: time, body: body, prev: prev)
        out += l.text
        seq += 1
        prev = l.hash
    }

    /// The entries read at open (for rebuilding counters); emptied by `releaseEntries()`.
    package private(set) var entries: [[String: JSONValue]]

    package func releaseEntries() { entries = [] }

    deinit { close() }

    /// Releases the file and its lock (the server calls it when it stops).
    /// With a signing key, a checkpoint covering the head is appended first (graceful stop)
    /// unless `checkpoint` is false (a start that failed).
    package func close(checkpoint: Bool = true) {
        if checkpoint { try? self.checkpoint() }
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// One entry's fields before chaining: a JSON object body without braces, e.g.
    /// `"kind":"prediction","model":"sepsis",...` (built by the caller in a fixed key order).
    /// `seq`, `time`, `prev` and `hash` are added here.
    package typealias Body = String

    /// Appends entries durably; returns their sequence numbers. The closure `bodies` receives
    /// the first sequence number so that bodies may mention their own (prediction ids).
    package func append(count: Int, bodies: (_ firstSeq: Int) -> [Body]) throws -> Range<Int> {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { throw VigilError(.io, "\(path): the audit ledger is closed (the server is stopping)") }
        let first = lastSeq + 1
        if count == 0 { return first..<first }
        let made = bodies(first)
        guard made.count == count else {
            throw VigilError(.io, "\(path): AuditLedger.append was given \(made.count) bodies for \(count) entries")
        }
        let time = Self.timestamp()
        var out = ""
        out.reserveCapacity(count * 400)
        var prev = lastHash
        for (i, body) in made.enumerated() {
            let l = line(seq: first + i, time: time, body: body, prev: prev)
            out += l.text
            prev = l.hash
        }
        var last = first + count - 1
        var checkpointed = false
        if keys.signing != nil, last - lastCheckpointSeq >= keys.checkpointEvery {
            try appendCheckpoint(to: &out, seq: &last, prev: &prev, time: time)
            checkpointed = true
        }
        try out.utf8.withContiguousStorageIfAvailable { buf in try writeAll(buf) } ?? writeAll(Array(out.utf8))
        if sync, fdatasync(fd) != 0 {
            throw VigilError(.io, "\(path): fdatasync failed (\(String(cString: strerror(errno)))); the entries are not durable")
        }
        lastSeq = last
        lastHash = prev
        if checkpointed { lastCheckpointSeq = last }
        return first..<(first + count)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBufferPointer { try writeAll($0) }
    }

    private func writeAll(_ buf: UnsafeBufferPointer<UInt8>) throws {
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                // Leave no partial line behind that a later append would glue onto.
                throw VigilError(.io, "\(path): write failed (\(String(cString: strerror(errno))))")
            }
            off += n
        }
    }

    package var head: (seq: Int, hash: String) {
        lock.lock()
        defer { lock.unlock() }
        return (lastSeq, lastHash)
    }

    // MARK: - Hashing and time

    package static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String { SHA256Digest.hex(of: bytes) }

    /// UTC, millisecond precision: `2026-11-22T16:40:03.123Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(ts.tv_nsec / 1_000_000))
    }

    // MARK: - Verification

    /// What a verification may check beyond the plain chain.
    package struct VerifyOptions: Sendable {
        /// The HMAC key of a keyed ledger: every hash is checked under it, and a ledger that is
        /// not keyed (or keyed with another key) fails.
        package var hmacKey: LedgerHMACKey?
        /// The checkpoint signer's public key: every checkpoint's signature is checked, and
        /// entries after the last checkpoint fail unless `allowUnsignedTail`.
        package var publicKey: LedgerPublicKey?
        /// Accept entries after the last checkpoint (a live server's ledger, or one after a crash).
        package var allowUnsignedTail = false
        /// The ledger must reach a checkpoint at this seq (with this hash when given): catches
        /// a ledger cut back to before a checkpoint the verifier saw earlier.
        package var expectCheckpoint: (seq: Int, hash: String?)?

        package init() {}
    }

    /// One problem: where (line, seq when read) and what.
    package struct Problem: Sendable, CustomStringConvertible {
        package var line: Int
        package var seq: Int?
        package var message: String
        package var description: String { message }
    }

    package struct Report: Sendable {
        package var entries: [[String: JSONValue]] = []
        /// Each line's stored hash, in file order.
        package var hashes: [String] = []
        package var headSeq = 0
        package var headHash = AuditLedger.genesis
        /// Each break in the chain, naming the line, the sequence number and what is wrong.
        package var problems: [String] { found.map(\.message) }
        /// The problems with their line and seq, in file order (the first names the first bad entry).
        package var found: [Problem] = []
        /// The chain scheme: "sha256" (plain) or "hmac-sha256".
        package var scheme = "sha256"
        /// The HMAC key id recorded in a keyed ledger's header.
        package var keyID: String?
        /// Seq of the last checkpoint entry (0: none), and of the last one whose signature was checked.
        package var lastCheckpointSeq = 0
        package var checkpoints = 0
        /// What this verification could not check, in words (printed by `vigil ledger verify`).
        package var limits: [String] = []
        /// The replica ids the entries name, in order of first appearance (empty: a ledger written
        /// without replica ids; more than one is a problem).
        package var replicaIDs: [String] = []
    }

    /// Verifies a ledger file without opening it for writing (`vigil ledger verify`).
    package static func verify(path: String, options: VerifyOptions = VerifyOptions()) throws -> Report {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.io, "\(path): cannot read the audit ledger")
        }
        return verify(data: data, file: path, options: options)
    }

    /// Checks every line: its fields (types and ranges, `LedgerEntry`), its hash (SHA-256, or
    /// HMAC-SHA256 when the ledger is keyed and the key is given), `prev` = the previous line's
    /// hash, `seq` = previous + 1, and each checkpoint (it covers the entry before it; its
    /// signature when the public key is given). Stops collecting after 20 problems.
    package static func verify(data: Data, file: String, options: VerifyOptions = VerifyOptions()) -> Report {
        var report = Report()
        var prev = genesis
        var expectedSeq = 1
        let hashKey = Array(",\"hash\":\"".utf8)
        var lineNo = 0
        let bytes = [UInt8](data)
        var start = 0
        var hmac: LedgerHMACKey?
        var unsignedCheckpoints = 0
        func problem(_ seq: Int?, _ message: String) {
            report.found.append(Problem(line: lineNo, seq: seq, message: message))
        }
        while start < bytes.count, report.found.count < 20 {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            lineNo += 1
            defer { start = end + 1 }
            let line = bytes[start..<end]
            if end == bytes.count {
                problem(nil, "line \(lineNo): the final entry has no newline (torn write)")
            }
            // The hash field: the last `,"hash":"` followed by 64 hex digits and `"}`.
            guard line.count > hashKey.count + 66, line.suffix(2).elementsEqual(Array("\"}".utf8)),
                  line[line.endIndex - 66 - hashKey.count..<line.endIndex - 66].elementsEqual(hashKey) else {
                problem(nil, "line \(lineNo): not a ledger entry (it must end with ,\"hash\":\"<64 hex>\"})")
                continue
            }
            let storedHash = String(decoding: line[(line.endIndex - 66)..<(line.endIndex - 2)], as: UTF8.self)
            var unsigned = Array(line[line.startIndex..<(line.endIndex - 66 - hashKey.count)])
            unsigned.append(UInt8(ascii: "}"))
            let obj: [String: JSONValue]
            do {
                guard case .object(let o) = try JSONValue.parse(Data(unsigned)) else {
                    problem(nil, "line \(lineNo): not a JSON object")
                    continue
                }
                obj = o
            } catch {
                problem(nil, "line \(lineNo): not JSON (\(Untrusted.quote("\(error)")))")
                continue
            }
            let fields = LedgerEntry.Fields(obj, place: "line \(lineNo)")
            let header: LedgerEntry.Header
            do { header = try LedgerEntry.Header(fields) } catch {
                problem(nil, Self.message(error))
                continue
            }
            let seq = header.seq
            let place = "line \(lineNo) (seq \(seq))"
            if let r = header.replica, !report.replicaIDs.contains(r) {
                if let earlier = report.replicaIDs.first {
                    problem(seq, "\(place): written by replica '\(r)' but earlier entries by replica '\(earlier)'; one ledger per replica (two servers shared this file, or ledgers were spliced)")
                }
                report.replicaIDs.append(r)
            }
            let f = LedgerEntry.Fields(obj, place: place)
            do { try LedgerEntry.check(kind: header.kind, f) } catch {
                problem(seq, Self.message(error))
            }
            // The scheme: a keyed ledger starts with a chain header.
            if header.kind == .chain {
                if lineNo != 1 {
                    problem(seq, "\(place): a chain header anywhere but the first line; an entry was inserted or the ledger spliced")
                } else if let chain = try? LedgerEntry.Chain(f) {
                    report.scheme = chain.scheme
                    report.keyID = chain.keyID
                    if let key = options.hmacKey {
                        if key.id == chain.keyID {
                            hmac = key
                        } else {
                            problem(seq, "\(place): the ledger is keyed with key id \(chain.keyID) but --key has id \(key.id)")
                        }
                    }
                }
            }
            if lineNo == 1, options.hmacKey != nil, report.scheme != LedgerEntry.Chain.hmacSHA256 {
                problem(seq, "\(place): the ledger is not keyed (a plain SHA-256 chain, no chain header on line 1), so the key cannot vouch for it: anyone who can write the file could have rewritten it")
            }
            // The hash.
            if report.scheme == LedgerEntry.Chain.hmacSHA256 {
                if let hmac {
                    let actual = hmac.mac(unsigned)
                    if actual != storedHash {
                        problem(seq, "\(place): hash is \(storedHash) but the entry's HMAC under the key is \(actual); the entry was edited, inserted or forged")
                    }
                }
            } else {
                let actual = sha256Hex(unsigned)
                if actual != storedHash {
                    problem(seq, "\(place): hash is \(storedHash) but the entry hashes to \(actual); the entry was edited")
                }
            }
            if seq != expectedSeq {
                problem(seq, "line \(lineNo): seq \(seq) where \(expectedSeq) was expected; an entry was deleted, inserted or moved")
            }
            if header.prev != prev {
                problem(seq, "\(place): prev is \(header.prev.prefix(16))... but the previous entry's hash is \(prev.prefix(16))...; the chain is broken (an entry before it was deleted, edited or moved)")
            }
            if header.kind == .checkpoint, let cp = try? LedgerEntry.Checkpoint(f) {
                report.checkpoints += 1
                if cp.coversSeq != seq - 1 || cp.coversHash != header.prev {
                    problem(seq, "\(place): the checkpoint covers seq \(cp.coversSeq) hash \(cp.coversHash.prefix(16))... but follows seq \(seq - 1) hash \(header.prev.prefix(16))...; it was moved or edited")
                }
                if let pk = options.publicKey {
                    if pk.id != cp.publicKeyID {
                        problem(seq, "\(place): the checkpoint is signed by key id \(cp.publicKeyID), not by the given public key (id \(pk.id))")
                    } else if !pk.isValid(signatureHex: cp.signature, for: LedgerEntry.checkpointMessage(coversSeq: cp.coversSeq, coversHash: cp.coversHash)) {
                        let after = report.lastCheckpointSeq
                        problem(seq, "\(place): the checkpoint's signature does not verify; an entry in seq \(after + 1)...\(cp.coversSeq) (after the previous checkpoint) was edited, inserted, deleted or reordered, or the checkpoint forged")
                    }
                } else {
                    unsignedCheckpoints += 1
                }
                report.lastCheckpointSeq = seq
            }
            report.entries.append(obj)
            report.hashes.append(storedHash)
            prev = storedHash
            expectedSeq = seq &+ 1
            report.headSeq = seq
            report.headHash = storedHash
        }
        // What the keys say about the end of the ledger.
        if options.publicKey != nil {
            if report.lastCheckpointSeq < report.headSeq {
                let text = report.lastCheckpointSeq == 0
                    ? "no signed checkpoint: entries 1...\(report.headSeq) are not covered by a signature"
                    : "entries after seq \(report.lastCheckpointSeq) are not covered by a signature (seq \(report.lastCheckpointSeq + 1)...\(report.headSeq): appended after the last checkpoint, by the server since then or by a forger)"
                if options.allowUnsignedTail {
                    report.limits.append(text)
                } else {
                    report.found.append(Problem(line: report.lastCheckpointSeq + 1, seq: report.lastCheckpointSeq + 1, message: text))
                }
            }
        }
        if let (seq, hash) = options.expectCheckpoint {
            if report.headSeq < seq {
                report.found.append(Problem(line: lineNo, seq: report.headSeq, message: "the ledger ends at seq \(report.headSeq), before the expected checkpoint at seq \(seq); entries were removed from the end (truncated)"))
            } else if seq >= 1, seq <= report.entries.count {
                let e = report.entries[seq - 1]
                if case .string("checkpoint")? = e["kind"] {} else {
                    report.found.append(Problem(line: seq, seq: seq, message: "entry seq \(seq) is not a checkpoint but --expect-checkpoint names it"))
                }
                if let hash, report.hashes[seq - 1] != hash {
                    report.found.append(Problem(line: seq, seq: seq, message: "entry seq \(seq) has hash \(report.hashes[seq - 1]) but --expect-checkpoint says \(hash)"))
                }
            }
        }
        // What this verification cannot see.
        if report.scheme == LedgerEntry.Chain.hmacSHA256, hmac == nil {
            report.limits.append("the ledger is keyed (HMAC-SHA256, key id \(report.keyID ?? "?")); without --key its hashes were not checked, only seq, prev and the fields")
        }
        if report.scheme != LedgerEntry.Chain.hmacSHA256, options.publicKey == nil {
            report.limits.append("plain SHA-256 chain checked without a key: an edit whose later hashes were recomputed, forged entries appended with recomputed hashes, and entries removed from the end all pass (give --key for a keyed ledger, --public-key for signed checkpoints, --expect-head or --expect-checkpoint for the end)")
        }
        if unsignedCheckpoints > 0 {
            report.limits.append("\(unsignedCheckpoints) checkpoint signatures not checked (give --public-key)")
        }
        return report
    }

    static func message(_ error: any Error) -> String {
        (error as? VigilError)?.message ?? "\(error)"
    }
}
