import Foundation
import Drivers
import Manifests
import Planning
import TestSupport
import Testing
@testable import Reconcile

/// A long-running reconciler keeps each node's driver while the node's endpoint is unchanged, opens a new one when
/// any part of the endpoint changed, and lets go of nodes that left.
@Suite struct DriverPoolTests {
    static func endpoint(_ name: String, cpus: Int = 4, hostKey: String? = nil) -> NodeEndpoint {
        NodeEndpoint(address: Address(kind: .node, region: "lab", name: name), libvirt: "simulated", cpus: cpus, memoryKiB: 8 << 20, hostKey: hostKey)
    }

    @Test func aDriverIsKeptWhileItsEndpointIsUnchanged() throws {
        let state = try Scratch("state")
        let reconciler = Reconciler(model: DesiredModel(), revision: nil, stateDirectory: state.path, state: nil)
        let pool = DriverPool()
        var opened: [String] = []
        let open = { (endpoints: [NodeEndpoint]) throws -> [Address: any NodeDriver] in
            opened += endpoints.map(\.address.name)
            return try reconciler.drivers(for: endpoints)
        }
        let first = try pool.drivers(for: [Self.endpoint("a"), Self.endpoint("b")], open: open)
        #expect(opened.sorted() == ["a", "b"])
        let again = try pool.drivers(for: [Self.endpoint("a"), Self.endpoint("b")], open: open)
        #expect(opened.count == 2, "nothing opened again")
        #expect(again.keys.allSatisfy { (again[$0]! as AnyObject) === (first[$0]! as AnyObject) }, "the very drivers kept")

        // Another size, another host key: a new driver for that node only.
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b")], open: open)
        #expect(opened == ["a", "b", "a"] || opened == ["b", "a", "a"])
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b", hostKey: "ssh-ed25519 AAAA")], open: open)
        #expect(opened.last == "b" && opened.count == 4)

        // A node that left is let go: asked for again, it is opened again.
        pool.retain([Self.endpoint("a").address])
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b", hostKey: "ssh-ed25519 AAAA")], open: open)
        #expect(opened.count == 5 && opened.last == "b")
    }
}
