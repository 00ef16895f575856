internal import Crypto
package import Foundation
internal import VigilEngine
package import VigilFormats
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
/// longer matches), a deleted or reordered one (`seq` or `prev` breaks). Removing entries from
/// the *end* leaves a valid shorter chain: compare the head (`seq`, `hash`) that verify prints
/// with one kept elsewhere (the server reports it at /v1/ledger/head and in each monitor
/// response) to detect that.
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
    package init(path: String, sync: Bool = true) throws {
        self.path = path
        self.sync = sync
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw VigilError(.io, "\(path): cannot open the audit ledger (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw VigilError(.io, "\(path): the audit ledger is in use by another process (flock); one server per ledger")
        }
        let data = FileManager.default.contents(atPath: path) ?? Data()
        var notes: [String] = []
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
        let report = Self.verify(data: data.prefix(validLength), file: path)
        if let problem = report.problems.first {
            Glibc.close(fd)
            throw VigilError(.io, "\(path): the audit ledger fails verification, refusing to append to it: \(problem)")
        }
        self.fd = fd
        self.notes = notes
        entries = report.entries
        lastSeq = report.headSeq
        lastHash = report.headHash
        _ = lseek(fd, 0, SEEK_END)
    }

    /// The entries read at open (for rebuilding counters); emptied by `releaseEntries()`.
    package private(set) var entries: [[String: JSONValue]]

    package func releaseEntries() { entries = [] }

    deinit { close() }

    /// Releases the file and its lock (the server calls it when it stops).
    package func close() {
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
        precondition(made.count == count, "AuditLedger.append: bodies(count) mismatch")
        let time = Self.timestamp()
        var out = ""
        out.reserveCapacity(count * 400)
        var prev = lastHash
        for (i, body) in made.enumerated() {
            let unsigned = "{\"seq\":\(first + i),\"time\":\"\(time)\",\(body),\"prev\":\"\(prev)\"}"
            let hash = Self.sha256Hex(unsigned.utf8)
            out += unsigned.dropLast()
            out += ",\"hash\":\"\(hash)\"}\n"
            prev = hash
        }
        try out.utf8.withContiguousStorageIfAvailable { buf in try writeAll(buf) } ?? writeAll(Array(out.utf8))
        if sync, fdatasync(fd) != 0 {
            throw VigilError(.io, "\(path): fdatasync failed (\(String(cString: strerror(errno)))); the entries are not durable")
        }
        lastSeq = first + count - 1
        lastHash = prev
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

    private static let hexDigits = Array("0123456789abcdef".utf8)

    package static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String {
        let digest = SHA256.hash(data: Array(bytes))
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in digest {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

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

    package struct Report: Sendable {
        package var entries: [[String: JSONValue]] = []
        /// Each line's stored hash, in file order.
        package var hashes: [String] = []
        package var headSeq = 0
        package var headHash = AuditLedger.genesis
        /// Each break in the chain, naming the line, the sequence number and what is wrong.
        package var problems: [String] = []
    }

    /// Verifies a ledger file without opening it for writing (`vigil ledger verify`).
    package static func verify(path: String) throws -> Report {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.io, "\(path): cannot read the audit ledger")
        }
        return verify(data: data, file: path)
    }

    /// Checks every line: its hash, `prev` = the previous line's hash, `seq` = previous + 1.
    /// Stops collecting after 20 problems.
    package static func verify(data: Data, file: String) -> Report {
        var report = Report()
        var prev = genesis
        var expectedSeq = 1
        let hashKey = Array(",\"hash\":\"".utf8)
        var lineNo = 0
        var start = data.startIndex
        let bytes = [UInt8](data)
        var i = 0
        start = 0
        while start < bytes.count, report.problems.count < 20 {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            lineNo += 1
            defer { start = end + 1 }
            let line = bytes[start..<end]
            if end == bytes.count {
                report.problems.append("line \(lineNo): the final entry has no newline (torn write)")
            }
            // The hash field: the last `,"hash":"` followed by 64 hex digits and `"}`.
            guard line.count > hashKey.count + 66, line.suffix(2).elementsEqual(Array("\"}".utf8)),
                  line[line.endIndex - 66 - hashKey.count..<line.endIndex - 66].elementsEqual(hashKey) else {
                report.problems.append("line \(lineNo): not a ledger entry (it must end with ,\"hash\":\"<64 hex>\"})")
                continue
            }
            let storedHash = String(decoding: line[(line.endIndex - 66)..<(line.endIndex - 2)], as: UTF8.self)
            var unsigned = Array(line[line.startIndex..<(line.endIndex - 66 - hashKey.count)])
            unsigned.append(UInt8(ascii: "}"))
            let actual = sha256Hex(unsigned)
            guard case .object(let obj)? = try? JSONValue.parse(Data(unsigned)) else {
                report.problems.append("line \(lineNo): not a JSON object")
                continue
            }
            let seq: Int = { if case .number(let d)? = obj["seq"] { return Int(d) } else { return -1 } }()
            let entryPrev: String = { if case .string(let s)? = obj["prev"] { return s } else { return "" } }()
            if actual != storedHash {
                report.problems.append("line \(lineNo) (seq \(seq)): hash is \(storedHash) but the entry hashes to \(actual); the entry was edited")
            }
            if seq != expectedSeq {
                report.problems.append("line \(lineNo): seq \(seq) where \(expectedSeq) was expected; an entry was deleted, inserted or moved")
            }
            if entryPrev != prev {
                report.problems.append("line \(lineNo) (seq \(seq)): prev is \(entryPrev.prefix(16))... but the previous entry's hash is \(prev.prefix(16))...; the chain is broken (an entry before it was deleted, edited or moved)")
            }
            report.entries.append(obj)
            report.hashes.append(storedHash)
            prev = storedHash
            expectedSeq = seq + 1
            report.headSeq = seq
            report.headHash = storedHash
            i += 1
        }
        _ = i
        return report
    }
}
