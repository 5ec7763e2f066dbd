import Manifests

/// Tenant volumes (Island's local volumes): an attached Volume is one more disk of its instance's domain, in the
/// node's `stacklab-volumes` pool, so it is created, grown, attached and detached (by redefining the domain, which the
/// plan shows as a restart) and moved (copied with the instance) with it. A Volume no instance uses stays on the node
/// it is on, or goes to a `volume`-role node; one that left the manifests is deleted once no domain uses it.
extension RegionPlanner {
    /// The disks of the Volumes attached to `instance` (`attached`, grouped once for the region): their own device
    /// names, else the next free ones after the flavor's disks, in the order of the Volumes' names.
    func volumeDisks(of instance: Resource<InstanceSpec>, attached: [Resource<VolumeSpec>], after flavorDisks: [DesiredDomain.Disk]) -> [DesiredDomain.Disk] {
        let attached = attached.sorted { $0.name < $1.name }
        guard !attached.isEmpty else { return [] }
        var used = Set(flavorDisks.map(\.device))
        for volume in attached { if let device = volume.spec.device?.value { used.insert(device) } }
        var disks: [DesiredDomain.Disk] = []
        var next = 0
        for volume in attached {
            var device = volume.spec.device?.value
            while device == nil {
                let candidate = "vd" + String(UnicodeScalar(UInt8(ascii: "b") + UInt8(next)))
                next += 1
                if used.insert(candidate).inserted { device = candidate }
            }
            disks.append(.init(pool: DesiredDomain.volumePool, volume: DesiredDomain.volumeName(for: volume.address), bytes: volume.spec.size.value.bytes,
                               device: device!, image: nil))
        }
        return disks
    }

