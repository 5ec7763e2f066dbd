import Drivers
import Foundation
import State

/// Why a reconcile could not go ahead or did not converge: what kind of failure it is, what was being done, the
/// error underneath, and whether trying the same revision again can help. The service backs off and retries only
/// what is retryable; a terminal error waits for a new revision (or an operator's sync).
public struct ReconcileError: Error, CustomStringConvertible {
    /// The kinds of failure, each retryable or terminal by nature (a failed change is what its node said).
    public enum Kind: String, Sendable, Codable {
        /// A node could not be opened, observed or reached (timed out, refused, a lost connection): retryable.
        case nodeUnavailable = "node unavailable"
        /// The state store (SQLite or PostgreSQL) could not be read or written: retryable.
        case stateUnavailable = "state unavailable"
        /// The region is held by another run, or this run lost its lease: retryable.
        case regionBusy = "region busy"
        /// A region's object store (volume snapshots) could not be reached: retryable.
        case objectStoreUnavailable = "object store unavailable"
        /// A change failed on its node: retryable when the node said a retry may help.
        case changeFailed = "change failed"
        /// The nodes still differ from the manifests after applying: retryable (the next run plans what remains).
        case notConverged = "not converged"
        /// The request or the manifests cannot be planned as they are (an unknown region, no object store, a missing
        /// credential, a bad target): terminal until the manifests or the configuration change.
        case invalid
        /// A guard refused the plan (plan errors, mass delete, data loss, an older revision, a hold): terminal.
        case refused
    }

    public var kind: Kind
    /// What failed, as an operator reads it.
    public var message: String
    /// Whether trying the same revision again can help.
    public var isRetryable: Bool
    /// The error underneath, when there is one.
    public var cause: (any Error)?

    /// An error of `kind` (retryable as its kind is, unless said otherwise). A state store that holds a value this build
    /// cannot read (`StoredTextError`) is not retryable, whatever the kind: reading it again gives the same answer.
    public init(_ kind: Kind, _ message: String, cause: (any Error)? = nil, retryable: Bool? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
        isRetryable = retryable ?? (cause is StoredTextError ? false : Self.retryable(kind))
    }

    private static func retryable(_ kind: Kind) -> Bool {
        switch kind {
        case .nodeUnavailable, .stateUnavailable, .regionBusy, .objectStoreUnavailable, .changeFailed, .notConverged: true
        case .invalid, .refused: false
        }
    }

    public var description: String { message }

    /// Any error a run can throw, as a `ReconcileError`: a guard's refusal is terminal, a node's error is what the node
    /// said, a lease held elsewhere is retryable, an unreadable stored value is terminal; anything else (a store away, a
    /// file) is taken as retryable, since nothing says it is not.
    public init(classifying error: any Error) {
        switch error {
        case let known as ReconcileError:
            self = known
        case let refusal as ReconcileRun.Refusal:
            self.init(.refused, refusal.description, cause: refusal)
        case let driver as DriverError:
            self.init(.nodeUnavailable, driver.description, cause: driver, retryable: driver.isTransient)
        case let busy as any RegionBusy:
            self.init(.regionBusy, "\(busy)", cause: busy)
        default:
            self.init(.stateUnavailable, "\(error)", cause: error)
        }
    }
}
