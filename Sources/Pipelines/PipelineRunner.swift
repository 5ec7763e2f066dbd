import Dispatch
import Foundation
import Git
import Drivers
import ManifestSources
import Manifests
import Planning
import Reconcile
import State

/// Runs the pipelines of `ci/` against revisions of the manifests repository: a step at a time, stopping at the
/// first that fails, each with its verdict, time and log. The CI gate and the deploy pipeline are built on it.
public struct PipelineRunner {
    /// The manifests repository (git).
    public var repository: String
    /// Where the state lives.
    public var stateDirectory: String
    /// The state store if it exists (never created by reading), and opened for writing when a step applies.
    public var existingState: () throws -> (any StateBackend)?
    public var openState: () throws -> any StateBackend
    /// How regions are held while a step applies them (the state store's own leases).
    public var leases: any RegionLeases
    /// SSH key for production nodes.
    public var sshIdentity: String?
    /// What the program read from its environment (production nodes' SSH key and socket, object-store keys).
    public var environment: RunEnvironment
    /// Whether `approve` steps pass (a person approved the run on the command line).
    public var approved = false
    /// The model whose object-store endpoints and credential bindings steps use: the deployed base's while a change
    /// that is not merged yet is checked or gated (a proposed change cannot point a key at a host of its choosing);
    /// nil: the revision's own (a deploy of the branch).
    public var bindings: DesiredModel?
    /// Whether `apply` steps may take a region back to an older revision than it last applied (`ci deploy --rev OLD`, a
    /// rollback said as one); otherwise such a step is refused.
    public var allowOlder = false

    /// A runner; `environment` is what the program read from its environment (required: a runner made without it would
    /// reach production nodes and object stores without the operator's key and credentials).
    public init(repository: String, stateDirectory: String, leases: any RegionLeases, existingState: @escaping () throws -> (any StateBackend)?,
                openState: @escaping () throws -> any StateBackend, environment: RunEnvironment) {
        self.environment = environment
        self.repository = repository
        self.stateDirectory = stateDirectory
        self.leases = leases
        self.existingState = existingState
        self.openState = openState
    }

    /// One step's outcome.
    /// One step's outcome (kept as it is in the pipeline history).
    public typealias StepResult = PipelineStep

    /// The model of `revision` (a failed load is a failed validate step).
    public func load(_ revision: String) throws -> LoadResult {
        try Loader().load(GitSource(repository: repository, revision: revision))
    }

    /// Runs `pipeline`'s steps on `loaded`; after the first failure the rest are skipped.
    public func run(_ pipeline: Resource<PipelineSpec>, on loaded: LoadResult) -> [StepResult] {
        var results: [StepResult] = []
        var failed = false
        for step in pipeline.spec.steps.value {
            guard !failed else {
                results.append(StepResult(name: Self.describe(step.value), status: .skipped, seconds: 0, message: "an earlier step failed", log: "",
                                          region: Self.region(of: step.value)))
                continue
            }
            let result = runStep(step.value, on: loaded)
            failed = result.status == .failed
            results.append(result)
        }
        return results
    }

    /// Runs one step on `loaded` and times it.
    public func runStep(_ step: PipelineSpec.Step, on loaded: LoadResult) -> StepResult {
        let name = Self.describe(step)
        let start = DispatchTime.now().uptimeNanoseconds
        var result: StepResult
        do {
            let (message, log) = try perform(step, loaded: loaded)
            result = StepResult(name: name, status: .passed, seconds: 0, message: message, log: log)
        } catch let failure as StepFailure {
            result = StepResult(name: name, status: .failed, seconds: 0, message: failure.message, log: failure.log)
        } catch {
            result = StepResult(name: name, status: .failed, seconds: 0, message: "\(error)", log: "")
        }
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        result.region = Self.region(of: step)
        return result
    }

