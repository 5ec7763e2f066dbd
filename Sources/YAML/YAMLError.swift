/// A YAML problem that stops reading the current file: a syntax error from libyaml, or a limit we enforce.
public struct YAMLError: Error, Sendable, Equatable {
    /// What went wrong, in libyaml's words where it comes from libyaml.
    public var message: String
    /// Where it went wrong.
    public var mark: Mark
    /// A suggestion for the operator, if one helps.
    public var hint: String?

    /// Creates an error.
    public init(message: String, mark: Mark, hint: String? = nil) {
        self.message = message
        self.mark = mark
        self.hint = hint
    }
}
