import Foundation
import Hypervisor
import Manifests
import Planning
import Rings
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// Lost state and edited plans must never reshuffle storage, touch what StackLab does not own, or write outside the
/// state directory.
@Suite struct HardeningTests {
    typealias World = ConvergeTests.World

    private func ringFile(_ world: World, node: String) -> String {
        LibvirtNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: node))
            .replacingOccurrences(of: ".xml", with: "") + "/etc/swift/object.ring.gz"
    }

    private func loseState(_ world: World) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: world.state.path) where name.hasPrefix("stacklab.sqlite") {
            try FileManager.default.removeItem(atPath: "\(world.state.path)/\(name)")
        }
    }

    @Test func lostStateAdoptsTheInstalledRingsInsteadOfRebuildingThem() throws {
        let world = try World()
        try world.apply()
        let installed = try Data(contentsOf: URL(fileURLWithPath: ringFile(world, node: "lab-1")))
        try loseState(world)

        let plan = try world.plan()
        #expect(plan.errors.isEmpty, "\(plan.errors.map(\.message))")
        let rings = plan.changes.filter { $0.address.kind == .ring }
        #expect(rings.map { "\($0.action.rawValue) \($0.address)@\($0.target) (\($0.reason.rawValue))" }.sorted() == [
            "create ring/edge/object@region/edge (adopted from the installed ring)", "create ring/lab/object@region/lab (adopted from the installed ring)"],
                "only the builders are saved: no node gets a new ring file")
        #expect(plan.rings.allSatisfy { $0.replicasMoved == 0 }, "nothing moves")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: ringFile(world, node: "lab-3"))) == installed, "the served ring is unchanged")
    }

    @Test func lostStateWithNodesThatDisagreeIsRefusedNotRebuilt() throws {
        let world = try World()
        try world.apply()
        try loseState(world)
        try Data("another ring".utf8).write(to: URL(fileURLWithPath: ringFile(world, node: "lab-2")))
        let plan = try world.plan()
        let error = try #require(plan.errors.first { $0.address.description == "ring/lab/object" })
        #expect(error.message.contains("no builder") && error.message.contains("lab-1, lab-2, lab-3"))
        #expect(!plan.changes.contains { $0.address.description == "ring/lab/object" }, "nothing is built or installed")
    }

    @Test func aBuiltRingsPartPowerCannotChange() throws {
        let world = try World()
        try world.apply()
        try world.commit("regions/lab/rings.yaml", "kind: Ring\nname: object\nspec:\n  partPower: 10\n  replicas: 3\n")
        let plan = try world.plan()
        #expect(plan.errors.first { $0.address.description == "ring/lab/object" }?.message.contains("part power is 8 and cannot change to 10") == true)
        #expect(!plan.changes.contains { $0.address.description == "ring/lab/object" })
    }

    @Test func ringFileNamesArePlainNamesNeverPaths() throws {
        let world = try World()
        try world.apply()
        let reconciler = try world.reconciler()
        let driver = try #require(try reconciler.drivers(for: ["lab"])[Address(kind: .node, region: "lab", name: "lab-1")])
        for name in ["../../../../evil.ring.gz", "/tmp/x.ring.gz", "object.ring.gz/../x.ring.gz", ".ring.gz", "object.ring"] {
            #expect(throws: DriverError.self) { try driver.apply(.installRing(file: name, content: Data("x".utf8), sha256: "")) }
            #expect(throws: DriverError.self) { try driver.readRing(name) }
        }
        #expect(!FileManager.default.fileExists(atPath: "\(world.state.path)/evil.ring.gz"))
    }
}
