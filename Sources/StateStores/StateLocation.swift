import Foundation
import Postgres
import State
import StatePostgres
import StateSQLite
import Synchronization

/// Where a reconciler keeps its state: the embedded SQLite store in the state directory (the default), or a shared
/// PostgreSQL database (`--database postgres://…` or `$STACKLAB_DATABASE`), which several reconcilers use at once.
public enum StateLocation: Sendable, CustomStringConvertible {
    /// `stacklab.sqlite` in the state directory; regions are locked with files there.
    case embedded(directory: String)
    /// A PostgreSQL database; regions are leased in it. `role` is `serve` for a long-running reconciler.
    case postgres(url: String, leaseSeconds: Double, role: String)

    /// `database` (the program passes `--database`, else `$STACKLAB_DATABASE`) when it names a PostgreSQL database; else
    /// the state directory's store.
    public static func resolve(database: String?, stateDirectory: String, leaseSeconds: Double = 15, role: String = "apply") throws -> StateLocation {
        guard let url = database, !url.isEmpty else {
            return .embedded(directory: stateDirectory)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw StateLocationError(description: "--database takes a PostgreSQL URL (postgres://user@host:port/database), not '\(PostgresConnection.redacted(url))'; leave it out for the embedded store in --state-dir")
        }
        guard leaseSeconds >= 1 else { throw StateLocationError(description: "--lease-seconds must be at least 1, not \(leaseSeconds)") }
        return .postgres(url: url, leaseSeconds: leaseSeconds, role: role)
    }

    /// A bad `--database` or a store that cannot be opened.
    public struct StateLocationError: Error, CustomStringConvertible {
        public var description: String
    }

    public var description: String {
        switch self {
        case .embedded(let directory): "\(directory)/stacklab.sqlite"
        case .postgres(let url, _, _): PostgresStateCache.redacted(url)
        }
    }

    /// Opens the store, creating and migrating it if needed. One PostgreSQL store per database and process: its
    /// leases and its runs' fencing tokens live in that one object.
    public func open(clock: (@Sendable () -> Int64)? = nil) throws -> any StateBackend {
        switch self {
        case .embedded(let directory):
            return try SQLiteState(directory: directory, clock: clock)
        case .postgres:
            let state = try postgres()
            if let clock { state.setClock(clock) }
            return state
        }
    }

    /// The store if one exists (reading state never creates the embedded one); a PostgreSQL database always exists.
    public func existing(clock: (@Sendable () -> Int64)? = nil) throws -> (any StateBackend)? {
        switch self {
        case .embedded(let directory): try SQLiteState.existing(directory: directory, clock: clock)
        case .postgres: try open(clock: clock)
        }
    }

    /// How regions are held while they are applied: file locks in the state directory, or the database's leases.
    public func leases() throws -> any RegionLeases {
        switch self {
        case .embedded(let directory): LocalRegionLeases(stateDirectory: directory)
        case .postgres: PostgresRegionLeases(state: try postgres())
        }
    }

    /// The shared PostgreSQL store of this process for this database.
    public func postgres() throws -> PostgresState {
        guard case .postgres(let url, let leaseSeconds, let role) = self else {
            throw StateLocationError(description: "the state is in the embedded store, not PostgreSQL")
        }
        return try PostgresStateCache.shared.state(url: url, leaseSeconds: leaseSeconds, role: role)
    }

    /// Lets go of every lease this process holds (a graceful exit).
    public func close() {
        if case .postgres = self { PostgresStateCache.shared.closeAll() }
    }
}

/// One `PostgresState` per database URL in this process.
final class PostgresStateCache: Sendable {
    static let shared = PostgresStateCache()
    private let states = Mutex<[String: PostgresState]>([:])

    func state(url: String, leaseSeconds: Double, role: String) throws -> PostgresState {
        if let state = states.withLock({ $0[url] }) { return state }
        let state = try PostgresState(url: url, leaseSeconds: leaseSeconds, role: role)
        return states.withLock { cached in
            if let existing = cached[url] { return existing }
            cached[url] = state
            return state
        }
    }

    func closeAll() {
        for state in states.withLock({ Array($0.values) }) { state.close() }
    }

    static func redacted(_ url: String) -> String { PostgresConnection.redacted(url) }
}
