import Foundation
import SimulatedNodes
import Drivers
import ManifestSources
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
    typealias World = ConvergeWorld

    private func ringFile(_ world: World, node: String) -> String {
        SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: node))
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

    // MARK: Addresses

    private func instance(_ name: String, tenant: String = "acme", extra: String = "") -> String {
        "---\nkind: Instance\nname: \(name)\nregion: lab\ntenant: \(tenant)\nspec: {flavor: m1.small, image: ubuntu, network: private\(extra)}\n"
    }

    private func ip(of name: String, in world: World) throws -> IPv4Address? {
        try world.observed().flatMap(\.domains).first { $0.address?.name == name }?.ip
    }

    @Test func aFixedIPHeldByAnotherDeclaredInstanceIsAnErrorNeverADelete() throws {
        let world = try World()
        try world.apply()
        let taken = try #require(try ip(of: "web-2", in: world))
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme + instance("web-3", extra: ", fixedIP: \(taken)"))
        let plan = try world.plan()
        let error = try #require(plan.errors.first)
        #expect(error.address.name == "web-3" && error.message.contains("in use by instance/lab/acme/web-2"))
        #expect(!plan.changes.contains { $0.address.name == "web-2" }, "web-2 keeps its address and is neither renumbered nor deleted")

        // The same when an existing instance asks for someone else's address: it stays as it is.
        let other = try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme)
        try world.commit("manifests/tenants/other.yaml", other.replacingOccurrences(of: "network: private", with: "network: private, fixedIP: \(taken)"))
        let second = try world.plan()
        #expect(second.errors.map(\.address.name) == ["db-1"])
        #expect(second.changes.isEmpty, "\(second.changes.map { "\($0.action) \($0.address)" })")
    }

    @Test func addressCapacityAndReservedAddressesAreValidated() throws {
        let world = try World()
        let network = try String(contentsOfFile: world.repo.file("regions/lab/network.yaml"), encoding: .utf8)
        // A /28 has 14 host addresses; the gateway and the DNS server take 2, and each of lab's 3 compute nodes takes one
        // of its own (it is its instances' gateway and DHCP server): 9 are left for instances. The fixture has 3.
        try world.repo.write("regions/lab/network.yaml", network.replacingOccurrences(of: "fixedRange: 10.20.0.0/16", with: "fixedRange: 10.20.0.0/28"))
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "fixedIP: 10.20.0.10", with: "fixedIP: 10.20.0.5")
        let nine = acme + (3...8).map { instance("web-\($0)") }.joined()
        try world.repo.write("manifests/tenants/acme.yaml", nine)
        let fits = try Loader().load(DirectorySource(root: world.repo.path))
        #expect(fits.diagnostics.isEmpty, "\(fits.diagnostics.map(\.message))")
        try GitCLI.commitAll(in: world.repo.path)
        let planned = try world.plan()
        #expect(planned.errors.isEmpty, "what validates can be planned: \(planned.errors.map(\.message))")

        // One more: validation refuses it, as the plan would (before, validation counted 12 and the plan then failed
        // with "network 'private' has no free address left").
        try world.repo.write("manifests/tenants/acme.yaml", nine + instance("web-9"))
        let full = try Loader().load(DirectorySource(root: world.repo.path))
        let capacity = full.diagnostics.map(\.message).filter { $0.contains("holds only") }
        #expect(capacity == ["network 'private' of region 'lab' has 10 instances but its fixed range 10.20.0.0/28 holds only 9 addresses for them "
                             + "(14 host addresses, less 2 for the gateway and DNS servers and 3 for the region's compute nodes, each its instances' gateway on the network)"])

        try world.repo.write("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "fixedIP: 10.20.0.5", with: "fixedIP: 10.20.0.2"))
        let dns = try Loader().load(DirectorySource(root: world.repo.path))
        #expect(dns.diagnostics.map(\.message) == ["fixed IP 10.20.0.2 of instance 'web-1' is a DNS server of network 'private'"])
    }

    // MARK: MACs

    @Test func macsAreUniquePerNetworkEvenWhenTheirHashesCollide() throws {
        // Two instance names whose first MAC candidates collide (24 bits: expected within a few thousand names).
        var seen: [String: String] = [:]
        var pair: (String, String)?
        for n in 0..<200_000 {
            let name = "vm-\(n)"
            let mac = DesiredDomain.mac(for: Address(kind: .instance, region: "lab", tenant: "acme", name: name))
            if let first = seen[mac] { pair = (first, name); break }
            seen[mac] = name
        }
        let (a, b) = try #require(pair)
        let world = try World()
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme + instance(a) + instance(b))
        #expect(try world.apply().succeeded)
        let domains = try world.observed().flatMap(\.domains).filter { [a, b].contains($0.address?.name) }
        #expect(domains.count == 2 && Set(domains.compactMap(\.mac)).count == 2, "\(domains.map(\.mac))")
        #expect(try world.plan().isEmpty, "allocated MACs are recorded and kept")
    }

    // MARK: Ownership

    private func defineUnmanaged(_ world: World, node: String, name: String, uuid: String?) throws {
        let host = SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: node))
        let xml = try String(contentsOfFile: host, encoding: .utf8)
        try xml.replacingOccurrences(of: "</node>", with: """
            <domain type='test'><name>\(name)</name>\(uuid.map { "<uuid>\($0)</uuid>" } ?? "")<memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>
            </node>
            """).write(toFile: host, atomically: true, encoding: .utf8)
    }

    @Test func aDomainStackLabDoesNotOwnIsNeverDefinedOverStoppedOrDeleted() throws {
        let world = try World()
        try world.apply()
        let web3 = Address(kind: .instance, region: "lab", tenant: "acme", name: "web-3")
        let web1 = Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1")
        let want = DesiredDomain(address: web3, node: Address(kind: .node, region: "lab", name: "lab-1"), name: DesiredDomain.name(for: web3),
                                 vcpus: 1, memoryKiB: 1 << 20, disks: [], interface: .init(bridge: "br100", mac: DesiredDomain.mac(for: web3),
                                 ip: IPv4Address(parsing: "10.20.0.99")!), running: true, flavor: "m1.small", image: "ubuntu")
        // StackLab's name and UUID, but no StackLab metadata; and a stranger that has web-1's UUID under another name.
        try defineUnmanaged(world, node: "lab-1", name: "acme:web-3", uuid: want.uuid)
        try defineUnmanaged(world, node: "lab-1", name: "stranger", uuid: nil)
        let reconciler = try world.reconciler()
        let driver = try #require(try reconciler.drivers(for: ["lab"])[Address(kind: .node, region: "lab", name: "lab-1")])
        #expect(throws: DriverError.self) { try driver.apply(.defineDomain(want, restart: false)) }
        #expect(throws: DriverError.self) { try driver.apply(.replaceDomain(want)) }
        #expect(throws: DriverError.self) { try driver.apply(.setPower(domain: "stranger", running: false)) }
        #expect(throws: DriverError.self) { try driver.apply(.deleteDomain(domain: "stranger", instance: web1)) }
        #expect(throws: DriverError.self) { try driver.apply(.deleteDomain(domain: "acme:web-3", instance: web3)) }
        let after = try driver.observe().domains.filter { $0.address == nil }.map(\.name).sorted()
        #expect(after == ["acme:web-3", "stranger"], "both are still there, untouched")

        var sameUUID = want
        sameUUID.name = "acme:web-3-new"
        #expect(throws: DriverError.self) { try driver.apply(.defineDomain(sameUUID, restart: false)) }
    }
}
