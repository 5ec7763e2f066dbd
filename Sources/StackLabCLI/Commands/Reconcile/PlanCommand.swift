import ArgumentParser
import Foundation
import Planning
import Reconcile

/// `stacklab plan`: what apply would change, and why.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Observe every node and show what apply would change.",
        discussion: """
            Compares the manifests with what runs on each node and prints the changes: + create, ~ update (with the \
            fields that change), > power on/off, -/+ move, - delete, with the reason (new, spec changed, drifted, \
            removed from manifests). An update that stops a running instance says (restarts); one that only grows a \
            running instance within twice its flavor (vCPUs, memory, disks) is made live and does not. A change that \
            destroys disks lists them. StackLab's objects on nodes or regions that left the manifests are deleted (or, with \
            --keep-orphans, listed). Objects StackLab does not own are listed and never touched; a plan that would \
            create a domain under the name of an unmanaged one is an error.

            A region whose manifest documents, node generations and ring builders are all as they were when an \
            earlier plan found it converged is not observed again (simulated nodes vouch for themselves by their \
            host files; production nodes are always observed). --refresh plans every region and reads every node again.

            Exit status: 0 no changes, 2 changes, 1 errors.

            --rev A..B shows what changing the manifests from A to B would do without observing any node: every \
            resource added, removed or changed (field by field), the instances a changed flavor or image reaches, and \
            where the journal says each runs. For reviewing a change before it merges.

            Examples:
              stacklab plan
              stacklab plan --rev main..review/42
              stacklab plan --region sina --target instance/sina/devops
              stacklab plan --out plan.json && stacklab apply plan.json
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions

    @Option(name: .long, help: ArgumentHelp("Only changes to this address or below it (repeatable); their dependencies come along.", valueName: "address"))
    var target: [String] = []

    @OptionGroup var output: OutputOptions
    var format: OutputFormat { output.format }

    @Option(name: .long, help: ArgumentHelp("Save the plan for 'stacklab apply FILE'.", valueName: "file"))
    var out: String?

    @Flag(help: ArgumentHelp("Plan every region and read every node's state again, even in regions known to be converged and unchanged.",
                             discussion: "A simulated node whose files all kept their stamps (inode, size, times) since it was last observed gives the observation saved beside its host file instead of libvirt's test driver parsing the host again."))
    var refresh = false

    @Flag(help: "Print how many regions and nodes were reused or observed, and each step's time and peak memory (on standard error).")
    var timings = false

    func run() throws {
        Allocator.configure()
        if let rev = repository.rev, rev.contains("..") {
            let status = try PlanRevisions.run(range: rev, repository: repository, reconcile: reconcile, format: format)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let loaded = try repository.loadValid()
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        let plan: Plan
        do {
            let start = Date()
            var request = PlanRequest(refresh ? .refresh : .normal, regions: reconcile.region)
            request.targets = target
            request.memo = try reconciler.state.flatMap { $0.isWritable ? try StoredPlanMemo(store: $0) : nil }
            let made = try reconciler.plan(request)
            if let recovered = made.recovery.summary { Terminal.standardError.write("note: \(recovered)\n") }
            plan = made.plan
            if timings {
                Terminal.standardError.write(String(format: "load %.3fs (", loaded.timings.read) + loaded.timings.phases
                                             + String(format: "), plan %.3fs; ", Date().timeIntervalSince(start)) + "\(made.reuse)\n")
            }
        } catch {
            throw failure("\(error)")
        }
        switch format {
        case .json: Terminal.standardOutput.write(try JSON.encode(PlanDocument(plan: plan)))
        case .text: Terminal.standardOutput.write(PlanRenderer(colors: Terminal.standardOutput.wantsColor).render(plan))
        }
        if let out {
            // Only a plan that can be applied is saved.
            guard plan.errors.isEmpty else { throw fail("the plan has errors; \(out) was not written") }
            guard let key = try PlanSeal.key(stateDirectory: reconcile.stateDirectory(repo: repository.repo), create: true) else {
                throw fail("cannot make the key that seals saved plans")
            }
            try JSON.encode(plan.sealed(with: key)).write(toFile: out, atomically: true, encoding: .utf8)
        }
        if !plan.errors.isEmpty { throw ExitCode(1) }
        if !plan.isEmpty { throw ExitCode(2) }
    }
}

/// A plan as `plan --format json` prints it: the plan's own fields and `ok` (false when it has errors), one document
/// like every command's.
struct PlanDocument: Encodable {
    var plan: Plan

    private enum Keys: String, CodingKey { case ok }

    func encode(to encoder: any Encoder) throws {
        try plan.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(plan.errors.isEmpty, forKey: .ok)
    }
}
