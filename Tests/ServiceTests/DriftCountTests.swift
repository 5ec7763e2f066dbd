import Foundation
import Logging
import Processes
import Reconcile
import StateSQLite
import TestSupport
import Testing
@testable import Service

/// `stacklab_drift` and the status's `drift` count what changed behind StackLab's back, never what a push asks for.
@Suite struct DriftCountTests {
    @Test func aPushIsNotDriftAndAChangeBehindStackLabsBackIs() throws {
        let world = try ConvergeWorld()
        var configuration = ServiceConfiguration(repository: world.repo.path, stateDirectory: world.state.path, token: "t", webhookSecret: "s")
        configuration.branch = try Command.check(["git", "-C", world.repo.path, "symbolic-ref", "--short", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        configuration.resyncInterval = 0  // every look runs every region
        let state = ServiceState(stateDirectory: world.state.path)
        let loop = ReconcileLoop(configuration: configuration, state: state, logger: Logger(label: "test"))
        let stopping = StopFlag()

        // The first run creates everything: a new revision, no drift.
        loop.iterate(stopping: stopping)
        let created = try #require(state.region("lab"))
        #expect(created.lastResult == "converged" && created.drift == 0, "\(created)")
        #expect(!created.lastPlan.isEmpty, "it did change things")

        // A push that stops web-2: a change (a power change, as one behind StackLab's back would be), no drift.
        let acme = try String(contentsOfFile: world.repo.path + "/manifests/tenants/acme.yaml", encoding: .utf8)
        let stopped = acme.replacingOccurrences(of: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}",
                                                with: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy, state: stopped}")
        #expect(stopped != acme)
        try world.commit("manifests/tenants/acme.yaml", stopped)
        loop.iterate(stopping: stopping)
        let pushed = try #require(state.region("lab"))
        #expect(pushed.lastResult == "converged" && pushed.drift == 0, "\(pushed)")
        #expect(pushed.lastPlan.contains { $0.contains("web-2") }, "\(pushed.lastPlan)")

        // Nothing changed since: a resync heals nothing, and records that lab is converged at this revision (a deploy's
        // step for lab reads it when its plan was empty).
        loop.iterate(stopping: stopping)
        #expect(state.region("lab")?.drift == 0)
        let head = try Command.check(["git", "-C", world.repo.path, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try SQLiteState.existing(directory: world.state.path)?.convergence(regions: ["lab"])["lab"]?.revision == head)

        // web-1's memory changed behind StackLab's back: the next resync heals it, and that is drift.
        try world.driftWeb1Memory(to: 1_048_576)
        loop.iterate(stopping: stopping)
        let healed = try #require(state.region("lab"))
        #expect(healed.lastResult == "converged" && healed.drift == 1, "\(healed)")
    }
}
