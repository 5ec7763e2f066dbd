import Foundation
import Manifests

extension RegionPlanner {
    /// Rebalances each Ring of the region (on a copy of its stored builder) and installs the ring file on every
    /// storage and controller node whose copy is missing or differs (by sha256). A rebuilt ring's builder is saved
    /// region-wide first, as an ordinary change the nodes' installs depend on.
    /// What `RingPlanner.plan` of `ring` reads, as a key: the saved state's stamp, the hour, and the documents (with
    /// their places) of the ring and of every node of the region, in order. Nil when the state was not read under a
    /// stamp (a new or adopted ring) or a document has no digest (a model made in code): that plan is not kept.
    func ringPlanKey(_ ring: Resource<RingSpec>, stored: StoredRing?, hour: Int32) -> String? {
        guard let stamp = stored?.stamp, stored?.adoptedFrom == nil, ring.meta.digest != 0 else { return nil }
        var hasher = StableHasher()
        for meta in [ring.meta] + nodes.map(\.meta) {
            guard meta.digest != 0 else { return nil }
            hasher.combine(meta.digest)
            hasher.combine(UInt64(meta.location.file.index) << 32 | UInt64(UInt32(bitPattern: meta.location.line)))
        }
        return "\(stamp) \(hour) \(hasher.value)"
    }

    mutating func planRings(storedRings: [Address: StoredRing], hour: Int32) {
        let servers = nodes.filter { $0.spec.has(.storage) || $0.spec.has(.controller) }
        for ring in slice.rings.sorted(by: { $0.name < $1.name }) {
            let stored = storedRings[ring.address]
            let fileName = ring.fileName
            let holders = servers.map { nodeAddress($0.name) }.filter { observed[$0]?.rings[fileName] != nil }
            if stored == nil, !holders.isEmpty {
                // Lost or emptied state while the nodes serve a ring: a builder from scratch would move most replicas at
                // once. The reconciler adopts the installed file when it can (then `stored` is that); otherwise refuse.
                errors.append(.init(address: ring.address, message: "the state store has no builder for it, but \(holders.map(\.name).joined(separator: ", ")) hold \(fileName): the state was lost or emptied, and building the ring from scratch would move most replicas at once. StackLab adopts the installed file when every node holding it has the same one and it can be read; here they differ or could not be read. Restore the state store, or make the nodes' copies agree"))
                continue
            }
            let ringPlan: RingPlan
            let key = regionMemo == nil ? nil : ringPlanKey(ring, stored: stored, hour: hour)
            if let key, let kept = regionMemo?.ringPlan(ring.address, key: key) {
                ringPlan = kept
            } else {
                do {
                    ringPlan = try RingPlanner.plan(ring: ring, nodes: nodes, stored: stored, hour: hour)
                } catch {
                    errors.append(.init(address: ring.address, message: "cannot build the ring: \(error)"))
                    continue
                }
                if let key { regionMemo?.keep(ringPlan, of: ring.address, key: key) }
            }
            rings.append(ringPlan.rebalance)
            var build: [ChangeID] = []
            if ringPlan.rebuilt {
                let adopted = stored?.adoptedFrom
                let state: Data
                do {
                    state = try ringPlan.state.encoded()
                } catch {
                    errors.append(.init(address: ring.address, message: "cannot encode the ring builder: \(error)"))
                    continue
                }
                var fields = ringFields(ringPlan)
                if let adopted { fields.insert(.init(field: "adopted from", old: "", new: "\(fileName) on \(adopted)"), at: 0) }
                let change = Change(address: ring.address, target: .region(region), action: stored == nil || adopted != nil ? .create : .update,
                                    reason: adopted != nil ? .adopted : stored == nil ? .new : .specChanged, fields: fields,
                                    operation: .saveRingBuilder(state: state, checksum: ringPlan.checksum, previous: adopted != nil ? nil : stored?.checksum))
                changes.append(change)
                build = [change.id]
            }
            // Written once, on the first node that needs it: every node's install carries the same bytes.
            var written: Data?
            for server in servers {
                let node = nodeAddress(server.name)
                let installed = observed[node]?.rings[ringPlan.fileName]
                guard installed != ringPlan.checksum else { continue }
                let file: Data
                do {
                    file = try written ?? RingPlanner.file(for: ringPlan)
                    written = file
                } catch {
                    errors.append(.init(address: ring.address, message: "cannot write the ring file: \(error)"))
                    break
                }
                // A rebuilt ring (now, or by `ring build` since the node got it) is new or changed; a file that is
                // missing or that StackLab never made, under an unchanged ring, is drift.
                let behind = installed.map { ringPlan.state.earlierChecksums.contains($0) } ?? false
                let reason: Change.Reason = ringPlan.rebuilt || behind ? (installed == nil ? .new : .specChanged) : .drifted
                changes.append(Change(address: ring.address, target: target(node), action: installed == nil ? .create : .update, reason: reason,
                                      fields: [.init(field: ringPlan.fileName, old: installed.map { String($0.prefix(12)) } ?? "missing",
                                                     new: String(ringPlan.checksum.prefix(12)))],
                                      dependsOn: build, operation: .installRing(file: ringPlan.fileName, content: file, sha256: ringPlan.checksum)))
            }
        }
    }

    private func ringFields(_ plan: RingPlan) -> [Change.FieldChange] {
        var fields: [Change.FieldChange] = []
        if !plan.added.isEmpty { fields.append(.init(field: "devices added", old: "", new: "\(plan.added.count)")) }
        if !plan.removed.isEmpty { fields.append(.init(field: "devices removed", old: "", new: "\(plan.removed.count)")) }
        if !plan.changed.isEmpty { fields.append(.init(field: "devices changed", old: "", new: "\(plan.changed.count)")) }
        fields.append(.init(field: "replicas moved", old: "", new: "\(plan.replicasMoved)"))
        fields.append(.init(field: "balance", old: plan.balanceBefore.map { String(format: "%.2f%%", $0) } ?? "-",
                            new: String(format: "%.2f%%", plan.balanceAfter)))
        if plan.heldBack > 0 { fields.append(.init(field: "held back by min_part_hours", old: "", new: "\(plan.heldBack) partitions")) }
        for warning in plan.warnings { fields.append(.init(field: "warning", old: "", new: warning)) }
        return fields
    }
}
