import Foundation
import Manifests
import Planning
import SimulatedNodes
import TestSupport
import Testing
@testable import Drivers

/// A driver has a capability only when it conforms to its protocol: a production node cannot vouch for its state by
/// a token, nor hold its writes back, so the applier and planner never get a default that pretends it can.
@Suite struct CapabilityTests {
    static let node = Address(kind: .node, region: "lab", name: "n1")

    @Test func aProductionNodeHasOnlyWhatEveryNodeHasAndASimulatedOneAlsoTracksAndBatches() throws {
        let state = try Scratch("state")
        let nodes = LocalNodes(stateDirectory: state.path)
        let production = try nodes.driver(for: NodeEndpoint(address: Self.node, libvirt: "qemu+ssh://root@127.0.0.1:1/system", cpus: 4, memoryKiB: 1 << 20,
                                                            hostKey: try DeadlineTests.someHostKey()), identity: "/nonexistent/key")
        #expect(!(production is any GenerationTracking))
        #expect(!(production is any WriteBatching))
        #expect(production is any LibvirtBacked, "a move copies volumes between libvirt nodes")
        #expect((production as? LibvirtNode)?.machine is RemoteMachine)

        let simulated = try nodes.driver(for: NodeEndpoint(address: Self.node, libvirt: "simulated", cpus: 4, memoryKiB: 1 << 20), identity: nil)
        #expect(simulated is any GenerationTracking)
        #expect(simulated is any WriteBatching)
        #expect((simulated as? any LibvirtBacked)?.libvirtNode.machine is SimulatedMachine)
        #expect(nodes.heldNodes(in: nil).map(\.address) == [Self.node], "a simulated node is known by its host file once opened")
        #expect(nodes.generations(of: [Self.node: production]).values[Self.node] == .some(nil), "a production node has no generation")
    }

    @Test func aSimulatedNodesHeldWriteReachesItsHostFileOnlyAtTheFlushAndIsLostWithTheConnection() throws {
        let state = try Scratch("state")
        let node = try SimulatedNode(endpoint: NodeEndpoint(address: Self.node, libvirt: "simulated", cpus: 4, memoryKiB: 8 << 20), stateDirectory: state.path)
        let host = { try String(contentsOfFile: node.hostFile, encoding: .utf8) }
        let before = try host()
        try node.apply(.ensureNetwork(network: "private", bridge: "br100"), deferringWrite: true)
        #expect(try host() == before, "held: nothing on disk before the flush")
        #expect(try node.observe().networks == ["private"], "the connection holds the change")
        node.disconnect()
        #expect(try node.observe().networks == [], "a held change goes with the connection, as a crash would take it")
        try node.apply(.ensureNetwork(network: "private", bridge: "br100"), deferringWrite: true)
        try node.flush()
        #expect(try host() != before)
        node.disconnect()
        #expect(try node.observe().networks == ["private"], "flushed: a new connection reads it from the host file")
    }
}
