import Foundation
import ManifestSources
import Manifests
import Planning
import StateSQLite

/// `stacklab plan --rev A..B`: what changing the manifests from A to B would do, from the two models and the stored
/// state alone (no node is observed): every resource added, removed or changed, field by field, the instances a
/// changed flavor or image reaches, and where the journal says each instance runs.
struct PlanRevisions {
    struct Entry: Encodable {
        var action: String
        var address: String
        var fields: [Change.FieldChange]
        var reason: String
        var node: String?
    }

    static func run(range: String, repository: RepositoryOptions, reconcile: ReconcileOptions, format: OutputFormat) throws -> Int32 {
        let parts = range.components(separatedBy: "..")
        let json = format == .json
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw failure("--rev A..B takes two revisions, not \(range)") }
        func load(_ revision: String) throws -> LoadResult {
            var options = repository
            options.rev = revision
            let loaded = try options.load()
            if loaded.hasErrors {
                if !json { Terminal.standardError.write(DiagnosticRenderer(files: loaded.files).render(loaded.diagnostics.filter { $0.severity == .error })) }
                throw failure("revision \(revision) has errors", hint: "run 'stacklab validate --rev \(revision)' for each of them")
            }
            return loaded
        }
        let before = try load(parts[0]), after = try load(parts[1])
        let placements = (try? reconcile.stateLocation(repo: repository.repo).existing()?.placements()) ?? [:]
        let old = try specs(before.model), new = try specs(after.model)
        var entries: [Entry] = []
        for address in Set(old.keys).union(new.keys).sorted() {
            let node = placements[address]?.node.description
            switch (old[address], new[address]) {
            case (nil, let spec?):
                entries.append(Entry(action: "create", address: address.description, fields: spec.sorted { $0.key < $1.key }.map { .init(field: $0.key, old: "", new: $0.value) },
                                     reason: "new", node: node))
            case (_?, nil):
                entries.append(Entry(action: "delete", address: address.description, fields: [], reason: "removed from manifests", node: node))
            case (let was?, let now?) where was != now:
                let fields = Set(was.keys).union(now.keys).sorted().filter { was[$0] != now[$0] }.map { Change.FieldChange(field: $0, old: was[$0] ?? "", new: now[$0] ?? "") }
                entries.append(Entry(action: "update", address: address.description, fields: fields, reason: "spec changed", node: node))
            default:
                continue
            }
        }
        // Instances reached through a changed flavor or image.
        let changed = Set(entries.filter { $0.action == "update" }.map(\.address))
        for instance in after.model.instances where !changed.contains(instance.address.description) {
            for (kind, name) in [(Kind.flavor, instance.spec.flavor.value), (.image, instance.spec.image.value)]
            where changed.contains(Address(kind: kind, name: name).description) {
                entries.append(Entry(action: "update", address: instance.address.description, fields: [], reason: "its \(kind.addressName) \(name) changed",
                                     node: placements[instance.address]?.node.description))
            }
        }
        if format == .json {
            struct Report: Encodable { var from: String?; var to: String?; var observed = false; var changes: [Entry] }
            Terminal.standardOutput.write(try JSON.encode(Report(from: before.revision, to: after.revision, changes: entries)))
        } else {
            var out = "From \(String((before.revision ?? parts[0]).prefix(12))) to \(String((after.revision ?? parts[1]).prefix(12))) (the manifests and the stored state only; no node observed):\n"
            for entry in entries {
                let mark = entry.action == "create" ? "+" : entry.action == "delete" ? "-" : "~"
                out += "  \(mark) \(entry.address)\(entry.node.map { " on \($0)" } ?? "") (\(entry.reason))\n"
                for field in entry.fields { out += "      \(field.field): \(field.old.isEmpty ? "" : field.old + " → ")\(field.new)\n" }
            }
            out += entries.isEmpty ? "No changes between the two revisions.\n" : "\(entries.count.counted("resource")) \(entries.count == 1 ? "changes" : "change").\n"
            Terminal.standardOutput.write(out)
        }
        return entries.isEmpty ? 0 : 2
    }

    /// Every resource's spec as top-level field → JSON text, by address.
    static func specs(_ model: DesiredModel) throws -> [Address: [String: String]] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var result: [Address: [String: String]] = [:]
        for entry in ModelEntries(model).all where entry.meta.kind != .pipeline {
            let data = try encoder.encode(entry)
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let spec = object["spec"] as? [String: Any] else { continue }
            var fields: [String: String] = [:]
            for (key, value) in spec {
                let text = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
                fields[key] = text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            result[entry.meta.address] = fields
        }
        return result
    }
}
