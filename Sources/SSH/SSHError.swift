internal import CLibssh2

/// An SSH failure: what we attempted, libssh2's code and its last message.
public struct SSHError: Error, Sendable, CustomStringConvertible {
    /// What StackLab was doing ("handshake with 127.0.0.2:2222").
    public var operation: String
    /// libssh2's error code (negative), or errno for socket errors.
    public var code: Int32
    /// The library's (or the system's) message.
    public var message: String

    /// Creates an error.
    public init(operation: String, code: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.message = message
    }

    /// Human text.
    public var description: String { "ssh: \(operation): \(message)" }

    static func last(_ operation: String, session: OpaquePointer?) -> SSHError {
        guard let session else { return SSHError(operation: operation, code: -1, message: "no session") }
        var text: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(session, &text, &length, 0)
        let message = text.map { String(cString: $0) } ?? "libssh2 error \(code)"
        return SSHError(operation: operation, code: code, message: message)
    }
}
