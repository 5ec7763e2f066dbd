import Foundation
import SimulatedNodes
import Drivers
import Manifests
import Planning
import Rings
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// Swift rings derived from Ring manifests, built, saved in the state store and installed on every storage and
/// controller node of the region (simulated nodes keep them under the state directory).
@Suite struct RingConvergeTests {
    static let labRing = Address(kind: .ring, region: "lab", name: "object")

    typealias World = ConvergeWorld

    private func ringFile(_ world: World, node: String, _ name: String = "object.ring.gz") -> String {
        SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: node))
            .replacingOccurrences(of: ".xml", with: "") + "/etc/swift/\(name)"
    }

    @Test func ringsAreBuiltInstalledEverywhereAndThenLeftAlone() throws {
        let world = try World()
        let plan = try world.plan()
        let builds = plan.changes.filter { $0.address.kind == .ring && $0.target.node == nil }
        #expect(builds.map(\.address.description) == ["ring/edge/object", "ring/lab/object"])
        let ringPlan = try #require(plan.rings.first { $0.address.description == "ring/lab/object" })
        #expect(ringPlan.added.count == 6)  // 3 storage nodes × 2 disks
        #expect(ringPlan.dispersion == 0)
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)

        let files = try ["lab-1", "lab-2", "lab-3"].map { try Data(contentsOf: URL(fileURLWithPath: ringFile(world, node: $0))) }
        #expect(Set(files).count == 1, "every node has the same ring")
        let ring = try RingFile.decode([UInt8](files[0]))
        #expect(ring.partPower == 8)
        #expect(ring.replicaCount == 3)
        for partition in 0..<ring.partitionCount {
            #expect(Set(ring.nodes(partition: partition).map(\.zone)).count == 3, "one replica per server (zone)")
        }
        #expect(try SQLiteState(directory: world.state.path).rings().keys.map(\.description).sorted() == ["ring/edge/object", "ring/lab/object"])
    }

    @Test func aStaleOrMissingRingIsDriftAndApplyHealsIt() throws {
        let world = try World()
        try world.apply()
        try Data("not a ring".utf8).write(to: URL(fileURLWithPath: ringFile(world, node: "lab-2")))
        try FileManager.default.removeItem(atPath: ringFile(world, node: "lab-3"))
        let plan = try world.plan()
        let changes = plan.changes
        #expect(changes.map { "\($0.action.rawValue) \($0.address)@\($0.target.node!.name) (\($0.reason.rawValue))" }.sorted() == [
            "create ring/lab/object@lab-3 (drifted)", "update ring/lab/object@lab-2 (drifted)"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
    }

    @Test func addingAStorageNodeRebalancesOnlyWhatItIsOwed() throws {
        let world = try World()
        // No rest time, so the test need not wait an hour after the first build.
        try world.commit("regions/lab/rings.yaml", "kind: Ring\nname: object\nspec:\n  partPower: 8\n  replicas: 3\n  minPartHours: 0\n")
        try world.apply()
        try world.commit("regions/lab/more.yaml", """
            kind: Node
            name: lab-4
            spec:
              address: 172.16.20.4
              libvirt: simulated
              roles: [compute, storage]
              cpus: 16
              memory: 64GiB
              disks: [{name: sdb, size: 2TB}, {name: sdc, size: 2TB}]
            """)
        let plan = try world.plan()
        let ringPlan = try #require(plan.rings.first { $0.address.description == "ring/lab/object" })
        #expect(ringPlan.added == ["lab-4/sdb", "lab-4/sdc"])
        // The new server is a fourth zone: it is owed a quarter of the 768 replicas.
        #expect(ringPlan.replicasMoved >= 192 && ringPlan.replicasMoved <= 194)
        #expect(ringPlan.dispersion == 0)
        #expect(plan.changes.filter { $0.address.description == "ring/lab/object" && $0.target.node != nil }.compactMap(\.target.node?.name).sorted()
                == ["lab-1", "lab-2", "lab-3", "lab-4"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
    }

    @Test func minPartHoursHoldsARebalanceBackAndThePlanSaysSo() throws {
        let world = try World()
        try world.apply()
        // A storage node added in the hour the ring was built: partitions that just moved must rest an hour
        // (minPartHours defaults to 1) before they balance onto it.
        try world.commit("regions/lab/more.yaml", """
            kind: Node
            name: lab-4
            spec: {address: 172.16.20.4, libvirt: simulated, roles: [compute, storage], cpus: 16, memory: 64GiB, disks: [{name: sdb, size: 2TB}]}
            """)
        let plan = try world.plan()
        let ringPlan = try #require(plan.rings.first { $0.address.description == "ring/lab/object" })
        #expect(ringPlan.heldBack > 0, "partitions placed this hour cannot move again yet")
        #expect(plan.changes.first { $0.target.node == nil && $0.address.description == "ring/lab/object" }?.fields
                    .contains { $0.field == "held back by min_part_hours" } == true)
    }

    @Test func anUnreadableRingBuilderStopsThePlanInsteadOfRebuildingFromScratch() throws {
        let world = try World()
        try world.apply()
        try SQLiteState(directory: world.state.path).saveRing(address: Self.labRing, state: Data("{\"not\": \"a builder\"}".utf8), checksum: "x",
                                                              previous: try SQLiteState(directory: world.state.path).rings(nil)[Self.labRing]?.checksum)
        do {
            _ = try world.plan()
            Issue.record("a plan must not start over when the saved ring cannot be read")
        } catch {
            #expect("\(error)".contains("cannot read the ring builders"))
        }
    }
}
