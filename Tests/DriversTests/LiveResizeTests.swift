import Foundation
import Manifests
import Planning
import TestSupport
import Testing
@testable import Drivers
import SimulatedNodes

/// Growing a running domain on a simulated node (libvirt's test driver): within its maximums it grows live, keeping
/// the same running instance (libvirt gives a domain a new id every time it starts); beyond them only a change that
/// says it restarts may stop it.
@Suite struct LiveResizeTests {
    static let address = Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1")
    static let nodeAddress = Address(kind: .node, region: "lab", name: "lab-1")

    static func domain(vcpus: Int, gib: UInt64, disk: UInt64) -> DesiredDomain {
        let prefix = DesiredDomain.volumePrefix(for: address)
        return DesiredDomain(
            address: address, node: nodeAddress, name: DesiredDomain.name(for: address), vcpus: vcpus, memoryKiB: gib << 20,
            disks: [.init(pool: StorageXML.instancePool, volume: "\(prefix)-root", bytes: disk << 30, device: "vda", image: "images/ubuntu.qcow2")],
            interface: .init(bridge: "br100", mac: DesiredDomain.mac(for: address), ip: IPv4Address(parsing: "10.20.0.10")!),
            running: true, flavor: "f\(vcpus)", image: "ubuntu")
    }

    private func runningID(_ node: SimulatedNode) throws -> UInt32? {
        try node.libvirtNode.connection.domain(named: DesiredDomain.name(for: Self.address))?.id
    }

    @Test func aRunningDomainGrowsLiveWithinItsMaximumsAndRestartsOnlyWhenTold() throws {
        let state = try Scratch("state")
        let node = try SimulatedNode(endpoint: NodeEndpoint(address: Self.nodeAddress, libvirt: "simulated", cpus: 32, memoryKiB: 128 << 20),
                                     stateDirectory: state.path)
        try node.apply(.defineDomain(Self.domain(vcpus: 1, gib: 2, disk: 20), restart: false))
        let started = try #require(try runningID(node))
        let first = try #require(try node.observe().domains.first)
        #expect(first.vcpus == 1 && first.maxVcpus == 2 && first.memoryKiB == 2 << 20 && first.maxMemoryKiB == 4 << 20)

        // Within the maximums: the same running domain, now with 2 vCPUs, 4 GiB and a 40 GiB root disk.
        let grown = Self.domain(vcpus: 2, gib: 4, disk: 40)
        try node.apply(.defineDomain(grown, restart: false))
        let live = try #require(try node.observe().domains.first)
        #expect(live.state == .running && live.vcpus == 2 && live.memoryKiB == 4 << 20 && live.specHash == grown.specHash)
        #expect(try runningID(node) == started, "grown live: never stopped")
        #expect(try node.observe().volumes.values.sorted() == [40 << 30])

        // Beyond them: refused unless the change says it restarts.
        let large = Self.domain(vcpus: 8, gib: 16, disk: 40)
        #expect(throws: DriverError.self) { try node.apply(.defineDomain(large, restart: false)) }
        #expect(try runningID(node) == started, "a refused live change leaves the guest running")
        try node.apply(.defineDomain(large, restart: true))
        let restarted = try #require(try node.observe().domains.first)
        #expect(restarted.state == .running && restarted.vcpus == 8 && restarted.maxVcpus == 16 && restarted.memoryKiB == 16 << 20)
        #expect(try runningID(node) != started, "restarted on the new definition")
        let again = try runningID(node)
        try node.apply(.defineDomain(large, restart: true))
        #expect(try runningID(node) == again, "a restart that already happened is not repeated")
    }

    @Test func theShapeLeavesOutOnlyWhatCanGrowLive() {
        let small = Self.domain(vcpus: 1, gib: 2, disk: 20)
        var other = small
        other.vcpus = 2
        other.memoryKiB = 4 << 20
        other.disks[0].bytes = 40 << 30
        other.flavor = "bigger"
        #expect(other.shapeHash == small.shapeHash && other.specHash != small.specHash)
        other.interface.bridge = "br200"
        #expect(other.shapeHash != small.shapeHash)
    }
}
