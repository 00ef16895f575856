/// Every error Vigil reports. The message names the thing that is wrong, the value and the rule,
/// so that a user can fix the input without reading code. Never a trap: loaders and parsers throw.
public struct VigilError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// A model file that cannot be read as its format (truncated, corrupt, unknown value).
        case modelFormat
        /// A model that parses but breaks a rule of the IR (a split on a missing feature, a cycle).
        case modelInvalid
        /// A manifest or policy that is malformed or disagrees with the model.
        case package
        /// Input data that breaks a rule (a missing column, text in a numeric field).
        case input
        /// A file that cannot be opened, read or written.
        case io
        /// A command-line usage error.
        case usage
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// `file: location: message`, e.g. `model.txt: line 41 (Tree=3, decision_type): value 16 ...`.
    package static func modelFormat(_ file: String, at location: String, _ message: String) -> VigilError {
        VigilError(.modelFormat, "\(file): \(location): \(message)")
    }

    package static func modelInvalid(_ message: String) -> VigilError {
        VigilError(.modelInvalid, message)
    }

    /// Names the place (file and line, or request), the field, the value and the rule:
    /// `cohort.csv: line 6, field 'chol': value 'abc' is not a number`.
    package static func input(at place: String, field: String, value: String, rule: String) -> VigilError {
        VigilError(.input, "\(place), field '\(field)': value '\(value)' \(rule)")
    }
}
