import ArgumentParser
import Foundation
import Manifests
import Planning
import Reconcile
import State
import StateStores

/// `stacklab apply`: converge the regions, from a fresh plan or exactly a saved one.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Converge the regions to the manifests (or apply exactly a saved plan).",
        discussion: """
            Without PLAN, plans now, shows the plan and asks before changing anything (--auto-approve for \
            automation). With PLAN (from 'stacklab plan --out'), applies exactly that plan and refuses it if it was \
            edited, has errors, was made from other manifests, or any node changed since it was made. Each region \
            is locked while it is applied; every change is journaled in the state directory, so an interrupted \
            apply is completed by running apply again.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "A plan saved by 'stacklab plan --out'.")
    var planFile: String?

    @Flag(help: "Apply without asking.")
    var autoApprove = false

    @Flag(help: "Allow a plan that deletes more than a region's maxDeleteShare of its instances.")
    var allowMassDelete = false

    @Flag(help: "Allow a plan that destroys the disks of instances that stay in the manifests (image changes; moves copy their disks).")
    var allowReplace = false

    @Flag(help: "Allow applying a revision older than one a region last applied (a rollback; `stacklab rollback` passes it).")
    var allowOlder = false

    @Option(help: "Seconds to wait for another apply on the same region to finish.")
    var lockTimeout: Double = 0

    @Option(help: "Nodes changed at once.")
    var parallelism = 8

    @Flag(help: "Print where the time and memory went: loading, then each step of the run with the peak memory where it grew (on standard error).")
    var timings = false

    func run() throws {
        Allocator.configure()
        let saved: Plan? = try planFile.map { path in
            guard FileManager.default.fileExists(atPath: path) else {
                throw fail("there is no plan file at \(path)\n  hint: save one with 'stacklab plan --out \(path)', or run 'stacklab apply' without a file to plan and apply at once")
            }
            do {
                return try JSONDecoder().decode(Plan.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw failure("cannot read plan \(path): \(error)",
                              hint: "a plan file is read by the StackLab build that saved it (or a later one that reads its format); save it again with 'stacklab plan --out \(path)'")
            }
        }
        var repositoryOptions = repository
        if let revision = saved?.revision, repository.rev == nil { repositoryOptions.rev = revision }
        let loaded = try repositoryOptions.loadValid()
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        var options = ReconcileRun.Options()
        options.regions = reconcile.region
        options.allowMassDelete = allowMassDelete
        options.allowReplace = allowReplace
        options.allowOlder = allowOlder
        options.repository = loaded.revision == nil ? nil : repository.repo
        options.keepOrphans = reconcile.keepOrphans
        options.lockTimeout = lockTimeout
        options.parallelism = parallelism
        let location = try reconcile.stateLocation(repo: repository.repo)
        let leases: any RegionLeases
        do {
            leases = try location.leases()
        } catch {
            throw fail("cannot open the state store \(location): \(error)")
        }
        let run = ReconcileRun(reconciler: reconciler, options: options, leases: leases) { [clock = reconcile.clock] in try location.open(clock: clock) }
        let json = output.format == .json
        let renderer = PlanRenderer(colors: Terminal.standardOutput.wantsColor)
        let progress = ProgressPrinter(colors: Terminal.standardOutput.wantsColor)
        let report: ReconcileRun.Report
        do {
            report = try run.run(saved: saved, progress: { if !json { progress.show($0) } }, show: { plan in
                if saved == nil && !json { Terminal.standardOutput.write(renderer.render(plan)) }
                progress.begin(changes: plan.changes.count)
            }) { _ in
                guard saved == nil, !autoApprove else { return true }
                guard isatty(0) == 1 else { throw fail("refusing to apply without confirmation; pass --auto-approve") }
                Terminal.standardOutput.write("Apply these changes? Only 'yes' is accepted: ")
                return readLine()?.trimmingCharacters(in: .whitespaces) == "yes"
            }
        } catch {
            throw failing(error)
        }
        if let recovered = report.recovery.summary { Terminal.standardError.write("note: \(recovered)\n") }
        if json {
            Terminal.standardOutput.write(try JSON.encode(ApplyDocument(report)))
            if let applied = report.applied, !applied.succeeded { throw ExitCode(1) }
            return
        }
        if timings { Terminal.standardError.write(String(format: "load %.3f s (", loaded.timings.read) + loaded.timings.phases + "), \(report.phases)\n") }
        guard let applied = report.applied else {
            if saved != nil { Terminal.standardOutput.write(renderer.summary(report.plan) + "\n") }
            return
        }
        Terminal.standardOutput.write("Apply \(applied.succeeded ? "complete" : "incomplete"): \(applied.done) done, \(applied.failed) failed, \(applied.skipped) skipped (run \(applied.run)).\n")
        if !applied.succeeded { throw ExitCode(1) }
        if let error = report.verifyError {
            Terminal.standardError.write("warning: could not verify the apply: \(error)\n")
        } else if let remaining = report.remaining {
            if remaining.isEmpty {
                Terminal.standardOutput.write("Verified: \(remaining.unchanged.counted("resource")) up to date.\n")
            } else {
                let first = remaining.changes.prefix(3).map { "\($0.action.rawValue) \($0.address)" }.joined(separator: ", ")
                Terminal.standardError.write("warning: after the apply, the plan still has \(remaining.changes.count.counted("change")) (\(first)\(remaining.changes.count > 3 ? ", …" : "")); run 'stacklab plan'\n")
            }
        }
    }
}

/// What `apply --format json` answers: the plan applied, each change's outcome, and the re-plan that verified it.
struct ApplyDocument: Encodable {
    struct Outcome: Encodable {
        var change: String
        var address: String
        var action: String
        var target: String
        var outcome: String
        var seconds: Double?
        var message: String?
        var retryable: Bool?
    }

    var ok: Bool
    var plan: Plan
    var run: Int64?
    var done: Int
    var failed: Int
    var skipped: Int
    var outcomes: [Outcome]
    /// Changes the plan made right after the apply still has (empty: verified converged); nil when not verified.
    var remaining: [String]?
    var verifyError: String?
    var recovered: String?

    init(_ report: ReconcileRun.Report) {
        let applied = report.applied
        ok = applied?.succeeded ?? report.plan.errors.isEmpty
        plan = report.plan
        run = applied?.run
        done = applied?.done ?? 0
        failed = applied?.failed ?? 0
        skipped = applied?.skipped ?? 0
        outcomes = (applied?.outcomes ?? []).map { change, outcome in
            var entry = Outcome(change: change.id.description, address: change.address.description, action: change.action.rawValue,
                                target: change.target.description, outcome: "")
            switch outcome {
            case .done(let seconds): entry.outcome = "done"; entry.seconds = seconds
            case .failed(let message, let retryable): entry.outcome = "failed"; entry.message = message; entry.retryable = retryable
            case .skipped(let reason): entry.outcome = "skipped"; entry.message = reason
            }
            return entry
        }
        remaining = report.remaining.map { $0.changes.map { "\($0.action.rawValue) \($0.address)" } }
        verifyError = report.verifyError
        recovered = report.recovery.summary
    }
}
