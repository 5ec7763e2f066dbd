import Foundation
import Hypervisor
import Manifests
import Planning
import TestSupport
import Testing
@testable import Reconcile

/// Tenant volumes: attached ones are disks of their instance's domain (in the node's volume pool); each kind of
/// change plans exactly what it should, and a volume outlives the instance it was attached to.
@Suite struct VolumePlanTests {
    typealias World = ConvergeTests.World

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
    }
}
