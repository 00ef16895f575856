internal import Foundation
internal import VigilEngine
#if canImport(Glibc)
internal import Glibc
#endif

/// A replica's name (`vigil serve --replica-id`, by default the host name, which Kubernetes
/// sets to the pod's name): written into every entry of the replica's ledger, shown by
/// `GET /v1/models` and `GET /v1/ledger/head`, and as the label of `vigil_replica_info` in
/// `/metrics`. It is short and plain so that it is safe in a file, a JSON string, a log line and
/// a Prometheus label: 1 to 63 bytes of ASCII letters, digits, `.`, `_`, `-` and `:` (a DNS label
/// or a pod name fits; a space, a quote, a slash or a control character does not).
package enum ReplicaID {
    package static let maxBytes = 63

    /// The rule, for messages.
    package static let rule = "must be 1 to \(maxBytes) bytes of ASCII letters, digits, '.', '_', '-' or ':'"

    package static func isValid(_ s: String) -> Bool {
        (1...maxBytes).contains(s.utf8.count) && s.utf8.allSatisfy { b in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ":")
        }
    }

    /// `given` when set (checked), else the host name (checked too: a host name that breaks the
    /// rule asks for --replica-id).
    package static func resolve(_ given: String?) throws -> String {
        if let given {
            guard isValid(given) else {
                throw VigilError(.usage, "--replica-id: '\(Untrusted.quote(given))' \(rule)")
            }
            return given
        }
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else {
            throw VigilError(.usage, "--replica-id: not given and the host name cannot be read (\(String(cString: strerror(errno)))); give --replica-id ID")
        }
        let host = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard isValid(host) else {
            throw VigilError(.usage, "--replica-id: not given, and the host name '\(Untrusted.quote(host))' \(rule); give --replica-id ID")
        }
        return host
    }
}
