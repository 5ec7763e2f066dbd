import Foundation
import Drivers
import Manifests
import Planning
import TestSupport
import Testing
@testable import Reconcile

/// Tenant volumes: attached ones are disks of their instance's domain (in the node's volume pool); each kind of
/// change plans exactly what it should, and a volume outlives the instance it was attached to.
@Suite struct VolumePlanTests {
    typealias World = ConvergeWorld

    private func lines(_ plan: Plan) -> [String] {
        plan.changes.filter { $0.address.kind == .instance || $0.address.kind == .volume }.map { change in
            "\(change.action.rawValue) \(change.address)\(change.restarts ? " (restarts)" : "")" + change.fields.map { " [\($0.field): \($0.new.isEmpty ? $0.old : $0.new)]" }.joined()
        }
    }

    private func volumes(_ world: World) throws -> [String: [String: UInt64]] {
        var found: [String: [String: UInt64]] = [:]
        for node in try world.observed() { found[node.address.name] = node.volumes.filter { $0.key.hasPrefix("v-") } }
        return found.filter { !$0.value.isEmpty }
    }

    @Test func anAttachedVolumeIsADiskOfItsInstanceOnItsNode() throws {
        let world = try World()
        try world.apply()
        let data = DesiredDomain.volumeName(for: Address(kind: .volume, region: "lab", tenant: "acme", name: "data"))
        let web1 = try #require(try world.observed().first { $0.domains.contains { $0.name == "acme:web-1" } })
        #expect(try volumes(world) == [web1.address.name: [data: 100 << 30]])
        #expect(try world.plan().isEmpty)
    }

    @Test func attachGrowDetachAndDeleteEachPlanExactlyTheirChange() throws {
        let world = try World()
        try world.apply()
        let logs = DesiredDomain.volumeName(for: Address(kind: .volume, region: "lab", tenant: "acme", name: "logs"))

        // Attach a new volume to a running instance: its domain is redefined (a restart the plan shows).
        try world.commit("manifests/tenants/acme-logs.yaml", "kind: Volume\nname: logs\nregion: lab\ntenant: acme\nspec: {size: 10GiB, instance: web-2}\n")
        #expect(lines(try world.plan()) == ["update instance/lab/acme/web-2 (restarts) [attach vdb: volume \(logs) (10GiB)]"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)

        // Grow it: the disk grows under the running guest, no restart.
        try world.commit("manifests/tenants/acme-logs.yaml", "kind: Volume\nname: logs\nregion: lab\ntenant: acme\nspec: {size: 20GiB, instance: web-2}\n")
        #expect(lines(try world.plan()) == ["update instance/lab/acme/web-2 [disk vdb: 20GiB]"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)

        // Shrinking is refused.
        try world.commit("manifests/tenants/acme-logs.yaml", "kind: Volume\nname: logs\nregion: lab\ntenant: acme\nspec: {size: 5GiB, instance: web-2}\n")
        #expect(try world.plan().errors.map(\.message).contains { $0.contains("would shrink") })

        // Detach: the instance is redefined without it; the volume stays where it is, unattached.
        try world.commit("manifests/tenants/acme-logs.yaml", "kind: Volume\nname: logs\nregion: lab\ntenant: acme\nspec: {size: 20GiB}\n")
        let detach = try world.plan()
        #expect(lines(detach) == ["update instance/lab/acme/web-2 (restarts)"], "\(lines(detach))")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try volumes(world).values.contains { $0[logs] == 20 << 30 }, "the volume outlives its attachment")

        // Delete it: once nothing uses it, it goes (and says what it destroys).
        try FileManager.default.removeItem(atPath: world.repo.file("manifests/tenants/acme-logs.yaml"))
        try GitCLI.commitAll(in: world.repo.path)
        let delete = try world.plan()
        #expect(lines(delete) == ["delete volume/lab/\(logs)"], "\(lines(delete))")
        #expect(delete.changes.first { $0.address.kind == .volume }?.destroys.first?.contains("(20GiB)") == true)
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(!(try volumes(world).values.contains { $0[logs] != nil }))
    }

