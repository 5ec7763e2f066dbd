import Foundation
import Drivers
import Manifests
import ManifestSources
import Planning
import SimulatedNodes
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// A long-running reconciler keeps each node's driver while the node's endpoint is unchanged, opens a new one when
/// any part of the endpoint changed, and lets go of nodes that left.
@Suite struct DriverPoolTests {
    static func endpoint(_ name: String, cpus: Int = 4, hostKey: String? = nil) -> NodeEndpoint {
        NodeEndpoint(address: Address(kind: .node, region: "lab", name: name), libvirt: "simulated", cpus: cpus, memoryKiB: 8 << 20, hostKey: hostKey)
    }

    /// Opens simulated nodes' drivers and records which nodes it opened.
    final class Opener {
        let state: Scratch
        let reconciler: Reconciler
        var opened: [String] = []
        init() throws {
            state = try Scratch("state")
            reconciler = Reconciler(model: DesiredModel(), revision: nil, stateDirectory: state.path, state: nil)
        }
        func open(_ endpoints: [NodeEndpoint]) throws -> [Address: any NodeDriver] {
            opened += endpoints.map(\.address.name)
            return try reconciler.drivers(for: endpoints)
        }
    }

    @Test func aDriverIsKeptWhileItsEndpointIsUnchanged() throws {
        let opener = try Opener()
        let pool = DriverPool(), open = opener.open
        let first = try pool.drivers(for: [Self.endpoint("a"), Self.endpoint("b")], open: open)
        #expect(opener.opened.sorted() == ["a", "b"])
        let again = try pool.drivers(for: [Self.endpoint("a"), Self.endpoint("b")], open: open)
        #expect(opener.opened.count == 2, "nothing opened again")
        #expect(again.keys.allSatisfy { (again[$0]! as AnyObject) === (first[$0]! as AnyObject) }, "the very drivers kept")

        // Another size, another host key: a new driver for that node only.
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b")], open: open)
        #expect(opener.opened == ["a", "b", "a"] || opener.opened == ["b", "a", "a"])
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b", hostKey: "ssh-ed25519 AAAA")], open: open)
        #expect(opener.opened.last == "b" && opener.opened.count == 4)

        // A node that left is let go: asked for again, it is opener.opened again.
        pool.retain([Self.endpoint("a").address])
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b", hostKey: "ssh-ed25519 AAAA")], open: open)
        #expect(opener.opened.count == 5 && opener.opened.last == "b")
    }

    /// The same array of endpoints (what `DeclaredNodes` gives while no Node document changed) gets the same drivers
    /// without a lookup; a driver opener.opened or let go since, or another array, and the pool looks again.
    @Test func theSameArrayOfEndpointsGetsTheSameDriversUntilTheKeptOnesChange() throws {
        let opener = try Opener()
        let pool = DriverPool(), open = opener.open
        let endpoints = [Self.endpoint("a"), Self.endpoint("b")]
        _ = try pool.drivers(for: endpoints, open: open)
        let kept = try pool.drivers(for: endpoints, open: open)
        let same = try pool.drivers(for: endpoints, open: open)
        let identical = same.keys.allSatisfy { (kept[$0]! as AnyObject) === (same[$0]! as AnyObject) }
        #expect(identical)
        #expect(opener.opened.count == 2)
        // Another node's driver made anew (its endpoint changed) in between: the array asked for before is looked up again.
        _ = try pool.drivers(for: [Self.endpoint("a", cpus: 8), Self.endpoint("b")], open: open)
        let looked = try pool.drivers(for: endpoints, open: open)
        #expect(opener.opened == ["a", "b", "a", "a"] || opener.opened == ["b", "a", "a", "a"], "\(opener.opened)")
        let newer = looked[Self.endpoint("a").address]! as AnyObject, older = kept[Self.endpoint("a").address]! as AnyObject
        let replaced = newer !== older
        #expect(replaced)
        // Let go of b: the same array opens b again.
        pool.retain([Self.endpoint("a").address])
        _ = try pool.drivers(for: endpoints, open: open)
        #expect(opener.opened.last == "b" && opener.opened.count == 5)
        // Retaining the endpoints just asked for keeps both; retaining another array of only a lets b go.
        _ = try pool.drivers(for: endpoints, open: open)
        pool.retain(endpoints: endpoints)
        _ = try pool.drivers(for: endpoints, open: open)
        #expect(opener.opened.count == 5)
        pool.retain(endpoints: [Self.endpoint("a")])
        _ = try pool.drivers(for: endpoints, open: open)
        #expect(opener.opened.last == "b" && opener.opened.count == 6)
    }


