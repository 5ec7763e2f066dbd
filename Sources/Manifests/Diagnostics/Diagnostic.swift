/// A problem found in the manifests, at a place in a file (or, for repository-level problems, nowhere).
public struct Diagnostic: Sendable, Equatable {
    /// How bad it is.
    public enum Severity: String, Sendable, Codable, Comparable {
        case warning, error

        /// Errors sort after warnings.
        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs == .warning && rhs == .error }
    }

    /// How bad it is: errors fail validation, warnings don't.
    public var severity: Severity
    /// What is wrong, in the operator's words.
    public var message: String
    /// Where, if the problem has a place.
    public var location: SourceLocation?
    /// What to do about it, when a suggestion helps.
    public var hint: String?

    /// Creates a diagnostic.
    public init(_ severity: Severity, _ message: String, at location: SourceLocation?, hint: String? = nil) {
        self.severity = severity
        self.message = message
        self.location = location
        self.hint = hint
    }

    /// An error.
    public static func error(_ message: String, at location: SourceLocation?, hint: String? = nil) -> Diagnostic {
        Diagnostic(.error, message, at: location, hint: hint)
    }

    /// A warning.
    public static func warning(_ message: String, at location: SourceLocation?, hint: String? = nil) -> Diagnostic {
        Diagnostic(.warning, message, at: location, hint: hint)
    }
}
