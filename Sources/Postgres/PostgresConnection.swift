internal import CLibpq
import Foundation

/// A value sent as a statement parameter (in PostgreSQL's text format).
public protocol PostgresEncodable {
    /// The value as PostgreSQL reads it in text format.
    var postgresText: String { get }
}

extension String: PostgresEncodable { public var postgresText: String { self } }
extension Int: PostgresEncodable { public var postgresText: String { String(self) } }
extension Int32: PostgresEncodable { public var postgresText: String { String(self) } }
extension Int64: PostgresEncodable { public var postgresText: String { String(self) } }
extension UInt64: PostgresEncodable { public var postgresText: String { String(self) } }
extension Double: PostgresEncodable { public var postgresText: String { "\(self)" } }
extension Bool: PostgresEncodable { public var postgresText: String { self ? "t" : "f" } }
extension Data: PostgresEncodable { public var postgresText: String { PostgresValue.bytea(self) } }

/// One connection to a PostgreSQL server through libpq, used by one caller at a time. Every statement has a
/// deadline (`statement_timeout`, and `connect_timeout` on connecting), and a transaction left idle (its process
/// paused or stuck between two statements) is ended by the server after `idle_in_transaction_session_timeout`, so
/// a frozen process cannot hold row locks forever. The settings travel in the connection's `options`, so they hold
/// after a reconnect too; a connection the server dropped is re-established before the next statement.
///
/// `@unchecked Sendable`: `lock` serialises every use of the `PGconn`, which libpq does not make thread-safe.
public final class PostgresConnection: @unchecked Sendable {
    private let lock = NSLock()
    private var handle: OpaquePointer?
    /// Where it connects, with any password removed (for messages).
    public let location: String

    /// Connects to `url` (`postgres://user@host:port/database?…`). `statementTimeout` bounds every statement (and
    /// every wait for a lock), in seconds; `idleTransactionTimeout` how long a transaction may sit idle between two
    /// statements before the server ends the session (default: `statementTimeout`); `connectTimeout` the connection,
    /// unless the URL sets its own.
    public init(url: String, connectTimeout: Int = 10, statementTimeout: Int = 60, idleTransactionTimeout: Double? = nil) throws(PostgresError) {
        location = Self.redacted(url)
        let idle = max(1000, Int(((idleTransactionTimeout ?? Double(statementTimeout)) * 1000).rounded()))
        let settings = ["statement_timeout=\(statementTimeout * 1000)", "lock_timeout=\(statementTimeout * 1000)",
                        "idle_in_transaction_session_timeout=\(idle)", "client_min_messages=warning"]
        let keywords = ["connect_timeout", "application_name", "keepalives_idle", "keepalives_interval", "keepalives_count", "options", "dbname"]
        let values = [String(connectTimeout), "stacklab", "10", "5", "3", settings.map { "-c \($0)" }.joined(separator: " "), url]
        handle = Self.connect(keywords: keywords, values: values)
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            let error = PostgresError.connection("connect to \(location)", handle)
            if let handle { PQfinish(handle) }
            self.handle = nil
            throw error
        }
        _ = PQsetErrorVerbosity(handle, PQERRORS_DEFAULT)
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    private static func connect(keywords: [String], values: [String]) -> OpaquePointer? {
        let keywordPointers = keywords.map { strdup($0) } + [nil]
        let valuePointers = values.map { strdup($0) } + [nil]
        defer {
            keywordPointers.forEach { free($0) }
            valuePointers.forEach { free($0) }
        }
        return keywordPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { keys in
            valuePointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { vals in
                PQconnectdbParams(keys.baseAddress, vals.baseAddress, 1)
            }
        }
    }

    /// Runs one statement (its own transaction) and returns its rows.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresRows {
        lock.lock()
        defer { lock.unlock() }
        try reconnectIfNeeded()
        return try run(sql, parameters)
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. A transaction that
    /// lost to a concurrent one (serialization failure, deadlock), or whose connection was lost before its commit
    /// (the server ended it, say, after the process was paused), is run again on a fresh connection, up to 5 times.
    /// A connection lost during the commit itself is not retried: whether it committed is unknown.
    public func transaction<T>(_ body: (PostgresTransaction) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        var attempt = 0
        while true {
            attempt += 1
            try reconnectIfNeeded()
            try run("BEGIN", [])
            let value: T
            do {
                value = try body(PostgresTransaction(connection: self))
            } catch {
                let lost = PQstatus(handle) != CONNECTION_OK
                if !lost { _ = try? run("ROLLBACK", []) }
                if attempt < 5, lost || (error as? PostgresError)?.isRetryable == true {
                    usleep(UInt32.random(in: 1_000...20_000) * UInt32(attempt))
                    continue
                }
                throw error
            }
            try run("COMMIT", [])
            return value
        }
    }

    private func reconnectIfNeeded() throws(PostgresError) {
        guard let handle else { throw PostgresError(operation: "use \(location)", message: "not connected") }
        if PQstatus(handle) != CONNECTION_OK {
            PQreset(handle)
            guard PQstatus(handle) == CONNECTION_OK else { throw PostgresError.connection("reconnect to \(location)", handle) }
        }
    }

    /// Runs a statement on the connection; the caller holds `lock`.
    @discardableResult
    fileprivate func run(_ sql: String, _ parameters: [(any PostgresEncodable)?]) throws(PostgresError) -> PostgresRows {
        let operation = String(sql.split(whereSeparator: \.isNewline).first?.prefix(60) ?? "")
        let texts = parameters.map { $0.map { strdup($0.postgresText) } ?? nil }
        defer { texts.forEach { free($0) } }
        let result: OpaquePointer? = texts.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            parameters.isEmpty
                ? PQexec(handle, sql)
                : PQexecParams(handle, sql, Int32(parameters.count), nil, values.baseAddress, nil, nil, 0)
        }
        guard let result else { throw PostgresError.connection(operation, handle) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], values: [], affected: Int(String(cString: PQcmdTuples(result))) ?? 0)
        case PGRES_TUPLES_OK:
            let columnCount = PQnfields(result)
            let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
            var values: [[String?]] = []
            values.reserveCapacity(Int(PQntuples(result)))
            for row in 0..<PQntuples(result) {
                values.append((0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                })
            }
            return PostgresRows(columns: columns, values: values, affected: Int(String(cString: PQcmdTuples(result))) ?? values.count)
        default:
            throw PostgresError.result(operation, result)
        }
    }
}

/// Statements inside one transaction (`PostgresConnection.transaction`).
public struct PostgresTransaction {
    let connection: PostgresConnection

    /// Runs one statement inside the transaction.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresRows {
        try connection.run(sql, parameters)
    }
}
