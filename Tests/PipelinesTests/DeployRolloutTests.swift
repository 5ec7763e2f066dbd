import Foundation
import Logging
import ManifestSources
import Manifests
import Pipelines
import Processes
import Reconcile
import State
import StateSQLite
import TestSupport
import Testing

/// A deploy's `apply` steps for regions another reconciler holds: the step learns from the store how the holder
/// converged the region, also when the holder found nothing to change (its plan was empty, so it wrote no run row).
@Suite struct DeployRolloutTests {
    @Test func aStepPassesWhenTheRegionsHolderFoundNothingToChangeAndSaysWhatItWaitsFor() throws {
        let world = try ConvergeWorld()
        let branch = try Command.check(["git", "-C", world.repo.path, "symbolic-ref", "--short", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try world.commit("ci/deploy.yaml", """
            kind: Pipeline
            name: deploy
            spec:
              trigger: {event: push, branch: \(branch)}
              steps:
                - apply: {region: lab}
                - apply: {region: edge}
            """)
        let loaded = try Loader().load(GitSource(repository: world.repo.path, revision: "HEAD"))
        #expect(!loaded.hasErrors, "\(DiagnosticRenderer(files: loaded.files).render(loaded.diagnostics))")
        let revision = try #require(loaded.revision)
        let pipeline = try #require(DeployRollout.pipeline(in: loaded.model, branch: branch))
        let store = try SQLiteState(directory: world.state.path)
        let runner = PipelineRunner(repository: world.repo.path, stateDirectory: world.state.path, leases: LocalRegionLeases(stateDirectory: world.state.path),
                                    existingState: { try SQLiteState.existing(directory: world.state.path) }, openState: { try SQLiteState(directory: world.state.path) }, environment: RunEnvironment())
        let rollout = DeployRollout(pipeline: pipeline, revision: revision, loaded: loaded)
        func advance() throws -> PipelineRunRecord {
            // This reconciler holds neither region: another one does.
            try rollout.advance(store: store, runner: runner, holds: { _ in false }, applyHere: { _ in nil }, stopping: { false }, logger: Logger(label: "test"))
        }

        var record = try advance()
        #expect(record.verdict == .running && record.steps[0].status == .running, "\(record.steps)")
        // What it waits for is in the stored row (status and `ci history` read that), not only in memory.
        let stored = try #require(try store.pipelineRuns(limit: 5).first { $0.commit == revision })
        #expect(stored.steps[0].message == "released to lab; waiting for its holder to converge it", "\(stored.steps[0])")

        // The holder converges lab at this revision with nothing to change: no run row, only its convergence mark.
        try store.markConverged(region: "lab", revision: revision, at: Date().timeIntervalSince1970)
        record = try advance()
        #expect(record.steps[0].status == .passed && record.steps[0].message == "converged by its holder (nothing to change)", "\(record.steps[0])")
        #expect(record.steps[1].status == .running && record.steps[1].message.contains("waiting for its holder"), "\(record.steps[1])")

        // A mark at another revision says nothing about this one.
        try store.markConverged(region: "edge", revision: "0000000000000000000000000000000000000000", at: Date().timeIntervalSince1970)
        #expect(try advance().steps[1].status == .running)
        try store.markConverged(region: "edge", revision: revision, at: Date().timeIntervalSince1970)
        #expect(try advance().verdict == .passed)
    }
}
