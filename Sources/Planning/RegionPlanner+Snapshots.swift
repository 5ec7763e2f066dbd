import Foundation
import Manifests

/// How a schedule's snapshots are named: `<schedule>-<YYYYMMDDHH>`, the UTC hour it was taken.
public enum SnapshotSchedule {
    /// `<name>-<YYYYMMDDHH>` (UTC) for a schedule's snapshot taken in `hour` (hours since the epoch).
    public static func name(_ name: String, hour: Int32) -> String {
        var time = time_t(Int(hour) * 3600)
        var parts = tm()
        gmtime_r(&time, &parts)
        return name + "-" + String(format: "%04d%02d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour))
    }

    /// The hour (since the epoch) of a schedule's snapshot name, nil when `stored` is not one of `name`'s.
    public static func hour(_ stored: String, of name: String) -> Int32? {
        guard stored.hasPrefix(name + "-") else { return nil }
        let stamp = stored.dropFirst(name.count + 1)
        guard stamp.count == 10, stamp.allSatisfy(\.isASCII), stamp.allSatisfy(\.isNumber) else { return nil }
        let digits = Array(stamp.utf8).map { Int($0) - 48 }
        func number(_ range: Range<Int>) -> Int32 { Int32(range.reduce(0) { $0 * 10 + digits[$1] }) }
        var parts = tm()
        parts.tm_year = number(0..<4) - 1900
        parts.tm_mon = number(4..<6) - 1
        parts.tm_mday = number(6..<8)
        parts.tm_hour = number(8..<10)
        let seconds = timegm(&parts)
        guard seconds >= 0, Self.name(name, hour: Int32(seconds / 3600)) == stored else { return nil }
        return Int32(seconds / 3600)
    }
}

/// Volume snapshots in the region's object store: one-offs taken once, schedules taken when due with the newest `keep`
/// kept, snapshots no longer listed for a declared volume deleted. A volume that left the manifests keeps its
/// snapshots (restorable into a new Volume with `from`), and a snapshot some Volume restores from is never deleted.
extension RegionPlanner {
    /// The key of a volume's snapshots in the object store.
    static func snapshotKey(_ volume: Resource<VolumeSpec>) -> TenantKey { TenantKey(tenant: volume.tenant ?? "", name: volume.name) }

    /// One stored snapshot of a volume.
    struct SnapshotRef: Hashable {
        var volume: TenantKey
        var snapshot: String
    }

    /// Whether `operation` makes (creates, fills, copies or defines a domain with) tenant volume `name` on its node.
    static func makes(_ operation: Change.Operation, volume name: String) -> Bool {
        switch operation {
        case .node(.defineDomain(let domain, _)), .node(.replaceDomain(let domain)), .transfer(.moveDomain(let domain, _, _)): domain.disks.contains { $0.volume == name }
        case .node(.ensureVolume(_, let volume, _)), .transfer(.restoreVolume(_, let volume, _, _, _)): volume == name
        case .node(.ensureNetwork), .node(.deleteNetwork), .node(.deleteVolume), .node(.setPower), .node(.deleteDomain), .node(.configureDHCP),
             .node(.loadFirewall), .node(.loadProxy), .node(.installRing), .transfer(.takeSnapshot), .region:
            false
        }
    }

