import Foundation
import Logging
import Manifests
import Reconcile
import State

/// The deploy pipeline as the service runs it: every new revision of the branch is rolled out by the push-triggered
/// pipeline of `ci/` (`ci/deploy.yaml`), a step at a time, halting at the first failure. The service keeps healing
/// every region meanwhile, each at its *released* revision: a region that an `apply` step names follows the revision
/// the newest deploy released to it, so a region the rollout has not reached (or whose step failed) keeps converging
/// to the revision it had; regions no step names follow the branch.
///
/// The rollout's progress is its pipeline-history row, rewritten after every step: it survives a restart (the run
/// goes on where it was), it is shared through the database with other reconcilers, and a manual
/// `stacklab ci deploy --rev OLD` (a rollback) is a release like any other. One reconciler runs a deploy: the one
/// that holds the pipeline's first region. An `apply` step releases the revision to its region and passes when the
/// region's holder converged it there (inline when that is this reconciler; otherwise read from the shared run
/// table), and fails when its run there failed.
public struct DeployRollout {
    public let pipeline: Resource<PipelineSpec>
    public let revision: String
    public let loaded: LoadResult

    /// The regions the pipeline's `apply` steps release to, in order.
    /// The rollout of `revision` (its manifests `loaded`) by `pipeline`.
    public init(pipeline: Resource<PipelineSpec>, revision: String, loaded: LoadResult) {
        self.pipeline = pipeline
        self.revision = revision
        self.loaded = loaded
    }

    public var regions: [String] { pipeline.spec.steps.value.compactMap { if case .apply(let region) = $0.value { region.value } else { nil } } }

    /// The push-triggered pipeline for `branch` in `model`, if there is one.
    public static func pipeline(in model: DesiredModel, branch: String) -> Resource<PipelineSpec>? {
        model.pipelines.first { $0.spec.event?.value == .push && ($0.spec.branch?.value ?? branch) == branch }
    }

    /// The revision each region was last released, from the history (newest deploy first): a passed `apply` step, or
    /// one in progress, releases its run's revision; a failed or skipped one releases nothing. Reads further back
    /// until every region is found or the history ends.
    public static func released(pipeline: String, regions: Set<String>, store: any StateBackend) throws -> [String: (revision: String, run: Int64?)] {
        var limit = 50
        while true {
            let history = try store.pipelineRuns(limit: limit)
            var released: [String: (revision: String, run: Int64?)] = [:]
            for record in history where record.kind == .deploy && record.pipeline == pipeline {
                for step in record.steps where step.status == .passed || step.status == .running {
                    if let region = step.region, released[region] == nil { released[region] = (record.commit, record.id) }
                }
            }
            if history.count < limit || regions.isSubset(of: Set(released.keys)) || limit >= 50_000 { return released }
            limit *= 10
        }
    }

    /// Why an approval was refused.
    public struct NothingToApprove: Error, CustomStringConvertible {
        public var description: String
    }

    /// Approves the deploy waiting at an `approve` step (of `revision`, a prefix of it, or the newest one waiting):
    /// the step passes, and the runner moves the rollout on at its next look. Returns the run's row.
    public static func approve(revision: String?, by person: String, store: any StateBackend) throws -> PipelineRunRecord {
        let waiting = try store.pipelineRuns(limit: 50).filter { record in
            record.kind == .deploy && record.verdict == .running && (revision.map { record.commit.hasPrefix($0) } ?? true)
                && record.steps.contains { $0.name == "approve" && $0.status == .running }
        }
        guard var record = waiting.first else {
            throw NothingToApprove(description: "no deploy \(revision.map { "of \($0) " } ?? "")is waiting for approval")
        }
        var steps = record.steps
        guard let index = steps.firstIndex(where: { $0.name == "approve" && $0.status == .running }) else {
            throw NothingToApprove(description: "the deploy of \(record.commit.prefix(12)) is not waiting for approval")
        }
        let now = Date().timeIntervalSince1970
        steps[index].status = .passed
        steps[index].seconds = now - (steps[index].startedAt ?? now)
        steps[index].message = "approved by \(person)"
        record.steps = steps
        try store.recordPipelineRun(record)
        return record
    }

    /// What the service does for an `apply` step whose region this reconciler holds: converges it to the revision and
    /// says how that went (nil: converged; otherwise why not).
    public typealias ApplyHere = (_ region: String) -> String?

