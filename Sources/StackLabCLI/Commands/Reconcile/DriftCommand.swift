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
            Drift is an owned object whose observed state differs from the spec StackLab stamped on it (memory or \
            vCPUs changed by hand, a ruleset or ring edited), one StackLab created that is gone, or one not in its \
            desired power state — as opposed to a change in the manifests, which 'plan' shows. The files on disk are \
            taken as what was applied; with --rev, a power change counts only in regions last applied at that \
            revision. The service's stacklab_drift counts the same. Unmanaged objects are listed too. Exit status: \
            0 no drift, 2 drift, 1 errors.
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
        Allocator.configure()
        let loaded = try repository.loadValid()
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        let plan: Plan
        let placements: [Address: Placement]
        var applied: Set<String>?
        do {
            // Drift is a refresh-only plan: every node asked again, nothing taken from a memo.
            let made = try reconciler.plan(PlanRequest(.refresh, regions: reconcile.region))
            if let recovered = made.recovery.summary { Terminal.standardError.write("note: \(recovered)\n") }
            plan = made.plan
            placements = try reconciler.state?.placements() ?? [:]
            if let revision = loaded.revision {
                let last = try reconciler.state?.lastApplied(regions: loaded.model.regions.map(\.name)) ?? [:]
                applied = Set(last.filter { $0.value.revision == revision }.keys)
            }
        } catch {
            throw failing(error)
        }
        // Planned from a revision (--rev), a region is as applied when its last apply was at that revision; the files
        // on disk are taken as what is applied. What StackLab created before has a recorded placement.
        let found = plan.drift(asApplied: { applied?.contains($0) ?? true }, created: { placements[$0] != nil }).map { drift in
            Drifted(address: drift.change.address.description, target: (placements[drift.change.address]?.node).map(\.description) ?? drift.change.target.description,
                    reason: drift.kind.rawValue, fields: drift.kind == .missing ? [] : drift.change.fields)
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
