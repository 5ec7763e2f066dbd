internal import CLibpq

/// A PostgreSQL failure: what StackLab was doing, the server's SQLSTATE (nil when the connection itself failed)
/// and libpq's message.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What was attempted ("connect to 127.0.0.1:5432/stacklab", the statement's first words).
    public var operation: String
    /// The five-character SQLSTATE (`40001` serialization failure, `23505` unique violation…), when the server sent one.
    public var sqlState: String?
    /// libpq's (or the server's) message.
    public var message: String

    /// Creates an error.
    public init(operation: String, sqlState: String? = nil, message: String) {
        self.operation = operation
        self.sqlState = sqlState
        self.message = message
    }

    /// A conflict between concurrent transactions that a retry of the whole transaction resolves.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// A unique constraint refused the row.
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// Human text.
    public var description: String {
        "postgres: \(operation): \(message)\(sqlState.map { " (SQLSTATE \($0))" } ?? "")"
    }

    static func connection(_ operation: String, _ connection: OpaquePointer?) -> PostgresError {
        let message = connection.flatMap { PQerrorMessage($0) }.map { String(cString: $0) } ?? "out of memory"
        return PostgresError(operation: operation, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func result(_ operation: String, _ result: OpaquePointer) -> PostgresError {
        let message = PQresultErrorMessage(result).map { String(cString: $0) } ?? "unknown error"
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        return PostgresError(operation: operation, sqlState: state, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