    /// Declared endpoints are made again only for another column of nodes.
    @Test func declaredNodesAreMadeAgainOnlyForAnotherColumn() throws {
        let repo = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: repo.path)).model
        let declared = DeclaredNodes()
        let regions = Array(Set(model.nodes.compactMap(\.region))).sorted()
        let first = declared.endpoints(of: model.nodes, in: regions)
        #expect(first == model.nodes.map(NodeEndpoint.init) && !first.isEmpty)
        let copy = model  // the same columns
        let again = declared.endpoints(of: copy.nodes, in: regions)
        let kept = again.sharesStorage(with: first)
        #expect(kept, "the kept array")
        var changed = model
        changed.nodes[0].spec.cpus.value += 1  // another array now (copied on write)
        let made = declared.endpoints(of: changed.nodes, in: regions)
        let rest: [NodeEndpoint] = Array(made.dropFirst()), before: [NodeEndpoint] = Array(first.dropFirst())
        #expect(made[0].cpus == first[0].cpus + 1)
        #expect(rest == before)
        #expect(declared.addresses(of: changed.nodes) == Set(first.map(\.address)))
    }

    /// The held (simulated) nodes are the same array while no region directory changed, and the undeclared ones among
    /// them are found again only for another array.
    @Test func heldNodesAndTheUndeclaredAmongThemAreKeptWhileNoHostFileCameOrWent() throws {
        let state = try Scratch("held")
        for name in ["lab-1", "lab-2", "gone-1"] { try state.write("nodes/lab/\(name).xml", "<domains/>") }
        let nodes = LocalNodes(stateDirectory: state.path)
        let repo = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: repo.path)).model
        let declared = DeclaredNodes()
        let first = nodes.heldNodes(in: nil)
        #expect(first.map(\.address.name) == ["gone-1", "lab-1", "lab-2"])
        let again = nodes.heldNodes(in: nil)
        let same = again.sharesStorage(with: first)
        #expect(same)
        let undeclared = declared.undeclared(first, of: model.nodes)
        #expect(undeclared.map(\.address) == first.filter { !Set(model.nodes.map(\.address)).contains($0.address) }.map(\.address))
        let keptUndeclared = declared.undeclared(again, of: model.nodes).sharesStorage(with: undeclared)
        #expect(keptUndeclared)
        // A host file more: another listing, and its node among the undeclared.
        try state.write("nodes/lab/late-1.xml", "<domains/>")
        let later = nodes.heldNodes(in: nil)
        let other = !later.sharesStorage(with: first)
        #expect(other && later.map(\.address.name) == ["gone-1", "lab-1", "lab-2", "late-1"])
        #expect(declared.undeclared(later, of: model.nodes).contains { $0.address.name == "late-1" })
        // Only region lab asked for: another listing too.
        let lab = nodes.heldNodes(in: ["lab"])
        let fresh = !lab.sharesStorage(with: later)
        #expect(fresh && lab.count == 4)
    }
    /// The inventory's undeclared nodes are read again only when its revision moved (a node recorded, changed or
    /// forgotten) or the column of declared nodes is another array, and are always those a direct read finds.
    @Test func theInventorysUndeclaredNodesAreReadAgainOnlyWhenItsRevisionMoved() throws {
        let scratch = try Scratch("inventory")
        let store = try SQLiteState(directory: scratch.path)
        let repo = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: repo.path)).model
        let declared = DeclaredNodes()
        let addresses = Set(model.nodes.map(\.address))
        let left = NodeEndpoint(address: Address(kind: .node, region: "lab", name: "left-1"), libvirt: "simulated", cpus: 4, memoryKiB: 8 << 20)
        func check(_ comment: Comment, regions: Set<String>? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> [NodeEndpoint] {
            let found = try declared.undeclared(in: store, regions: regions, of: model.nodes)
            #expect(found == (try store.knownNodes(in: regions)).filter { !addresses.contains($0.address) }, comment, sourceLocation: sourceLocation)
            return found
        }
        #expect(try check("empty").isEmpty)
        try store.rememberNodes(model.nodes.prefix(3).map(NodeEndpoint.init) + [left])
        let first = try check("a node that left the manifests, and declared ones")
        #expect(first == [left])
        let again = try check("nothing changed")
        #expect(again.sharesStorage(with: first), "kept, not read again")
        try store.rememberNodes(model.nodes.prefix(3).map(NodeEndpoint.init))
        #expect(try check("declared nodes recorded as they were").sharesStorage(with: first))
        let other = try check("other regions asked for", regions: ["lab"])
        #expect(!other.sharesStorage(with: first))
        #expect(try check("all regions again").count == 1)
        let moved = NodeEndpoint(address: left.address, libvirt: "simulated", cpus: 8, memoryKiB: 8 << 20)
        try store.rememberNodes([moved])
        #expect(try check("its endpoint changed") == [moved])
        try store.forgetNodes([left.address])
        #expect(try check("forgotten").isEmpty)
    }
}