    /// Keeps a run in the state store's pipeline history (a history that cannot be written is reported, not fatal:
    /// the verdict stands).
    public func remember(kind: PipelineKind, pipeline: String, subject: String, commit: String, verdict: Verdict, started: Date, steps: [StepResult]) -> String? {
        do {
            try openState().recordPipelineRun(PipelineRunRecord(kind: kind, pipeline: pipeline, subject: subject, commit: commit, verdict: verdict,
                                                                startedAt: started.timeIntervalSince1970, seconds: Date().timeIntervalSince(started), steps: steps))
            return nil
        } catch {
            return "the pipeline history was not written: \(error)"
        }
    }

    /// A step that did not pass.
    struct StepFailure: Error {
        var message: String
        var log = ""
    }

    /// `apply: {region: staging}`.
    public static func describe(_ step: PipelineSpec.Step) -> String {
        switch step {
        case .validate: "validate"
        case .approve: "approve"
        case .plan(let regions): "plan: {regions: \(regions.map { "[" + $0.map(\.value).joined(separator: ", ") + "]" } ?? "all")}"
        case .apply(let region): "apply: {region: \(region.value)}"
        case .check(let region, let expect): "check: {region: \(region.value), expect: [\(expect.map(\.value.rawValue).joined(separator: ", "))]}"
        case .wait(let minutes): "wait: {minutes: \(minutes.value)}"
        }
    }

    /// The region an `apply` step releases the revision to (nil for other steps).
    public static func region(of step: PipelineSpec.Step) -> String? {
        if case .apply(let region) = step { region.value } else { nil }
    }

