import Manifests

/// One resource of any kind, for listing: identity, a one-line summary, and its JSON form.
struct ModelEntry: Encodable {
    let meta: ObjectMeta
    let summary: String
    private let encodeBody: @Sendable (any Encoder) throws -> Void

    init<S: ResourceSpec>(_ resource: Resource<S>, summary: String) {
        meta = resource.meta
        self.summary = summary
        encodeBody = { try resource.encode(to: $0) }
    }

    func encode(to encoder: any Encoder) throws { try encodeBody(encoder) }
}

/// Every resource of a model as entries, in kind order.
struct ModelEntries {
    let all: [ModelEntry]

    init(_ m: DesiredModel) {
        var all: [ModelEntry] = []
        all += m.regions.map { region in
            ModelEntry(region, summary: "\(region.spec.environment?.value.rawValue ?? "production"), sponsor \(region.spec.sponsor?.value ?? "-")"
                + (region.spec.objectStore.map { ", object store \($0.value.proxy.value)" } ?? "") + (region.spec.creditCheck?.value == true ? ", credit check" : ""))
        }
        all += m.nodes.map { n in
            let roles = n.spec.roles.value.map(\.value.rawValue).joined(separator: ",")
            let disks = n.spec.disks?.value.count ?? 0
            return ModelEntry(n, summary: "\(n.spec.address.value) \(roles) \(n.spec.cpus.value) CPUs \(n.spec.memory.value) \(disks) disks zone \(n.spec.zone?.value ?? n.name) libvirt \(n.spec.libvirt.value)"
                + (n.spec.has(.compute) ? " instance storage \(n.spec.instanceStorage?.value ?? NodeSpec.defaultInstanceStorage)" : ""))
        }
        all += m.networks.map { ModelEntry($0, summary: "fixed \($0.spec.fixedRange.value) floating \($0.spec.floatingRange.map { "\($0.value)" } ?? "-") bridge \($0.spec.bridge.value)") }
        all += m.filters.map { ModelEntry($0, summary: "protects \($0.spec.protect.value.map { "\($0.value)" }.joined(separator: ",")), \($0.spec.allow?.value.count ?? 0) rules") }
        all += m.rings.map { ModelEntry($0, summary: "part power \($0.spec.partPower.value), \($0.spec.replicas.value.formatted()) replicas, min_part_hours \($0.spec.minPartHours?.value ?? 1)") }
        all += m.flavors.map { ModelEntry($0, summary: "\($0.spec.vcpus.value) vCPU \($0.spec.ram.value) RAM \($0.spec.disk.value) disk \($0.spec.diskType?.value.rawValue ?? "hdd")") }
        all += m.images.map { ModelEntry($0, summary: "\($0.spec.format.value.rawValue) \($0.spec.os?.value ?? "") \($0.spec.source.value)") }
        all += m.priceLists.map { ModelEntry($0, summary: "\($0.spec.currency.value), \($0.spec.flavors.value.count) flavors, \($0.spec.coupons?.value.count ?? 0) coupons") }
        all += m.tenants.map { ModelEntry($0, summary: "\($0.spec.displayName?.value ?? $0.name), \($0.spec.billing?.value.rawValue ?? "payAsYouGo")") }
        all += m.instances.map { ModelEntry($0, summary: "\($0.spec.flavor.value) \($0.spec.image.value) on \($0.spec.network.value)\($0.spec.fixedIP.map { " at \($0.value)" } ?? "")") }
        all += m.volumes.map { volume in
            let snapshots: [String] = (volume.spec.snapshots?.value ?? []).map { (snapshot: VolumeSpec.Snapshot) -> String in
                guard let every = snapshot.every else { return snapshot.name.value }
                return "\(snapshot.name.value) every \(every.value)h"
            }
            return ModelEntry(volume, summary: "\(volume.spec.size.value)\(volume.spec.instance.map { " on \($0.value)" } ?? "")"
                + (snapshots.isEmpty ? "" : ", snapshots: \(snapshots.joined(separator: ", "))")
                + (volume.spec.from.map { ", from \($0.value.volume.value)@\($0.value.snapshot.value)" } ?? ""))
        }
        all += m.floatingIPs.map { ModelEntry($0, summary: "\($0.spec.address.map { "\($0.value)" } ?? "allocated")\($0.spec.instance.map { " → \($0.value)" } ?? "")") }
        all += m.securityGroups.map { ModelEntry($0, summary: "\($0.spec.rules?.value.count ?? 0) rules") }
        all += m.keypairs.map { ModelEntry($0, summary: String($0.spec.publicKey.value.prefix(24)) + "…") }
        all += m.pipelines.map { p in
            let trigger = p.spec.event.map { $0.value.rawValue + (p.spec.branch.map { " (\($0.value))" } ?? "") } ?? "no trigger"
            return ModelEntry(p, summary: "on \(trigger), \(p.spec.steps.value.count) steps")
        }
        self.all = all
    }
}
