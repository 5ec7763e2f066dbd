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
    @OptionGroup var output: OutputOptions

    /// One object that drifted, as `--format json` lists it.
    struct Drifted: Encodable {
        var address: String
        var target: String
        /// `drifted`, `power state`, `missing` or `unmanaged`.
        var reason: String
        var fields: [Change.FieldChange]
    }

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
        var found: [Drifted] = []
        for change in plan.changes {
            switch (change.action, change.reason) {
            case (.update, .drifted), (.create, .drifted), (.power, .powerState):
                found.append(Drifted(address: change.address.description, target: change.target.description, reason: change.reason.rawValue, fields: change.fields))
            case (.create, .new) where placements[change.address] != nil:
                found.append(Drifted(address: change.address.description, target: placements[change.address]!.node.description, reason: "missing", fields: []))
            default:
                continue
            }
        }
        let unmanaged = plan.unmanaged.map { Drifted(address: "\($0.kind) '\($0.name)'", target: $0.node.description, reason: "unmanaged", fields: []) }
        if output.format == .json {
            struct Document: Encodable { var drift: [Drifted]; var unmanaged: [Drifted] }
            Terminal.standardOutput.write(try JSON.encode(Document(drift: found, unmanaged: unmanaged)))
        } else {
            var out = ""
            for item in found {
                if item.reason == "missing" {
                    out += "- \(item.address) on \(item.target) (missing: it was created, and is gone)\n"
                } else {
                    out += "~ \(item.address) on \(item.target) (\(item.reason))\n"
                    for field in item.fields { out += "    \(field.field): desired \(field.new), found \(field.old)\n" }
                }
            }
            for object in unmanaged { out += "? \(object.address) on \(object.target) (unmanaged)\n" }
            Terminal.standardOutput.write(out.isEmpty ? "No drift.\n" : out)
        }
        if !found.isEmpty { throw ExitCode(2) }
    }
}
