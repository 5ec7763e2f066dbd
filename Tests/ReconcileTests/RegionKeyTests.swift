import Foundation
import ManifestSources
import Manifests
@testable import Planning
import Drivers
import Reconcile
import SimulatedNodes
import TestSupport
import Testing

/// A region's key is a function of its inputs alone; a kept key is given back only for inputs equal to those it was
/// made from.
@Suite struct RegionKeyTests {
    @Test func aKeptKeyIsGivenBackOnlyForTheSameInputs() throws {
        let scratch = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: scratch.path)).model
        let region = try #require(model.regions.first { $0.spec.objectStore == nil })
        let nodes = model.nodes.filter { $0.region == region.name }.map(\.address)
        try #require(nodes.count >= 2)
        let rings = model.rings.filter { $0.region == region.name }.map(\.address)
        var generations = Dictionary(uniqueKeysWithValues: nodes.map { ($0, Optional("g-\($0.name)")) })
        func inputs(_ nodes: [Address], catalog: UInt64 = 1) -> RegionKey.Inputs {
            RegionKey.inputs(region: region, rings: rings, digests: (catalog, [region.name: 2]), nodes: nodes, generations: nodes.map { generations[$0] ?? nil },
                             ringStamps: [:], options: Planner.Options(), version: "test")
        }
        let cache = RegionKeyCache()
        func key(_ inputs: RegionKey.Inputs) -> String? { cache.keys(of: [inputs])[0] }
        let first = try #require(key(inputs(nodes)))
        #expect(first == RegionKey.key(of: inputs(nodes)))
        #expect(key(inputs(nodes.reversed())) == first, "the nodes' order as gathered does not matter")
        #expect(key(inputs(nodes, catalog: 3)) != first)
        #expect(key(inputs(nodes)) == first)

        generations[nodes[0]] = "g-changed"
        let changed = key(inputs(nodes))
        #expect(changed != nil && changed != first)
        #expect(changed == RegionKey.key(of: inputs(nodes)))
        generations[nodes[1]] = .some(nil)
        #expect(key(inputs(nodes)) == nil, "a node that cannot vouch for its state: no key")
        let without = key(inputs(nodes.filter { $0 != nodes[1] }))
        #expect(without != nil && without != changed, "a node that left is a change of the key")
    }

    @Test func nodeGroupsAreTheLastOnesOnlyWhileTheDriversAndGenerationsAreTheSameDictionaries() throws {
        let state = try Scratch("state")
        var drivers: [Address: any NodeDriver] = [:]
        for (region, name) in [("lab", "n1"), ("lab", "n2"), ("lab", "n3"), ("edge", "e1")] {
            let address = Address(kind: .node, region: region, name: name)
            drivers[address] = try SimulatedNode(endpoint: NodeEndpoint(address: address, libvirt: "simulated", cpus: 4, memoryKiB: 8 << 20),
                                                 stateDirectory: state.path)
        }
        var generations = Dictionary(uniqueKeysWithValues: drivers.keys.map { ($0, Optional("g-\($0.name)")) })
        func aligned(_ groups: [String: NodeGroups.Group]) -> [String: [String]] {
            groups.mapValues { group in zip(group.nodes, group.generations).map { "\($0.0.name)=\($0.1 ?? "-")" }.sorted() }
        }
        let groups = NodeGroups()
        let (first, firstVersion) = groups.groups(of: drivers, generations: generations)
        #expect(aligned(first) == ["lab": ["n1=g-n1", "n2=g-n2", "n3=g-n3"], "edge": ["e1=g-e1"]])
        let (again, againVersion) = groups.groups(of: drivers, generations: generations)
        #expect(try #require(again["lab"]).nodes.sharesStorage(with: try #require(first["lab"]).nodes))
        #expect(try #require(again["lab"]).generations.sharesStorage(with: try #require(first["lab"]).generations))
        #expect(againVersion == firstVersion, "the same groups, the same number")

        // Equal entries in another dictionary are not the same dictionary: the groups are made again, equal.
        let copy = Dictionary(uniqueKeysWithValues: generations.map { ($0.key, $0.value) })
        #expect(!copy.sharesStorage(with: generations) && generations.sharesStorage(with: generations))
        let (remade, remadeVersion) = groups.groups(of: drivers, generations: copy)
        #expect(!(try #require(remade["lab"]).nodes.sharesStorage(with: try #require(first["lab"]).nodes)))
        #expect(aligned(remade) == aligned(first))
        #expect(remadeVersion != firstVersion, "groups made again: another number")

        // A generation changed (the dictionary the groups hold is copied before it changes): the new one is in the groups.
        generations[Address(kind: .node, region: "lab", name: "n2")] = "g-changed"
        #expect(aligned(groups.groups(of: drivers, generations: generations).groups)["lab"] == ["n1=g-n1", "n2=g-changed", "n3=g-n3"])
        drivers[Address(kind: .node, region: "edge", name: "e1")] = nil
        #expect(groups.groups(of: drivers, generations: generations).groups["edge"] == nil, "a node let go is in no group")
    }

    /// While the context every region shares is the last one, a region's inputs are gathered only when its own
    /// documents' digest changed; any change of the context gathers every region's again. Each key is always the one
    /// made from the region's inputs.
    @Test func aRegionsInputsAreGatheredOnlyWhenItsDigestOrTheSharedContextChanged() throws {
        let scratch = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: scratch.path)).model
        let regions = model.regions.filter { $0.spec.objectStore == nil }
        try #require(regions.count >= 2)
        var regional = Dictionary(uniqueKeysWithValues: regions.map { ($0.name, UInt64(7)) })
        var catalog: UInt64 = 1, nodesVersion = 1, ringStamps: [Address: String] = [:], columns = model
        func inputs(_ index: Int) -> RegionKey.Inputs {
            let region = regions[index], nodes = model.nodes.filter { $0.region == region.name }.map(\.address)
            return RegionKey.inputs(region: region, rings: model.rings.filter { $0.region == region.name }.map(\.address), digests: (catalog, regional), nodes: nodes,
                                    generations: nodes.map { "g-\($0.name)" }, ringStamps: ringStamps, options: Planner.Options(), version: "test")
        }
        let cache = RegionKeyCache()
        var gathered: [String] = []
        func keys(_ comment: Comment, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String] {
            gathered = []
            let context = RegionKeyCache.Context(regions: columns.regions, selected: regions.map(\.name), rings: columns.rings, nodes: nodesVersion,
                                                 ringStamps: ringStamps, catalog: catalog, options: Planner.Options(), version: "test")
            let made = cache.keys(of: regions.map(\.name), regional: regional, context: context) { index in
                gathered.append(regions[index].name)
                return inputs(index)
            }
            #expect(made == regions.indices.map { RegionKey.key(of: inputs($0)) }, comment, sourceLocation: sourceLocation)
            return gathered
        }
        let all = regions.map(\.name)
        #expect(keys("first") == all)
        #expect(keys("nothing changed") == [])
        regional[regions[1].name] = 8
        #expect(keys("one region's documents") == [regions[1].name])
        #expect(keys("and back to nothing changed") == [])
        catalog = 2
        #expect(keys("a cloud-wide document") == all)
        nodesVersion = 2
        #expect(keys("other node groups") == all)
        ringStamps = [Address(kind: .ring, region: regions[0].name, name: "object"): "1:abc"]
        #expect(keys("a ring builder saved") == all)
        columns.regions = Array(model.regions)  // equal regions in another array
        columns.regions.append(model.regions[0])
        columns.regions.removeLast()
        #expect(keys("another column of regions") == all)
        #expect(keys("the same again") == [])
        // The plain look-up (no context) vouches for no context: the next call with one gathers every region again.
        _ = cache.keys(of: regions.indices.map(inputs))
        #expect(keys("after a look-up without a context") == all)
    }
}
