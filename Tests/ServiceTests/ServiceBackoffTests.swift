import Foundation
import Logging
import Manifests
import Processes
import Drivers
import Reconcile
import State
import StateSQLite
import TestSupport
import Testing
@testable import Service

/// The service's loop, in process, over a real repository and simulated nodes: a failure that may pass (a node that
/// refuses connections) is retried after an exponential backoff; one that cannot (a plan its guards refuse) is
/// reported at once and not run again at that revision until a new revision or an operator's sync.
@Suite struct ServiceBackoffTests {
    /// A node of region edge reached over SSH at a loopback port nothing listens on.
    static func unreachableNode() throws -> String {
        let key = try Scratch("key")
        _ = try Command.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "\(key.path)/id"])
        let line = try String(contentsOfFile: "\(key.path)/id.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        return """
            ---
            kind: Node
            name: edge-4
            spec:
              address: 172.16.30.4
              libvirt: qemu+ssh://root@127.0.0.1:1/system
              ssh: {hostKey: "\(line)"}
              roles: [compute]
              cpus: 16
              memory: 64GiB

            """
    }

    @Test func aTransientFailureIsRetriedAfterABackoffAndATerminalOneIsNotRetriedAtItsRevision() throws {
        let world = try ConvergeWorld()
        let nodes = try String(contentsOfFile: world.repo.path + "/regions/edge/nodes.yaml", encoding: .utf8)
        try world.commit("regions/edge/nodes.yaml", nodes + "\n" + (try Self.unreachableNode()))
        var configuration = ServiceConfiguration(repository: world.repo.path, stateDirectory: world.state.path, token: "t", webhookSecret: "s")
        configuration.branch = try Command.check(["git", "-C", world.repo.path, "symbolic-ref", "--short", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        configuration.maxBackoff = 1
        configuration.resyncInterval = 0  // every look would run every region, but for backoff and stops
        let state = ServiceState(stateDirectory: world.state.path)
        let loop = ReconcileLoop(configuration: configuration, state: state, logger: Logger(label: "test"))
        let stopping = StopFlag()

        // Edge cannot be observed: a retryable failure, backed off.
        loop.iterate(stopping: stopping)
        let edge = try #require(state.region("edge"))
        #expect(edge.lastResult == "failed" && edge.lastErrorKind == "node unavailable" && edge.lastErrorRetryable == true, "\(edge)")
        #expect(edge.lastError?.contains("127.0.0.1:1") == true)
        #expect(edge.runs == 1 && edge.failures == 1 && edge.stoppedAt == nil)
        let backoff = try #require(edge.nextAttemptAt) - (edge.lastRunAt ?? 0)
        #expect(backoff > 0.9 && backoff <= 1.01, "the first backoff is min(2 s, maxBackoff 1 s): \(backoff)")
        #expect(state.region("lab")?.lastResult == "converged")

        // Within its backoff, edge is not run again (lab is: its resync is due at once).
        loop.iterate(stopping: stopping)
        #expect(state.region("edge")?.runs == 1)
        #expect(state.region("lab")?.runs == 2)

        // Once the backoff has passed, it is.
        Thread.sleep(forTimeInterval: 1.1)
        loop.iterate(stopping: stopping)
        #expect(state.region("edge")?.runs == 2 && state.region("edge")?.failures == 2)

        // A push that deletes two of lab's three instances: the mass-delete guard refuses it, a terminal error.
        let acme = try String(contentsOfFile: world.repo.path + "/manifests/tenants/acme.yaml", encoding: .utf8)
        let kept = acme.components(separatedBy: "\n---\n").filter { !$0.contains("region: lab") }.joined(separator: "\n---\n")
        try world.commit("manifests/tenants/acme.yaml", kept)
        let refusedRevision = try Command.check(["git", "-C", world.repo.path, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        loop.iterate(stopping: stopping)
        let lab = try #require(state.region("lab"))
        #expect(lab.lastResult == "stopped" && lab.lastErrorKind == "refused" && lab.lastErrorRetryable == false, "\(lab)")
        #expect(lab.lastError?.contains("maxDeleteShare") == true)
        #expect(lab.stoppedAt == refusedRevision && lab.nextAttemptAt == nil)
        let stoppedRuns = lab.runs

        // Not run again at that revision, however long it waits and though its resync is due.
        Thread.sleep(forTimeInterval: 1.1)
        loop.iterate(stopping: stopping)
        loop.iterate(stopping: stopping)
        #expect(state.region("lab")?.runs == stoppedRuns)
        #expect(state.region("edge")?.runs ?? 0 >= 3, "the retryable region goes on being retried meanwhile")

        // An operator's sync runs it again (and the guard refuses it again).
        state.notify(sync: "lab")
        loop.iterate(stopping: stopping)
        #expect(state.region("lab")?.runs == stoppedRuns + 1)
        #expect(state.region("lab")?.lastResult == "stopped")
    }

    @Test func eachErrorARunThrowsSaysWhetherTryingAgainCanHelp() throws {
        let state = try Scratch("state")
        let held = try RegionLock(region: "lab", stateDirectory: state.path, timeout: 0)
        defer { withExtendedLifetime(held) {} }
        // A second process's apply of the same region, from a real file lock.
        var busy: (any Error)?
        do { _ = try RegionLock(region: "lab", stateDirectory: state.path, timeout: 0) } catch { busy = error }
        let lock = ReconcileError(classifying: try #require(busy))
        #expect(lock.kind == .regionBusy && lock.isRetryable, "\(lock)")

        let node = Address(kind: .node, region: "lab", name: "lab-1")
        #expect(ReconcileError(classifying: DriverError(node: node, message: "timed out", isTransient: true)).isRetryable)
        let refusedByNode = ReconcileError(classifying: DriverError(node: node, message: "not StackLab's", isTransient: false))
        #expect(refusedByNode.kind == .nodeUnavailable && !refusedByNode.isRetryable)
        let guarded = ReconcileError(classifying: ReconcileRun.Refusal.massDelete(["region 'lab': the plan deletes 2 of its 3 instances"]))
        #expect(guarded.kind == .refused && !guarded.isRetryable && guarded.message.contains("deletes 2 of its 3"))
        let unreadable = ReconcileError(.stateUnavailable, "cannot read the ring builders", cause: StoredTextError(table: "ring_state", column: "address", text: "x"))
        #expect(!unreadable.isRetryable, "a value the store holds and this build cannot read reads the same next time")
        #expect(ReconcileError(classifying: CocoaError(.fileReadNoPermission)).isRetryable, "nothing says it cannot pass")
    }
}
