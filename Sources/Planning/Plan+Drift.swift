import Manifests

/// Drift: an owned object changed behind StackLab's back. `stacklab drift` lists it; the service's `stacklab_drift`
/// gauge counts it. One definition for both.
public struct Drift: Sendable {
    /// How the object differs from what StackLab made it.
    public enum Kind: String, Sendable, Codable {
        /// Its observed state differs from the spec StackLab stamped on it (memory or vCPUs changed by hand, a
        /// ruleset edited, a ring file replaced).
        case drifted
        /// It is not in its desired power state.
        case powerState = "power state"
        /// StackLab created it, and it is gone.
        case missing
    }

    /// The change that heals it.
    public var change: Change
    public var kind: Kind
}

extension Plan {
    /// The changes of this plan that heal drift: an object whose observed state differs from the spec StackLab stamped
    /// on it, always; and, where the manifests cannot have asked for the change, a power state that is not the
    /// desired one and a created object that is gone. `asApplied` says whether a region is planned from the manifests
    /// StackLab last converged it to (nothing there asks for a change); `created` whether StackLab created an object
    /// before (a recorded placement): creating it again heals a deletion at any revision. Changes a new revision asks
    /// for, due schedules, retention and settling rings are not drift.
    public func drift(asApplied: (String) -> Bool, created: (Address) -> Bool = { _ in false }) -> [Drift] {
        changes.compactMap { change in
            let applied = asApplied(change.target.region)
            switch (change.action, change.reason) {
            case (.update, .drifted), (.create, .drifted), (.replace, .drifted): return Drift(change: change, kind: .drifted)
            case (.power, .powerState) where applied: return Drift(change: change, kind: .powerState)
            case (.create, .new) where applied || created(change.address): return Drift(change: change, kind: .missing)
            default: return nil
            }
        }
    }
}
