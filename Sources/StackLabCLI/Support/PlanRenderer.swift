import Manifests
import Planning

/// Prints a plan the way operators read them: grouped by region and target, one symbol per change
/// (`+` create, `~` update, `-/+` replace or move, `>` power, `-` delete), what restarts and what data is destroyed,
/// the changed fields, and a summary line.
struct PlanRenderer {
    var colors: Bool

    private func paint(_ text: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    private func symbol(_ change: Change) -> String {
        switch (change.action, change.reason) {
        case (_, .moved), (.replace, _): paint("-/+", "35")
        case (.create, _): paint("+", "32")
        case (.update, _): paint("~", "33")
        case (.power, _): paint(">", "36")
        case (.delete, _): paint("-", "31")
        }
    }

    func render(_ plan: Plan) -> String {
        var out = ""
        for region in plan.regions {
            let changes = plan.changes.filter { $0.region == region }
            guard !changes.isEmpty else { continue }
            out += paint("region \(region)", "1") + "\n"
            for (target, targetChanges) in Dictionary(grouping: changes, by: \.target).sorted(by: { $0.key < $1.key }) {
                out += target.node.map { "  node \($0.name)\n" } ?? "  rings (state store)\n"
                for change in targetChanges {
                    out += "    \(symbol(change)) \(change.address)  (\(change.reason.rawValue))"
                    if change.restarts { out += paint(" (restarts)", "33") }
                    if case .node(.defineDomain(let domain, _)) = change.operation, change.action == .create {
                        out += "  \(domain.flavor.terminalSafe) \(domain.image.terminalSafe) \(domain.interface.ip)"
                    }
                    out += "\n"
                    for field in change.fields {
                        out += field.old.isEmpty ? "        \(field.field.terminalSafe): \(field.new.terminalSafe)\n"
                            : field.new.isEmpty ? "        \(field.field.terminalSafe): \(field.old.terminalSafe)\n"
                            : "        \(field.field.terminalSafe): \(field.old.terminalSafe) → \(field.new.terminalSafe)\n"
                    }
                    for destroyed in change.destroys { out += paint("        destroys \(destroyed.terminalSafe)", "31") + "\n" }
                }
            }
        }
        for orphan in plan.orphans {
            out += paint("orphan", "33") + ": \(orphan.address) on \(orphan.node), which left the manifests (kept: --keep-orphans)\n"
        }
        for object in plan.unmanaged {
            out += paint("unmanaged", "33") + ": \(object.kind) '\(object.name.terminalSafe)' on \(object.node) (not StackLab's; left alone)\n"
        }
        for problem in plan.held {
            out += paint("held", "33") + ": \(problem.address): \(problem.message.terminalSafe)\n"
        }
        for problem in plan.errors {
            out += paint("error", "1;31") + ": \(problem.address): \(problem.message.terminalSafe)\n"
        }
        out += summary(plan) + "\n"
        return out
    }

    func summary(_ plan: Plan) -> String {
        let count = { (predicate: (Change) -> Bool) in plan.changes.count(where: predicate) }
        let moves = count { $0.reason == .moved && $0.action == .create }
        let replaces = count { $0.action == .replace }
        let creates = count { $0.action == .create } - moves
        let updates = count { $0.action == .update || $0.action == .power }
        let restarts = count(\.restarts)
        let moved = plan.moved
        let deletes = count { $0.action == .delete && !moved.contains($0.address) }
        // A plan with errors is never applied: it does not say "no changes" under the errors it printed.
        let refused = plan.errors.isEmpty ? "" : " The plan has \(plan.errors.count.counted("error")) (above): nothing will be applied until \(plan.errors.count == 1 ? "it is" : "they are") fixed."
        if plan.changes.isEmpty {
            return (plan.errors.isEmpty ? "No changes: " : "Nothing else to change: ") + "\(plan.unchanged.counted("resource")) up to date." + refused
        }
        var text = "Plan: \(creates) to create, \(updates) to change, \(replaces) to replace, \(moves) to move, \(deletes) to delete, \(plan.unchanged) unchanged."
        if restarts > 0 { text += " \(restarts) running instance\(restarts == 1 ? "" : "s") restart." }
        return text + refused
    }
}