    @Test func deletingAnAttachedVolumeDetachesItFirst() throws {
        let world = try World()
        try world.apply()
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "kind: Volume\nname: data\nregion: lab\ntenant: acme\nspec: {size: 100GiB, instance: web-1, device: vdb}\n---\n", with: ""))
        let plan = try world.plan()
        let update = try #require(plan.changes.first { $0.address.name == "web-1" })
        let delete = try #require(plan.changes.first { $0.address.kind == .volume })
        #expect(update.restarts)
        #expect(delete.dependsOn.contains(update.id), "the domain lets go of it before it is deleted")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try volumes(world).isEmpty)
    }

    @Test func anUnattachedVolumeGoesToAVolumeNodeAndAMovedInstanceTakesItsVolumeAlong() throws {
        let world = try World()
        try world.apply()
        try world.commit("manifests/tenants/acme-spare.yaml", "kind: Volume\nname: spare\nregion: lab\ntenant: acme\nspec: {size: 5GiB}\n")
        let plan = try world.plan()
        #expect(lines(plan).count == 1 && lines(plan)[0].hasPrefix("create volume/lab/acme/spare"), "\(lines(plan))")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)

        // web-1 (with 'data' attached) pinned elsewhere: the volume is copied with it and then deleted where it was.
        let before = try #require(try world.observed().first { $0.domains.contains { $0.name == "acme:web-1" } }).address.name
        let target = ["lab-1", "lab-2", "lab-3"].first { $0 != before }!
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "  fixedIP: 10.20.0.10\n", with: "  fixedIP: 10.20.0.10\n  node: \(target)\n"))
        let move = try world.plan()
        let data = DesiredDomain.volumeName(for: Address(kind: .volume, region: "lab", tenant: "acme", name: "data"))
        let copy = try #require(move.changes.first { $0.address.name == "web-1" && $0.action == .create })
        let old = try #require(move.changes.first { $0.address.kind == .volume && $0.target.node?.name == before })
        #expect(old.dependsOn.contains(copy.id) && old.destroys.isEmpty, "deleted only after the copy: \(old)")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try volumes(world)[target]?[data] == 100 << 30)
        #expect(try volumes(world)[before]?[data] == nil)

        // A volume no volume node has room for (each holds 4 TB; the region 12 TB, so validation lets it through).
        try world.commit("manifests/tenants/acme-huge.yaml", "kind: Volume\nname: huge\nregion: lab\ntenant: acme\nspec: {size: 5TB}\n")
        let huge = try world.plan().errors.map(\.message)
        #expect(huge.count == 1 && huge[0].hasPrefix("no volume node of region lab has room for its 5TB (most free: "), "\(huge)")
    }
}

/// Snapshots plan exactly their changes: one-offs once, schedules when due with the newest `keep` kept, unlisted ones
/// deleted while their volume is declared and kept after it leaves, restores from a stored (or just taken) snapshot.
/// Planned against a listing of the object store given as is (the planner is pure; the Swift-backed tests take and
/// restore for real).
@Suite struct SnapshotPlanTests {
    typealias World = ConvergeWorld
    static let hour: Int32 = 500_000  // 2027-01-15 08:00 UTC

    /// The world converged, its region with an object store, and acme's volume `data` as `data`.
    private func world(data: String) throws -> World {
        let world = try World()
        try world.apply()
        try world.commit("regions/lab/region.yaml", "kind: Region\nname: lab\nspec:\n  sponsor: Fixture lab\n  objectStore: {proxy: \"http://127.0.0.1:9\", user: \"lab:snap\"}\n")
        try setData(world, data)
        return world
    }

    private func setData(_ world: World, _ data: String) throws {
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        let pattern = try #require(acme.range(of: #"name: data\nregion: lab\ntenant: acme\nspec: [^\n]*\n"#, options: .regularExpression))
        try world.commit("manifests/tenants/acme.yaml", acme.replacingCharacters(in: pattern, with: "name: data\nregion: lab\ntenant: acme\nspec: \(data)\n"))
    }

    private func plan(_ world: World, stored: [ObservedSnapshot], hour: Int32 = hour) throws -> Plan {
        let reconciler = try world.reconciler()
        let observed = try reconciler.observe(try reconciler.drivers(for: ["lab"]))
        return Planner.plan(model: reconciler.model, observed: observed, regions: ["lab"], storedRings: try reconciler.storedRings(), hour: hour,
                            snapshots: ["lab": stored])
    }

    private func lines(_ plan: Plan) -> [String] {
        plan.changes.filter { $0.address.kind == .snapshot || $0.address.kind == .volume || !$0.dependsOn.isEmpty && $0.address.kind == .instance }.map { change in
            "\(change.action.rawValue) \(change.address) (\(change.reason.rawValue))" + change.dependsOn.map { " after \($0.address)" }.joined()
        }
    }

    private func stored(_ name: String, hoursAgo: Int32 = 100, volume: String = "acme/data", capacity: UInt64 = 100 << 30) -> ObservedSnapshot {
        ObservedSnapshot(volume: TenantKey(parsing: volume)!, name: name, capacity: capacity, chunks: 3, created: Int64(Self.hour - hoursAgo) * 3600)
    }

    @Test func scheduledNamesRoundTrip() {
        let name = SnapshotSchedule.name("nightly", hour: Self.hour)
        #expect(name == "nightly-2027011508")
        #expect(SnapshotSchedule.hour(name, of: "nightly") == Self.hour)
        #expect(SnapshotSchedule.hour("nightly-2027011508", of: "night") == nil)
        #expect(SnapshotSchedule.hour("nightly-2027023108", of: "nightly") == nil, "no February 31st")
    }

