import ArgumentParser
import Foundation
import Hypervisor
import Planning
import Reconcile

/// `stacklab apply`: converge the regions, from a fresh plan or exactly a saved one.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Converge the regions to the manifests (or apply exactly a saved plan).",
        discussion: """
            Without PLAN, plans now, shows the plan and asks before changing anything (--auto-approve for \
            automation). With PLAN (from 'stacklab plan --out'), applies exactly that plan and refuses it if any \
            node changed since it was made. Each region is locked while it is applied; every change is journaled \
            in the state directory, so an interrupted apply is completed by running apply again.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions

    @Argument(help: "A plan saved by 'stacklab plan --out'.")
    var planFile: String?

    @Flag(help: "Apply without asking.")
    var autoApprove = false

    @Flag(help: "Allow a plan that deletes more than a region's maxDeleteShare of its instances.")
    var allowMassDelete = false

    @Option(help: "Seconds to wait for another apply on the same region to finish.")
    var lockTimeout: Double = 0

    @Option(help: "Nodes changed at once.")
    var parallelism = 8

    func run() throws {
        let saved: Plan? = try planFile.map { path in
            do {
                return try JSONDecoder().decode(Plan.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw fail("cannot read plan \(path): \(error)")
            }
        }
        var repositoryOptions = repository
        if let revision = saved?.revision, repository.rev == nil { repositoryOptions.rev = revision }
        let loaded = try repositoryOptions.loadValid()
        let stateDirectory = reconcile.stateDirectory(repo: repository.repo)
        let reconciler = Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: stateDirectory)
        let regions: [String]
        do {
            regions = try saved?.regions ?? reconciler.regions(reconcile.region)
        } catch {
            throw fail("\(error)")
        }
        var locks: [RegionLock] = []
        do {
            for region in regions { locks.append(try RegionLock(region: region, stateDirectory: stateDirectory, timeout: lockTimeout)) }
        } catch {
            throw fail("\(error)")
        }
        defer { withExtendedLifetime(locks) {} }

        let drivers: [String: any NodeDriver]
        let observed: [ObservedNode]
        do {
            drivers = try reconciler.drivers(for: regions)
            observed = try reconciler.observe(drivers)
        } catch {
            throw fail("\(error)")
        }
        let renderer = PlanRenderer(colors: Terminal.standardOutput.wantsColor)
        let plan: Plan
        if let saved {
            let now = Dictionary(observed.map { ($0.address.description, $0.fingerprint) }, uniquingKeysWith: { a, _ in a })
            let changed = saved.observed.filter { now[$0.key] != $0.value }.map(\.key).sorted()
            guard changed.isEmpty else {
                throw fail("the plan is stale: \(changed.joined(separator: ", ")) changed since it was made; run 'stacklab plan' again")
            }
            plan = saved
        } else {
            do {
                plan = try reconciler.plan(regions: regions, observed: observed)
            } catch {
                throw fail("\(error)")
            }
            Terminal.standardOutput.write(renderer.render(plan))
        }
        if plan.isEmpty {
            if saved != nil { Terminal.standardOutput.write(renderer.summary(plan) + "\n") }
            if !plan.unplaceable.isEmpty { throw ExitCode(1) }
            return
        }
        let massDeletes = reconciler.massDeletions(in: plan, observed: observed)
        if !massDeletes.isEmpty && !allowMassDelete {
            throw fail(massDeletes.joined(separator: "\n       ") + "\n  hint: check the manifests; pass --allow-mass-delete if this is really meant")
        }
        if saved == nil && !autoApprove {
            guard isatty(0) == 1 else { throw fail("refusing to apply without confirmation; pass --auto-approve") }
            Terminal.standardOutput.write("Apply these changes? Only 'yes' is accepted: ")
            guard readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else { throw fail("apply cancelled") }
        }
        let store: StateStore
        do {
            store = try StateStore(directory: stateDirectory)
        } catch {
            throw fail("cannot open the state store in \(stateDirectory): \(error)")
        }
        let progress = ProgressPrinter(colors: Terminal.standardOutput.wantsColor)
        let report = try Applier(parallelism: parallelism, progress: { progress.show($0) })
            .apply(plan, drivers: drivers, store: store)
        Terminal.standardOutput.write("Apply \(report.succeeded ? "complete" : "incomplete"): \(report.count("done")) done, \(report.count("failed")) failed, \(report.count("skipped")) skipped (run \(report.run)).\n")
        if !report.succeeded || !plan.unplaceable.isEmpty { throw ExitCode(1) }
        if saved == nil { verify(reconciler: reconciler, regions: regions, drivers: drivers, store: store) }
    }

    /// Observes the nodes again through the connections the apply used (no host is read again) and plans: what
    /// remains is reported, and converged regions are remembered so that the next 'stacklab plan' need not observe
    /// them again.
    private func verify(reconciler: Reconciler, regions: [String], drivers: [String: any NodeDriver], store: StateStore) {
        do {
            let after = try reconciler.plan(regions: regions, drivers: drivers, memo: try StoredPlanMemo(store: store), refresh: true).plan
            if after.isEmpty {
                Terminal.standardOutput.write("Verified: \(after.unchanged) resources up to date.\n")
            } else {
                let first = after.changes.prefix(3).map { "\($0.action.rawValue) \($0.address)" }.joined(separator: ", ")
                Terminal.standardError.write("warning: after the apply, the plan still has \(after.changes.count) changes (\(first)\(after.changes.count > 3 ? ", …" : "")); run 'stacklab plan'\n")
            }
        } catch {
            Terminal.standardError.write("warning: could not verify the apply: \(error)\n")
        }
    }
}
