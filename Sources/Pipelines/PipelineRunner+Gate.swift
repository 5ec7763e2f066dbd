import Foundation
import Git
import Manifests
import Reconcile
import State

/// The CI gate: each change is tested exactly as it would merge (merged onto the base tip plus the changes ahead of
/// it that passed), applied to the staging region by the gate pipeline and smoke-checked; a change that fails gets
/// -1 and staging goes back to the revision it was tested on, and the changes behind it are tested without it.
extension PipelineRunner {
    /// What the gate said of one change.
    public struct GateResult: Sendable, Codable {
        /// The change as named (a branch, a SHA), and its commit.
        public var change: String
        public var commit: String?
        /// The tip it was tested on, and the merge that was tested.
        public var base: String
        public var merged: String?
        /// +1 or -1.
        public var verdict: Verdict
        /// Files that did not merge.
        public var conflicts: [String] = []
        public var steps: [StepResult] = []
        /// How staging was put back after a failure.
        public var restored: String?
        public var seconds: Double = 0
        /// Why the run is missing from the pipeline history, if it is.
        public var historyError: String?
    }

    /// The pipeline named `name`, else the one triggered by an approved change (the gate).
    public static func pipeline(_ name: String?, in model: DesiredModel, event: PipelineSpec.Event) throws -> Resource<PipelineSpec> {
        let found = name.map { name in model.pipelines.first { $0.name == name } } ?? model.pipelines.first { $0.spec.event?.value == event }
        guard let found else {
            throw ReconcileError(.invalid, name.map { "there is no pipeline '\($0)' in ci/" } ?? "no pipeline in ci/ is triggered by \(event.rawValue)")
        }
        return found
    }

    /// Tests `changes` in order on top of `base`; returns each verdict and the tip the passing ones make.
    public func gate(changes: [String], base: String, pipeline name: String?) throws -> (results: [GateResult], tip: String) {
        let repo = try Repository(at: repository)
        var tip = try repo.resolveCommit(base)
        var results: [GateResult] = []
        // Every change runs with the base's object-store endpoints and credential bindings (the changes before it in the
        // queue are not merged either).
        var trusted = self
        trusted.bindings = try load(tip).model
        for change in changes {
            let start = Date()
            var result = GateResult(change: change, base: tip, verdict: .failed)
            defer {
                result.seconds = Date().timeIntervalSince(start)
                result.historyError = remember(kind: .gate, pipeline: name ?? "gate", subject: change, commit: result.merged ?? result.commit ?? "",
                                               verdict: result.verdict, started: start, steps: result.steps)
                results.append(result)
            }
            let commit: String
            do {
                commit = try repo.resolveCommit(change)
            } catch {
                result.steps = [StepResult(name: "merge", status: .failed, seconds: 0, message: "\(error)", log: "")]
                continue
            }
            result.commit = commit
            let info = try repo.commitInfo(commit)
            switch try repo.merge(commit, onto: tip, message: "Gate: merge \(change) (\(info.summary))", author: (info.author, info.email)) {
            case .conflicts(let files):
                result.conflicts = files
                result.steps = [StepResult(name: "merge", status: .failed, seconds: 0, message: "does not merge onto \(String(tip.prefix(12))): conflicts in \(files.joined(separator: ", "))", log: "")]
                continue
            case .merged(let merged):
                result.merged = merged
            }
            let loaded = try load(result.merged!)
            let gatePipeline = try Self.pipeline(name, in: loaded.model, event: .changeApproved)
            result.steps = [StepResult(name: "merge", status: .passed, seconds: 0, message: "merged onto \(String(tip.prefix(12))) as \(String(result.merged!.prefix(12)))", log: "")]
                + trusted.run(gatePipeline, on: loaded)
            if result.steps.allSatisfy({ $0.status != .failed }) {
                result.verdict = .passed
                tip = result.merged!
            } else {
                result.restored = trusted.restore(to: tip, regions: Self.appliedRegions(gatePipeline))
            }
        }
        return (results, tip)
    }

    /// The regions a pipeline applies.
    static func appliedRegions(_ pipeline: Resource<PipelineSpec>) -> [String] {
        pipeline.spec.steps.value.compactMap { if case .apply(let region) = $0.value { region.value } else { nil } }
    }

    /// Applies `revision` to `regions` again (staging back where it was before a failed change); what it did.
    func restore(to revision: String, regions: [String]) -> String {
        do {
            let loaded = try load(revision)
            var messages: [String] = []
            for region in regions {
                var options = ReconcileRun.Options()
                options.regions = [region]
                options.lockTimeout = 60
                options.allowMassDelete = true  // what the failed change created goes again
                options.allowOlder = true  // back to the base, on purpose
                let report = try ReconcileRun(reconciler: try reconciler(loaded), options: options, leases: leases, openState: openState).run()
                messages.append("\(region) back at \(String(revision.prefix(12))): \(report.applied?.done ?? 0) changes applied\(report.applied?.succeeded == false ? ", some failed" : "")")
            }
            return messages.joined(separator: "; ")
        } catch {
            return "could not restore: \(error)"
        }
    }
}