    @Test func oneOffsAndSchedulesAreTakenOnceAndPrunedToTheirKeep() throws {
        let world = try world(data: "{size: 100GiB, instance: web-1, device: vdb, snapshots: [{name: before}, {name: nightly, every: 24h, keep: 2}]}")
        let nightly = { (ago: Int32) in SnapshotSchedule.name("nightly", hour: Self.hour - ago) }

        // Nothing stored: both taken, the second incremental after the first.
        let first = try plan(world, stored: [])
        #expect(lines(first) == ["create snapshot/lab/acme/data@before (new)", "create snapshot/lab/acme/data@\(nightly(0)) (its schedule is due)"], "\(lines(first))")
        let takes = first.changes.filter { $0.address.kind == .snapshot }
        #expect(takes.allSatisfy { $0.target.node != nil && $0.destroys.isEmpty })
        #expect(takes.last?.fields.contains { $0.field == "incremental after" && $0.new == "before" } == true)
        #expect(first.changes.allSatisfy { $0.address.kind == .snapshot }, "nothing else changes: \(lines(first))")

        // Due again, with three older ones: one taken, the two beyond keep 2 deleted after it.
        let due = try plan(world, stored: [stored("before"), stored(nightly(30), hoursAgo: 30), stored(nightly(54), hoursAgo: 54), stored(nightly(78), hoursAgo: 78)])
        #expect(lines(due) == ["create snapshot/lab/acme/data@\(nightly(0)) (its schedule is due)",
                               "delete snapshot/lab/acme/data@\(nightly(78)) (past its retention) after snapshot/lab/acme/data@\(nightly(0))",
                               "delete snapshot/lab/acme/data@\(nightly(54)) (past its retention) after snapshot/lab/acme/data@\(nightly(0))"], "\(lines(due))")
        #expect(due.changes.filter { $0.action == .delete }.allSatisfy { $0.target == .region("lab") && $0.destroys.first?.contains("3 chunks") == true })

        // Not due: nothing.
        #expect(try plan(world, stored: [stored("before"), stored(nightly(5), hoursAgo: 5)]).changes.isEmpty)

        // A one-off that leaves the list is deleted; snapshots of a volume that left the manifests are kept.
        try setData(world, "{size: 100GiB, instance: web-1, device: vdb, snapshots: [{name: nightly, every: 24h, keep: 2}]}")
        #expect(lines(try plan(world, stored: [stored("before"), stored(nightly(5), hoursAgo: 5)])) == ["delete snapshot/lab/acme/data@before (removed from manifests)"])
        let gone = lines(try plan(world, stored: [stored("old", volume: "acme/gone"), stored(nightly(5), hoursAgo: 5)]))
        #expect(gone.isEmpty, "a deleted volume's snapshots survive: \(gone)")
    }

    @Test func aRestoreNeedsAStoredSnapshotThatFitsAndComesBeforeItsInstance() throws {
        let world = try world(data: "{size: 100GiB, instance: web-1, device: vdb, snapshots: [{name: before}]}")
        let copy = "---\nkind: Volume\nname: copy\nregion: lab\ntenant: acme\nspec: {size: %@, %@from: {volume: data, snapshot: %@}}\n"
        func addCopy(size: String, attach: String = "", snapshot: String = "before") throws {
            try world.commit("manifests/tenants/acme-copy.yaml", String(format: copy, size, attach, snapshot))
        }

        try addCopy(size: "100GiB")
        let restore = try plan(world, stored: [stored("before")])
        #expect(lines(restore) == ["create volume/lab/acme/copy (new)"], "\(lines(restore))")
        let change = try #require(restore.changes.first { $0.address.name == "copy" })
        #expect(change.fields.contains { $0.field == "from" && $0.new == "data@before (100GiB, 3 chunks)" })
        guard case .transfer(.restoreVolume(_, _, let bytes, let store, let snapshot)) = change.operation else { Issue.record("\(change.operation)"); return }
        #expect(bytes == 100 << 30 && store == TenantKey(tenant: "acme", name: "data") && snapshot == "before")

        // Taken in the same plan: the restore waits for it.
        #expect(lines(try plan(world, stored: [])) == ["create snapshot/lab/acme/data@before (new)", "create volume/lab/acme/copy (new) after snapshot/lab/acme/data@before"])

        // Too small, or not stored: errors that say what to do.
        try addCopy(size: "50GiB")
        let small = try plan(world, stored: [stored("before")]).errors.map(\.message)
        #expect(small == ["snapshot before of volume data holds 100GiB, more than its size 50GiB; make it at least that large"], "\(small)")
        try addCopy(size: "100GiB", snapshot: "nope")
        let missing = try plan(world, stored: [stored("before")]).errors.map(\.message)
        #expect(missing == ["snapshot nope of volume data is not in region lab's object store; it has: before"], "\(missing)")

        // Attached to an instance: restored first, then the instance is redefined with it.
        try addCopy(size: "100GiB", attach: "instance: web-2, ")
        let attached = lines(try plan(world, stored: [stored("before")]))
        #expect(attached.contains("create volume/lab/acme/copy (new)"), "\(attached)")
        #expect(attached.contains { $0.hasPrefix("update instance/lab/acme/web-2") && $0.hasSuffix("after volume/lab/acme/copy") }, "\(attached)")
    }
}
