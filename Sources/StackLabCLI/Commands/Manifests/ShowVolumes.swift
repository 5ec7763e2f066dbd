import Foundation
import Manifests
import Planning
import Reconcile

/// `stacklab show volume --live`: each Volume as declared, where it is (node, libvirt volume, capacity) and its
/// snapshots in the region's object store (capacity, chunks, chunks uploaded, when taken); then the snapshots of
/// volumes that left the manifests, which outlive them.
struct VolumeStatus: Encodable {
    var address: String
    var declared: Bool
    var size: UInt64?
    var instance: String?
    var device: String?
    var volume: String?
    var nodes: [Placement]
    var snapshots: [ObservedSnapshot]

    struct Placement: Encodable {
        var node: String
        var bytes: UInt64
    }

    /// Observes the regions of `volumes` (their nodes and object stores).
    static func observe(_ volumes: [Resource<VolumeSpec>], reconciler: Reconciler, regions only: [String]) throws -> [VolumeStatus] {
        var regions = Set(volumes.compactMap(\.region)).union(reconciler.model.regions.filter { $0.spec.objectStore != nil }.map(\.name))
        if !only.isEmpty { regions.formIntersection(only) }
        let sorted = regions.sorted()
        let drivers = try reconciler.drivers(for: sorted)
        let observed = try reconciler.observe(drivers)
        let stored = try reconciler.observeSnapshots(sorted)
        var statuses: [VolumeStatus] = []
        var shown = Set<Address>()
        for volume in volumes.sorted(by: { $0.address < $1.address }) where regions.contains(volume.region ?? "") {
            let name = DesiredDomain.volumeName(for: volume.address)
            let key = TenantKey(tenant: volume.tenant ?? "", name: volume.name)
            shown.insert(volume.address)
            let nodes = observed.filter { $0.address.region == volume.region }.compactMap { node in
                node.volumes[name].map { Placement(node: node.address.name, bytes: $0) }
            }
            statuses.append(VolumeStatus(address: volume.address.description, declared: true, size: volume.spec.size.value.bytes, instance: volume.spec.instance?.value,
                                         device: volume.spec.device?.value, volume: name, nodes: nodes,
                                         snapshots: (stored[volume.region ?? ""] ?? []).filter { $0.volume == key }.sorted { ($0.created, $0.name) < ($1.created, $1.name) }))
        }
        for region in sorted {
            func address(_ key: TenantKey) -> Address { Address(kind: .volume, region: region, tenant: key.tenant, name: key.name) }
            let left = Dictionary(grouping: (stored[region] ?? []).filter { !shown.contains(address($0.volume)) }, by: \.volume)
            for (key, snapshots) in left.sorted(by: { $0.key < $1.key }) {
                let address = address(key)
                statuses.append(VolumeStatus(address: address.description, declared: false, nodes: [],
                                             snapshots: snapshots.sorted { ($0.created, $0.name) < ($1.created, $1.name) }))
            }
        }
        return statuses
    }

    /// Text: one line per volume, then its placement and snapshots indented.
    var text: String {
        var out = address
        if let size {
            out += "  \(ByteSize(bytes: size))" + (instance.map { ", attached to \($0)\(device.map { " as \($0)" } ?? "")" } ?? ", unattached")
        } else {
            out += "  (left the manifests; its snapshots remain)"
        }
        out += "\n"
        if declared {
            out += nodes.isEmpty ? "  on no node yet (apply creates it)\n" : nodes.map { "  on \($0.node) as \(volume ?? "") (\(ByteSize(bytes: $0.bytes)))\n" }.joined()
        }
        let formatter = ISO8601DateFormatter()
        for snapshot in snapshots {
            let taken = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(snapshot.created)))
            out += "  snapshot \(snapshot.name): \(ByteSize(bytes: snapshot.capacity)), \(snapshot.chunks) chunks (\(snapshot.uploaded) uploaded), taken \(taken)\n"
        }
        if declared && snapshots.isEmpty { out += "  no snapshots\n" }
        return out
    }
}