    /// Moves the rollout of `revision` on as far as it can now: starts it if this revision never had one (an older
    /// one still in progress is superseded), runs steps until one must wait or the run ends, and keeps its row
    /// current. Returns the run's row.
    public func advance(store: any StateBackend, runner: PipelineRunner, holds: (String) -> Bool, applyHere: ApplyHere, stopping: () -> Bool,
                 logger: Logger) throws -> PipelineRunRecord {
        let history = try store.pipelineRuns(limit: 50).filter { $0.kind == .deploy && $0.pipeline == pipeline.name }
        var record: PipelineRunRecord
        if let existing = history.first(where: { $0.commit == revision }) {
            record = existing
        } else {
            for stale in history where stale.verdict == .running {
                var steps = stale.steps
                for index in steps.indices where steps[index].status == .pending || steps[index].status == .running {
                    steps[index].status = .skipped
                    steps[index].message = "superseded by \(revision.prefix(12))"
                }
                var closed = stale
                closed.verdict = .failed
                closed.steps = steps
                closed.seconds = Date().timeIntervalSince1970 - stale.startedAt
                try store.recordPipelineRun(closed)
                logger.info("deploy of \(stale.commit.prefix(12)) superseded by \(revision.prefix(12))")
            }
            let steps = pipeline.spec.steps.value.map {
                PipelineRunner.StepResult(name: PipelineRunner.describe($0.value), status: .pending, seconds: 0, message: "", log: "",
                                          region: PipelineRunner.region(of: $0.value))
            }
            record = PipelineRunRecord(kind: .deploy, pipeline: pipeline.name, subject: "push", commit: revision, verdict: .running,
                                       startedAt: Date().timeIntervalSince1970, seconds: 0, steps: steps)
            record.id = try store.recordPipelineRun(record)
            logger.info("deploy of \(revision.prefix(12)) started: \(steps.map(\.name).joined(separator: " → "))")
        }
        guard record.verdict == .running else { return record }
        var steps = record.steps
        let specs = pipeline.spec.steps.value.map(\.value)
        guard steps.count == specs.count else {
            // The row does not match this revision's pipeline (written by another version): end it rather than guess.
            record.verdict = .failed
            for index in steps.indices where steps[index].status == .pending || steps[index].status == .running {
                steps[index].status = .skipped
                steps[index].message = "its pipeline changed under it: ended"
            }
            record.steps = steps
            try store.recordPipelineRun(record)
            return record
        }
        func save() throws {
            record.steps = steps
            record.seconds = Date().timeIntervalSince1970 - record.startedAt
            try store.recordPipelineRun(record)
        }
        for index in steps.indices where steps[index].status == .pending || steps[index].status == .running {
            guard !stopping() else { return record }
            let now = Date().timeIntervalSince1970
            switch specs[index] {
            case .apply(let region):
                if steps[index].status == .pending {
                    steps[index].status = .running
                    steps[index].startedAt = now
                    steps[index].message = "released to \(region.value)"
                    try save()
                }
                if holds(region.value) {
                    let started = Date()
                    let failure = applyHere(region.value)
                    steps[index].seconds = Date().timeIntervalSince(started)
                    steps[index].status = failure == nil ? .passed : .failed
                    steps[index].message = failure.map { "the region did not converge: \($0)" } ?? "converged"
                } else {
                    // Another reconciler holds the region: its run at this revision says how the step went, or, when its
                    // plan was empty (no run row), its mark that the region is converged at this revision.
                    let since = (steps[index].startedAt ?? now) - 1
                    if let run = try store.runs(region: region.value, revision: revision).last(where: { $0.startedAt >= since && $0.status != .running }) {
                        steps[index].seconds = now - (steps[index].startedAt ?? now)
                        steps[index].status = run.status == .succeeded ? .passed : .failed
                        steps[index].message = run.status == .succeeded ? "converged by its holder (run \(run.id))" : "its holder's run \(run.id) \(run.status)"
                    } else if let converged = try store.convergence(regions: [region.value])[region.value], converged.revision == revision {
                        steps[index].seconds = now - (steps[index].startedAt ?? now)
                        steps[index].status = .passed
                        steps[index].message = "converged by its holder (nothing to change)"
                    } else {
                        let waiting = "released to \(region.value); waiting for its holder to converge it"
                        if steps[index].message != waiting {
                            steps[index].message = waiting
                            try save()
                        }
                        return record
                    }
                }
            case .wait(let minutes):
                let started = steps[index].startedAt ?? now
                if steps[index].status == .pending {
                    steps[index].status = .running
                    steps[index].startedAt = now
                    steps[index].message = "soaking until \(Date(timeIntervalSince1970: now + Double(minutes.value) * 60))"
                    try save()
                }
                guard now - started >= Double(minutes.value) * 60 else { return record }
                steps[index].status = .passed
                steps[index].seconds = now - started
                steps[index].message = "waited \(minutes.value) minutes"
            case .approve:
                // The rollout waits here until a person approves it (`stacklab approve`, which marks the step passed in
                // this row); the regions after it stay at the revision they had meanwhile.
                if steps[index].status == .pending {
                    steps[index].status = .running
                    steps[index].startedAt = now
                    steps[index].message = "waiting for a person's approval: stacklab approve --rev \(revision.prefix(12))"
                    try save()
                    logger.info("deploy of \(revision.prefix(12)) waits for approval")
                }
                return record
            case let step:
                // validate, plan and check only read (a check observes its region's nodes, whoever holds it).
                var result = runner.runStep(step, on: loaded)
                result.startedAt = now
                steps[index] = result
            }
            if steps[index].status == .failed {
                for later in steps.indices where later > index {
                    steps[later].status = .skipped
                    steps[later].message = "an earlier step failed"
                }
                record.verdict = .failed
                try save()
                logger.error("deploy of \(revision.prefix(12)) halted at \(steps[index].name): \(steps[index].message)")
                return record
            }
            try save()
        }
        record.verdict = .passed
        try save()
        logger.info("deploy of \(revision.prefix(12)) passed every step")
        return record
    }
}
