import Foundation
import Manifests
import Testing
@testable import Planning

/// One definition of drift, for `stacklab drift` and the service's gauge: what changed behind StackLab's back, never
/// what the manifests ask for or the clock makes due.
@Suite struct DriftTests {
    static let node = Address(kind: .node, region: "lab", name: "n1")

    static func change(_ name: String, _ action: Change.Action, _ reason: Change.Reason, kind: Kind = .instance) -> Change {
        Change(address: Address(kind: kind, region: "lab", tenant: kind == .instance ? "acme" : nil, name: name), target: .node(node),
               action: action, reason: reason, operation: .setPower(domain: "acme:\(name)", running: true))
    }

    static let plan = Plan(revision: "r2", regions: ["lab"], observed: [:], changes: [
        change("edited", .update, .drifted),         // memory changed by hand
        change("stopped", .power, .powerState),       // off: by hand, or asked for
        change("gone", .create, .new),                // created before and deleted, or new in the manifests
        change("added", .create, .new),
        change("resized", .update, .specChanged),     // the manifests ask for it
        change("nightly", .create, .scheduled, kind: .snapshot),
    ], unmanaged: [], errors: [])

    @Test func atANewRevisionOnlyAStampedSpecThatDiffersAndARecordedObjectThatIsGoneAreDrift() {
        let drift = Self.plan.drift(asApplied: { _ in false }, created: { $0.name == "gone" || $0.name == "edited" })
        #expect(drift.map(\.change.address.name) == ["edited", "gone"])
        #expect(drift.map(\.kind) == [.drifted, .missing])
    }

    @Test func atTheAppliedRevisionPowerAndMissingObjectsAreDriftButSchedulesAndSpecChangesAreNot() {
        let drift = Self.plan.drift(asApplied: { $0 == "lab" })
        #expect(drift.map(\.change.address.name) == ["edited", "stopped", "gone", "added"])
        #expect(drift.map(\.kind) == [.drifted, .powerState, .missing, .missing])
        #expect(Self.plan.drift(asApplied: { $0 == "other" }).map(\.change.address.name) == ["edited"], "applied is per region")
    }
}
