internal import CLibgit2

/// A libgit2 failure: the operation we attempted, libgit2's error code and class, and its message.
public struct GitError: Error, Sendable, CustomStringConvertible {
    /// What StackLab was doing ("resolve revision 'main'").
    public var operation: String
    /// libgit2's return code (negative), e.g. -3 for "not found".
    public var code: Int32
    /// libgit2's message.
    public var message: String

    /// Whether the error means "no such object/reference/path".
    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }

    /// Creates an error.
    public init(operation: String, code: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.message = message
    }

    /// Human text: "git: resolve revision 'x': revspec 'x' not found".
    public var description: String { "git: \(operation): \(message)" }
}

/// Calls libgit2, throwing its last error when the call returns a negative code.
@discardableResult
func check(_ operation: @autoclosure () -> String, _ result: Int32) throws(GitError) -> Int32 {
    guard result < 0 else { return result }
    let message = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "error \(result)"
    throw GitError(operation: operation(), code: result, message: message)
}