    /// Unattached Volumes, and volumes left behind: created where they are kept, deleted once nothing uses them.
    /// Returns the Volumes to create from a snapshot, with the node each goes on (planned by `planSnapshots`).
    mutating func planVolumes(desired: [Address: DesiredDomain]) -> [(Resource<VolumeSpec>, Address)] {
        var restores: [(Resource<VolumeSpec>, Address)] = []
        let volumes = spec == nil ? [] : slice.volumes.sorted(byAddress: \.address)
        var wanted: [String: Address] = [:]  // libvirt name → the node it belongs on
        for domain in desired.values {
            for disk in domain.disks where disk.pool == DesiredDomain.volumePool { wanted[disk.volume] = domain.node }
        }
        var located: [String: [Address]] = [:]  // libvirt name → nodes that have it
        for address in observedOrder {
            for name in observed[address]!.volumes.keys where name.hasPrefix("v-") { located[name, default: []].append(address) }
        }
        // Volume storage per volume node (its disks), and what the plan keeps there: attached volumes of the instances
        // placed on it, and unattached volumes that stay where they are.
        let declared = Set(nodes.map { nodeAddress($0.name) })
        var capacity: [Address: UInt64] = [:]
        for node in nodes where node.spec.has(.volume) {
            capacity[nodeAddress(node.name)] = (node.spec.disks?.value ?? []).reduce(UInt64(0)) { $0.addingReportingOverflow($1.size.value.bytes).overflow ? .max : $0 + $1.size.value.bytes }
        }
        let volumeNodes = capacity.keys.sorted()
        var load: [Address: UInt64] = [:]
        for domain in desired.values {
            for disk in domain.disks where disk.pool == DesiredDomain.volumePool { load[domain.node, default: 0] &+= disk.bytes }
        }
        for volume in volumes where volume.spec.instance == nil {
            if let node = located[DesiredDomain.volumeName(for: volume.address)]?.first(where: { declared.contains($0) }) {
                load[node, default: 0] &+= volume.spec.size.value.bytes
            }
        }
        for volume in volumes {
            let name = DesiredDomain.volumeName(for: volume.address)
            if let node = wanted[name] {  // a disk of its instance's domain
                if located[name] == nil, volume.spec.from != nil { restores.append((volume, node)) }
                continue
            }
            if volume.spec.instance != nil {
                // Attached to an instance that cannot be planned now (an error says why): left where it is.
                if let node = located[name]?.first { wanted[name] = node }
                continue
            }
            let bytes = volume.spec.size.value.bytes
            let kept = located[name]?.first(where: { declared.contains($0) })
            let free = { (node: Address) in (capacity[node] ?? 0) - min(capacity[node] ?? 0, load[node] ?? 0) }
            let node = kept ?? volumeNodes.filter { free($0) >= bytes }.min { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }
            guard let node else {
                if let roomiest = volumeNodes.max(by: { (free($0), $1) < (free($1), $0) }) {
                    errors.append(.init(address: volume.address, message: "no volume node of region \(region) has room for its \(ByteSize(bytes: bytes)) (most free: \(ByteSize(bytes: free(roomiest))) on \(roomiest.name)); add disks to a volume node, or make it smaller"))
                } else {
                    errors.append(.init(address: volume.address, message: "no node of region \(region) has the volume role to keep it; give a node role 'volume', or attach the volume to an instance"))
                }
                continue
            }
            wanted[name] = node
            if kept == nil { load[node, default: 0] &+= bytes }
            let have = observed[node]?.volumes[name]
            if have == nil, located[name] == nil, volume.spec.from != nil {
                restores.append((volume, node))  // created from its snapshot (planned with the snapshots)
            } else if let have, have > bytes {
                errors.append(.init(address: volume.address, message: "it would shrink from \(ByteSize(bytes: have)) to \(ByteSize(bytes: bytes)); shrinking a volume loses data: keep its size, or delete it and make a new one"))
            } else if have != bytes {
                changes.append(Change(address: volume.address, target: target(node), action: have == nil ? .create : .update, reason: have == nil ? .new : .specChanged,
                                      fields: [.init(field: "size", old: have.map { "\(ByteSize(bytes: $0))" } ?? "", new: "\(ByteSize(bytes: bytes))")],
                                      operation: .ensureVolume(pool: DesiredDomain.volumePool, name: name, bytes: bytes)))
            } else {
                unchanged += 1
            }
        }
        // Volumes where they are no longer wanted: after the change that stops using them there (a detach, or the move
        // that copied them); never the only copy of a volume still wanted elsewhere.
        let addressByName = Dictionary(volumes.map { (DesiredDomain.volumeName(for: $0.address), $0.address) }, uniquingKeysWith: { first, _ in first })
        for (name, nodes) in located.sorted(by: { $0.key < $1.key }) {
            for node in nodes where wanted[name] != node {
                let copyPending = wanted[name].map { !nodes.contains($0) } ?? false
                let users = changes.filter { change in
                    guard change.address.kind == .instance else { return false }
                    switch change.operation {
                    case .transfer(.moveDomain(let domain, let from, _)): return from == node && domain.disks.contains { $0.volume == name }
                    case .node(.defineDomain), .node(.replaceDomain), .node(.deleteDomain): return change.target.node == node
                    case .node(.ensureNetwork), .node(.deleteNetwork), .node(.setPower), .node(.installRing), .node(.configureDHCP), .node(.loadFirewall), .node(.loadProxy),
                         .node(.ensureVolume), .node(.deleteVolume), .transfer(.restoreVolume), .transfer(.takeSnapshot), .region:
                        return false
                    }
                }
                if copyPending && !users.contains(where: { if case .transfer(.moveDomain) = $0.operation { true } else { false } }) { continue }
                let address = addressByName[name] ?? Address(kind: .volume, region: region, name: name)
                let size = observed[node]?.volumes[name].map { "\(ByteSize(bytes: $0))" } ?? "?"
                let reason: Change.Reason = wanted[name] != nil ? .moved : spec == nil ? .regionRemoved : .removed
                changes.append(Change(address: address, target: target(node), action: .delete, reason: reason, dependsOn: users.map(\.id),
                                      destroys: reason == .moved ? [] : ["volume \(name) (\(size)) on \(node.name)"],
                                      operation: .deleteVolume(pool: DesiredDomain.volumePool, name: name)))
            }
        }
        volumeHomes = wanted
        return restores
    }
}