    /// A reconciler for `loaded`.
    func reconciler(_ loaded: LoadResult) throws -> Reconciler {
        var reconciler = Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: stateDirectory, state: try existingState(),
                                    environment: environment)
        reconciler.sshIdentity = sshIdentity
        if let bindings { reconciler.objectStores = ObjectStores(model: bindings, credentials: environment.credentials) }
        return reconciler
    }

    private func perform(_ step: PipelineSpec.Step, loaded: LoadResult) throws -> (String, String) {
        switch step {
        case .validate:
            let errors = loaded.diagnostics.filter { $0.severity == .error }
            guard errors.isEmpty else {
                throw StepFailure(message: "\(errors.count) error\(errors.count == 1 ? "" : "s") in the manifests",
                                  log: DiagnosticRenderer(files: loaded.files).render(errors))
            }
            return ("the manifests are valid (\(loaded.diagnostics.count.counted("warning")))", "")
        case .plan(let regions):
            try requireValid(loaded)
            let reconciler = try reconciler(loaded)
            var request = PlanRequest(.refresh, regions: regions?.map(\.value) ?? [])
            request.recover = false
            let planned = try reconciler.plan(request)
            let plan = planned.plan, names = planned.regions
            let log = plan.changes.map { "\($0.action.rawValue) \($0.address) on \($0.target)" }.joined(separator: "\n")
            guard plan.errors.isEmpty else {
                throw StepFailure(message: "the plan has \(plan.errors.count.counted("error"))", log: plan.errors.map { "\($0.address): \($0.message)" }.joined(separator: "\n"))
            }
            return ("\(plan.changes.count.counted("change")) planned over \(names.count.counted("region"))", log)
        case .apply(let region):
            try requireValid(loaded)
            var options = ReconcileRun.Options()
            options.regions = [region.value]
            options.lockTimeout = 60
            options.repository = repository
            options.allowOlder = allowOlder
            let run = ReconcileRun(reconciler: try reconciler(loaded), options: options, leases: leases, openState: openState)
            let report: ReconcileRun.Report
            var planned: Plan?
            do {
                report = try run.run(show: { planned = $0 })
            } catch {
                throw StepFailure(message: "\(error)", log: (planned?.errors ?? []).map { "error: \($0.address): \($0.message)" }.joined(separator: "\n"))
            }
            let failures = report.applied?.outcomes.compactMap { change, outcome -> String? in
                if case .failed(let why, _) = outcome { "\(change.id): \(why)" } else { nil }
            } ?? []
            let log = report.applied?.outcomes.map { "\($0.change.action.rawValue) \($0.change.id): \($0.outcome)" }.joined(separator: "\n") ?? "no changes"
            guard failures.isEmpty else { throw StepFailure(message: "\(failures.count.counted("change")) failed: \(failures[0])", log: log) }
            if let remaining = report.remaining, !remaining.isEmpty || !remaining.errors.isEmpty {
                throw StepFailure(message: "not converged after the apply: \(remaining.changes.count.counted("change")) \(remaining.changes.count == 1 ? "remains" : "remain")", log: log)
            }
            return ("\(report.applied?.done ?? 0) changes applied; converged", log)
        case .check(let region, let expectations):
            try requireValid(loaded)
            return try check(region.value, expect: expectations.map(\.value), loaded: loaded)
        case .wait(let minutes):
            Thread.sleep(forTimeInterval: Double(minutes.value) * 60)
            return ("waited \(minutes.value) minutes", "")
        case .approve:
            guard approved else { throw StepFailure(message: "needs a person's approval: run again with --approve") }
            return ("approved on the command line", "")
        }
    }

    private func requireValid(_ loaded: LoadResult) throws {
        if loaded.hasErrors { throw StepFailure(message: "the manifests have errors: nothing was planned or changed") }
    }

    /// The smoke checks of a region: every node reachable, every instance that should run running, no drift (a plan
    /// finds nothing to do), ring files identical on every node that holds them and their builders settled.
    func check(_ region: String, expect: [PipelineSpec.Expectation], loaded: LoadResult) throws -> (String, String) {
        let reconciler = try reconciler(loaded)
        let wanted = expect.isEmpty ? PipelineSpec.Expectation.allCases : expect
        // One refresh-only plan: every node of the region asked, what they hold kept for the checks below.
        var request = PlanRequest(.refresh, regions: [region])
        request.recover = false
        var observed: [ObservedNode] = []
        request.observed = { observed += $1 }
        let plan: Plan
        do {
            plan = try reconciler.plan(request).plan
        } catch let error as ReconcileError where error.kind == .nodeUnavailable {
            throw StepFailure(message: "a node is unreachable: \(error)")
        }
        var log: [String] = ["reachable: \(observed.count.counted("node")) observed"]
        for expectation in wanted {
            switch expectation {
            case .reachable:
                continue
            case .running:
                let running = Set(observed.flatMap(\.domains).filter { $0.state == .running }.compactMap(\.address))
                let missing = loaded.model.instances.filter { $0.region == region && $0.spec.state?.value != .stopped && !running.contains($0.address) }
                guard missing.isEmpty else { throw StepFailure(message: "not running: \(missing.map(\.address.description).joined(separator: ", "))", log: log.joined(separator: "\n")) }
                log.append("running: every instance that should run runs")
            case .noDrift:
                guard plan.isEmpty && plan.errors.isEmpty else {
                    throw StepFailure(message: "drift: \(plan.changes.count.counted("change")) and \(plan.errors.count.counted("error")) planned after the apply",
                                      log: (log + plan.changes.map { "\($0.action.rawValue) \($0.address) (\($0.reason.rawValue))" }).joined(separator: "\n"))
                }
                log.append("no-drift: a fresh plan finds nothing to do")
            case .ringsBalanced:
                var files: [String: Set<String>] = [:]
                for node in observed { for (file, sum) in node.rings { files[file, default: []].insert(sum) } }
                let differing = files.filter { $0.value.count > 1 }.keys.sorted()
                guard differing.isEmpty else { throw StepFailure(message: "ring files differ between nodes: \(differing.joined(separator: ", "))", log: log.joined(separator: "\n")) }
                let plans = try reconciler.ringPlans(region: region)
                let unsettled = plans.filter { !$0.plan.state.settled }.map(\.ring.name)
                guard unsettled.isEmpty else { throw StepFailure(message: "rings still settling (min_part_hours): \(unsettled.joined(separator: ", "))", log: log.joined(separator: "\n")) }
                log.append("rings-balanced: \(files.count.counted("ring file")) identical on every node; \(plans.count.counted("ring")) settled")
            }
        }
        return ("\(wanted.map(\.rawValue).joined(separator: ", ")) hold", log.joined(separator: "\n"))
    }
}
