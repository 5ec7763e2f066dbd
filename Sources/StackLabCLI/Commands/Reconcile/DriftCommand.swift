import ArgumentParser
import Foundation
import Manifests
import Planning
import Reconcile
import State

/// `stacklab drift`: owned objects whose real state differs from what StackLab last made them.
struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "List owned objects changed behind StackLab's back (apply heals them).",
        discussion: """
            Drift is an owned object whose observed state differs from its desired spec (memory or vCPUs changed by \
            hand, powered off, deleted) — as opposed to a change in the manifests, which 'plan' shows. Unmanaged \
            objects are listed too. Exit status: 0 no drift, 2 drift, 1 errors.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions

    func run() throws {
        let loaded = try repository.loadValid()
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        let plan: Plan
        let placements: [Address: Placement]
        do {
            // Drift is a refresh-only plan: every node asked again, nothing taken from a memo.
            let made = try reconciler.plan(PlanRequest(.refresh, regions: reconcile.region))
            if let recovered = made.recovery.summary { Terminal.standardError.write("note: \(recovered)\n") }
            plan = made.plan
            placements = try reconciler.state?.placements() ?? [:]
        } catch {
            throw failing(error)
        }
        var out = ""
        for change in plan.changes {
            switch (change.action, change.reason) {
            case (.update, .drifted), (.create, .drifted), (.power, .powerState):
                out += "~ \(change.address) on \(change.target) (\(change.reason.rawValue))\n"
                for field in change.fields { out += "    \(field.field): desired \(field.new), found \(field.old)\n" }
            case (.create, .new) where placements[change.address] != nil:
                out += "- \(change.address) on \(placements[change.address]!.node) (missing: it was created, and is gone)\n"
            default:
                continue
            }
        }
        for object in plan.unmanaged {
            out += "? \(object.kind) '\(object.name)' on \(object.node) (unmanaged)\n"
        }
        let drifted = out.split(separator: "\n").contains { $0.hasPrefix("~") || $0.hasPrefix("-") }
        Terminal.standardOutput.write(out.isEmpty ? "No drift.\n" : out)
        if drifted { throw ExitCode(2) }
    }
}
