internal import Foundation

/// Which attributions a record shows (`vigil score --explain all|K`).
public enum ExplainMode: Sendable, Equatable {
    /// The `k` features with the largest |contribution|, largest first, per output.
    case top(Int)
    /// Every feature's contribution, in feature order, and the base value.
    case all

    /// `all`, or a whole number K >= 1 (a K above the feature count shows every feature).
    public init(parsing text: String) throws(VigilError) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "all" {
            self = .all
        } else if let k = Int(t), k >= 1 {
            self = .top(k)
        } else {
            throw VigilError(.usage, "--explain takes 'all' or a whole number K >= 1 (the top K contributions), got '\(Untrusted.quote(text))'")
        }
    }
}
