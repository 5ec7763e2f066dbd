import Manifests
import Planning

/// Prints a plan the way operators read them: grouped by region and node, one symbol per change
/// (`+` create, `~` update, `>` power, `-/+` move, `-` delete), the changed fields, and a summary line.
struct PlanRenderer {
    var colors: Bool

    private func paint(_ text: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    private func symbol(_ change: Change) -> String {
        switch (change.action, change.reason) {
        case (_, .moved): paint("-/+", "35")
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
            for (node, nodeChanges) in Dictionary(grouping: changes, by: { $0.node.kind == .region ? "" : $0.node.name }).sorted(by: { $0.key < $1.key }) {
                out += node.isEmpty ? "  rings\n" : "  node \(node)\n"
                for change in nodeChanges {
                    out += "    \(symbol(change)) \(change.address)  (\(change.reason.rawValue))"
                    if change.action == .create, let domain = change.domain {
                        out += "  \(domain.flavor) \(domain.image) \(domain.interface.ip)"
                    }
                    out += "\n"
                    for field in change.fields {
                        out += field.old.isEmpty ? "        \(field.field): \(field.new)\n" : "        \(field.field): \(field.old) → \(field.new)\n"
                    }
                }
            }
        }
        for object in plan.unmanaged {
            out += paint("unmanaged", "33") + ": \(object.kind) '\(object.name)' on \(object.node) (not StackLab's; left alone)\n"
        }
        for failure in plan.unplaceable {
            out += paint("error", "1;31") + ": cannot place \(failure.address): \(failure.reason)\n"
        }
        out += summary(plan) + "\n"
        return out
    }

    func summary(_ plan: Plan) -> String {
        let count = { (predicate: (Change) -> Bool) in plan.changes.count(where: predicate) }
        let moves = count { $0.reason == .moved && $0.action == .create }
        let creates = count { $0.action == .create } - moves
        let updates = count { $0.action == .update || $0.action == .power }
        let deletes = count { $0.action == .delete && $0.reason != .moved }
        if plan.isEmpty { return "No changes: \(plan.unchanged) resources up to date." }
        return "Plan: \(creates) to create, \(updates) to change, \(moves) to move, \(deletes) to delete, \(plan.unchanged) unchanged."
    }
}
