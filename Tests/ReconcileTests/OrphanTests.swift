import Foundation
import SimulatedNodes
import Drivers
import Manifests
import Planning
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// Nodes and regions are identified by region and name, and what StackLab made on a node or region that left the
/// manifests is deleted, moved with consent, or (with --keep-orphans) reported: never duplicated or forgotten.
@Suite struct OrphanTests {
    typealias World = ConvergeWorld

    static func run(_ world: World, _ configure: (inout ReconcileRun.Options) -> Void = { _ in }) throws -> ReconcileRun.Report {
        var options = ReconcileRun.Options()
        configure(&options)
        var reconciler = try world.reconciler()
        reconciler.state = try SQLiteState.existing(directory: world.state.path)
        return try ReconcileRun(reconciler: reconciler, options: options, leases: LocalRegionLeases(stateDirectory: world.state.path)) { try SQLiteState(directory: world.state.path) }.run()
    }

    static func plan(_ world: World, keepOrphans: Bool = false) throws -> Plan {
        var reconciler = try world.reconciler()
        reconciler.state = try SQLiteState.existing(directory: world.state.path)
        reconciler.options.keepOrphans = keepOrphans
        let regions = try reconciler.regions([])
        return try reconciler.refreshPlan(regions)
    }

    /// Adds compute node lab-4, pins web-2 to it and converges; returns acme's manifest as it was (web-2 unpinned).
    static func runWebTwoOnANewNode(_ world: World) throws -> String {
        try world.repo.write("regions/lab/lab-4.yaml", """
            kind: Node
            name: lab-4
            spec: {address: 172.16.20.4, libvirt: simulated, roles: [compute], cpus: 16, memory: 64GiB}
            """)
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        let unpinned = "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}"
        try world.commit("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: unpinned, with: unpinned.replacingOccurrences(of: "}", with: ", node: lab-4}")))
        #expect(try Self.run(world).remaining?.isEmpty == true)
        return acme
    }

    static let edgeInstance = """
        ---
        kind: Instance
        name: cache-1
        region: edge
        tenant: acme
        spec: {flavor: m1.small, image: ubuntu, network: private}
        """

    @Test func theSameNodeNameInTwoRegionsIsTwoNodes() throws {
        let world = try World()
        let nodes = try String(contentsOfFile: world.repo.file("regions/edge/nodes.yaml"), encoding: .utf8)
        try world.repo.write("regions/edge/nodes.yaml", nodes.replacingOccurrences(of: "edge-", with: "lab-"))
        try world.commit("manifests/tenants/edge.yaml", Self.edgeInstance)
        let report = try Self.run(world)
        #expect(report.applied?.succeeded == true)
        #expect(report.remaining?.isEmpty == true, "\(report.remaining?.changes.map(\.id.description) ?? [])")
        #expect(try Self.plan(world).isEmpty)
        let observed = try world.observed()
        #expect(Set(observed.map(\.address.description)).count == 6, "node/lab/lab-1 and node/edge/lab-1 are observed apart")
        for node in observed {
            #expect(node.domains.allSatisfy { $0.address?.region == node.address.region }, "\(node.address) holds only its own region's instances")
        }
        #expect(observed.flatMap(\.domains).count == 4)
    }

    @Test func aRemovedNodesInstancesMoveWithTheirDisksAndTheNodeIsThenForgotten() throws {
        let world = try World()
        let acme = try Self.runWebTwoOnANewNode(world)
        let lab4 = Address(kind: .node, region: "lab", name: "lab-4")
        #expect(try world.observed().first { $0.address == lab4 }?.domains.map(\.name) == ["acme:web-2"])

        // lab-4 leaves the manifests, and web-2 its pin.
        try FileManager.default.removeItem(atPath: world.repo.file("regions/lab/lab-4.yaml"))
        try world.commit("manifests/tenants/acme.yaml", acme)
        let plan = try Self.plan(world)
        let web2 = plan.changes.filter { $0.address.name == "web-2" }
        #expect(web2.map { "\($0.action.rawValue)@\($0.target) (\($0.reason.rawValue))" }.first == "delete@node/lab/lab-4 (its node left the manifests)")
        #expect(web2.last?.action == .create && web2.last?.reason == .moved && web2.last?.restarts == true)
        #expect(web2.first?.destroys == [], "the disks are copied to the new node before the old domain goes")
        #expect(web2.first?.dependsOn == web2.last.map { [$0.id] })
        #expect(plan.changes.contains { $0.address.description == "network/lab/private" && $0.target == .node(lab4) && $0.action == .delete })

        let report = try Self.run(world)
        #expect(report.applied?.succeeded == true)
        #expect(report.remaining?.isEmpty == true)
        let observed = try world.observed()
        #expect(observed.flatMap(\.domains).filter { $0.address?.name == "web-2" }.count == 1, "web-2 runs exactly once")
        #expect(!observed.contains { $0.address == lab4 }, "an emptied orphan node is forgotten")
        #expect(try Self.plan(world).isEmpty)
    }

    @Test func keepOrphansReportsThemAndNeverStartsASecondCopy() throws {
        let world = try World()
        let acme = try Self.runWebTwoOnANewNode(world)
        try FileManager.default.removeItem(atPath: world.repo.file("regions/lab/lab-4.yaml"))
        try world.commit("manifests/tenants/acme.yaml", acme)
        let plan = try Self.plan(world, keepOrphans: true)
        #expect(plan.orphans.map(\.address.description) == ["instance/lab/acme/web-2"])
        #expect(!plan.changes.contains { $0.address.name == "web-2" }, "no second copy elsewhere")
        let report = try Self.run(world) { $0.keepOrphans = true }
        #expect(report.plan.changes.isEmpty)
        #expect(try world.observed().flatMap(\.domains).filter { $0.address?.name == "web-2" }.count == 1)
    }

    @Test func aRemovedRegionIsDeletedBehindTheMassDeleteGuard() throws {
        let world = try World()
        try world.commit("manifests/tenants/edge.yaml", Self.edgeInstance)
        #expect(try Self.run(world).remaining?.isEmpty == true)
        try FileManager.default.removeItem(atPath: world.repo.file("regions/edge"))
        try FileManager.default.removeItem(atPath: world.repo.file("manifests/tenants/edge.yaml"))
        try GitCLI.commitAll(in: world.repo.path)
        let plan = try Self.plan(world)
        #expect(plan.regions.contains("edge"), "a region that left the manifests is still planned")
        #expect(plan.changes.filter { $0.region == "edge" && $0.address.kind == .instance }.map { "\($0.action.rawValue) \($0.address) (\($0.reason.rawValue))" }
                == ["delete instance/edge/acme/cache-1 (its region left the manifests)"])
        #expect(throws: ReconcileRun.Refusal.self) { try Self.run(world) }
        let report = try Self.run(world) { $0.allowMassDelete = true }
        #expect(report.applied?.succeeded == true)
        #expect(report.remaining?.isEmpty == true)
        #expect(!(try world.observed().contains { $0.address.region == "edge" }), "its emptied nodes are forgotten")
        #expect(try Self.plan(world).isEmpty)
    }

    @Test func aDomainNameTakenByAnUnmanagedDomainIsAPlanErrorNamingBoth() throws {
        let world = try World()
        _ = try world.plan()  // creates the simulated hosts
        for name in ["lab-1", "lab-2", "lab-3"] {
            let host = SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: name))
            let xml = try String(contentsOfFile: host, encoding: .utf8)
            try xml.replacingOccurrences(of: "</node>", with: """
                <domain type='test'><name>acme:web-1</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>
                </node>
                """).write(toFile: host, atomically: true, encoding: .utf8)
        }
        let plan = try world.plan()
        let error = try #require(plan.errors.first { $0.address.name == "web-1" })
        #expect(error.message.contains("'acme:web-1'") && error.message.contains("unmanaged"))
        #expect(!plan.changes.contains { $0.address.name == "web-1" })
        #expect(throws: ReconcileRun.Refusal.self) { try Self.run(world) }
    }

    @Test func anAddressFreedByADeleteIsReusedOnlyAfterIt() throws {
        let world = try World()
        _ = try Self.run(world)
        let other = try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        let db1 = try #require(try world.observed().flatMap(\.domains).first { $0.address?.name == "db-1" }?.ip)
        // db-1 goes, and a new instance asks for its address in the same plan.
        try world.commit("manifests/tenants/other.yaml", other.components(separatedBy: "---\nkind: Instance")[0] + """
            ---
            kind: Instance
            name: db-2
            region: lab
            tenant: other
            spec: {flavor: m1.small, image: ubuntu, network: private, fixedIP: \(db1)}
            """)
        let plan = try Self.plan(world)
        let delete = try #require(plan.changes.first { $0.address.name == "db-1" && $0.action == .delete })
        let create = try #require(plan.changes.first { $0.address.name == "db-2" && $0.action == .create })
        #expect(create.dependsOn.contains(delete.id))
        #expect(try Self.run(world) { $0.allowMassDelete = true }.remaining?.isEmpty == true)
    }
}

@Suite struct OrphanHostFileTests {
    typealias World = ConvergeWorld

    @Test func aNodeKnownOnlyByItsHostFileKeepsItsSizeWhenChanged() throws {
        // Applied without ReconcileRun, so the inventory never heard of the nodes: only the host files find them.
        let world = try World()
        try world.commit("manifests/tenants/edge.yaml", OrphanTests.edgeInstance)
        #expect(try world.apply().succeeded)
        try FileManager.default.removeItem(atPath: world.repo.file("regions/edge"))
        try FileManager.default.removeItem(atPath: world.repo.file("manifests/tenants/edge.yaml"))
        try GitCLI.commitAll(in: world.repo.path)
        let plan = try world.plan()
        #expect(plan.changes.contains { $0.address.description == "instance/edge/acme/cache-1" && $0.reason == .regionRemoved })
        #expect(try world.apply().succeeded)
        let edge = try world.observed().filter { $0.address.region == "edge" }
        #expect(edge.count == 3)
        #expect(edge.allSatisfy { $0.cpus == 16 && $0.memoryKiB == 64 << 20 && $0.domains.isEmpty }, "the rewritten host files keep the nodes' size")
    }
}