    mutating func planSnapshots(restores: [(Resource<VolumeSpec>, Address)]) {
        guard let spec, spec.objectStore != nil else { return }
        let stored = Dictionary(grouping: snapshots ?? [], by: \.volume)
        let volumes = slice.volumes.sorted(byAddress: \.address)
        // Snapshots some Volume restores from (or will): never deleted.
        let sources = Set(volumes.compactMap { volume in
            volume.spec.from.map { SnapshotRef(volume: TenantKey(tenant: volume.tenant ?? "", name: $0.value.volume.value), snapshot: $0.value.snapshot.value) }
        })
        var taken: [SnapshotRef: ChangeID] = [:]  // the change that takes each snapshot
        for volume in volumes {
            let key = Self.snapshotKey(volume)
            let listed = volume.spec.snapshots?.value ?? []
            let have = (stored[key] ?? []).sorted { ($0.created, $0.name) < ($1.created, $1.name) }
            guard !listed.isEmpty || !have.isEmpty else { continue }
            let name = DesiredDomain.volumeName(for: volume.address)
            guard let home = volumeHomes[name] else { continue }  // not placed: an error says why
            let producers = changes.filter { $0.target.node == home && Self.makes($0.operation, volume: name) }.map(\.id)
            var previous = have.last?.name
            var keepNames = Set<String>()
            func take(_ snapshot: String, reason: Change.Reason) -> ChangeID {
                let address = Address(kind: .snapshot, region: region, tenant: volume.tenant, name: "\(volume.name)@\(snapshot)")
                var fields: [Change.FieldChange] = [.init(field: "size", old: "", new: "\(ByteSize(bytes: volume.spec.size.value.bytes))"),
                                                    .init(field: "node", old: "", new: home.name)]
                if let previous { fields.append(.init(field: "incremental after", old: "", new: previous)) }
                let change = Change(address: address, target: target(home), action: .create, reason: reason, fields: fields, dependsOn: producers,
                                    operation: .takeSnapshot(pool: DesiredDomain.volumePool, name: name, store: key, snapshot: snapshot, after: previous))
                changes.append(change)
                taken[SnapshotRef(volume: key, snapshot: snapshot)] = change.id
                previous = snapshot
                return change.id
            }
            var deletes: [(ObservedSnapshot, Change.Reason, [ChangeID])] = []
            for snapshot in listed {
                let snapshotName = snapshot.name.value
                guard let every = snapshot.every?.value else {
                    keepNames.insert(snapshotName)
                    if have.contains(where: { $0.name == snapshotName }) { unchanged += 1 } else { _ = take(snapshotName, reason: .new) }
                    continue
                }
                scheduled = true
                var series = have.compactMap { stored in SnapshotSchedule.hour(stored.name, of: snapshotName).map { (hour: $0, snapshot: stored) } }
                series.sort { $0.hour < $1.hour }
                var newest: [String] = series.map(\.snapshot.name)
                var after: [ChangeID] = []
                if let last = series.last, last.hour + Int32(every) > hour {
                    unchanged += 1
                } else {
                    let fresh = SnapshotSchedule.name(snapshotName, hour: hour)
                    after = [take(fresh, reason: .scheduled)]
                    newest.append(fresh)
                }
                let keep = snapshot.keep?.value ?? VolumeSpec.Snapshot.defaultKeep
                keepNames.formUnion(newest.suffix(keep))
                for old in series where !keepNames.contains(old.snapshot.name) { deletes.append((old.snapshot, .retention, after)) }
            }
            let scheduledPrefixes = listed.filter { $0.every != nil }.map(\.name.value)
            for old in have where !keepNames.contains(old.name) {
                let inSeries = scheduledPrefixes.contains { SnapshotSchedule.hour(old.name, of: $0) != nil }
                if !inSeries { deletes.append((old, .removed, [])) }
            }
            for (old, reason, after) in deletes where !sources.contains(SnapshotRef(volume: key, snapshot: old.name)) {
                changes.append(Change(address: Address(kind: .snapshot, region: region, tenant: volume.tenant, name: "\(volume.name)@\(old.name)"),
                                      target: .region(region), action: .delete, reason: reason, dependsOn: after,
                                      destroys: ["snapshot \(old.name) of volume \(key) (\(ByteSize(bytes: old.capacity)), \(old.chunks) chunks)"],
                                      operation: .deleteSnapshot(store: key, snapshot: old.name)))
            }
        }
        planRestores(restores, stored: stored, taken: taken)
    }

    /// New Volumes made from a snapshot: the snapshot must be stored (or taken by this plan first) and fit.
    private mutating func planRestores(_ restores: [(Resource<VolumeSpec>, Address)], stored: [TenantKey: [ObservedSnapshot]], taken: [SnapshotRef: ChangeID]) {
        for (volume, node) in restores {
            guard let from = volume.spec.from?.value else { continue }
            let key = TenantKey(tenant: volume.tenant ?? "", name: from.volume.value)
            let name = DesiredDomain.volumeName(for: volume.address)
            let bytes = volume.spec.size.value.bytes
            var dependsOn: [ChangeID] = []
            var detail = ""
            if let snapshot = stored[key]?.first(where: { $0.name == from.snapshot.value }) {
                guard snapshot.capacity <= bytes else {
                    errors.append(.init(address: volume.address, message: "snapshot \(from.snapshot.value) of volume \(from.volume.value) holds \(ByteSize(bytes: snapshot.capacity)), more than its size \(ByteSize(bytes: bytes)); make it at least that large"))
                    continue
                }
                detail = " (\(ByteSize(bytes: snapshot.capacity)), \(snapshot.chunks) chunks)"
            } else if let take = taken[SnapshotRef(volume: key, snapshot: from.snapshot.value)] {
                dependsOn = [take]
            } else if snapshots == nil {
                continue  // the object store was not observed: nothing to check against
            } else {
                let names = (stored[key] ?? []).map(\.name).sorted()
                errors.append(.init(address: volume.address, message: "snapshot \(from.snapshot.value) of volume \(from.volume.value) is not in region \(region)'s object store"
                                    + (names.isEmpty ? " (that volume has no snapshots)" : "; it has: \(names.joined(separator: ", "))")))
                continue
            }
            let restore = Change(address: volume.address, target: target(node), action: .create, reason: .new,
                                 fields: [.init(field: "size", old: "", new: "\(ByteSize(bytes: bytes))"),
                                          .init(field: "from", old: "", new: "\(from.volume.value)@\(from.snapshot.value)\(detail)")],
                                 dependsOn: dependsOn, operation: .restoreVolume(pool: DesiredDomain.volumePool, name: name, bytes: bytes, store: key, snapshot: from.snapshot.value))
            changes.append(restore)
            // The instance that uses it is defined after it exists.
            for index in changes.indices where changes[index].target.node == node && changes[index].address.kind == .instance
                && Self.makes(changes[index].operation, volume: name) {
                changes[index].dependsOn.append(restore.id)
            }
        }
    }
}
