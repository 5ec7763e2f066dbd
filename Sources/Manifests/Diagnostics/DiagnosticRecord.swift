/// A diagnostic as JSON documents carry it: severity, message, hint, and where: file, line and column in the manifests,
/// or (for what is not in a file) nothing more.
public struct DiagnosticRecord: Codable, Sendable, Equatable {
    public var severity: Diagnostic.Severity
    public var message: String
    public var file: String?
    public var line: Int32?
    public var column: Int32?
    public var hint: String?

    /// A manifest diagnostic, its location resolved against `files`.
    public init(_ diagnostic: Diagnostic, files: SourceFiles) {
        severity = diagnostic.severity
        message = diagnostic.message
        hint = diagnostic.hint
        if let location = diagnostic.location {
            file = files[location.file].path
            line = location.line
            column = location.column
        }
    }

    /// An error or warning that has no place in a manifest file (a node, a store, an argument).
    public init(error message: String, hint: String? = nil, severity: Diagnostic.Severity = .error) {
        self.severity = severity
        self.message = message
        self.hint = hint
    }
}
