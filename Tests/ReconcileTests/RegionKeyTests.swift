import Foundation
import ManifestSources
import Manifests
import Planning
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
        let rings = model.rings.filter { $0.region == region.name }
        var generations = Dictionary(uniqueKeysWithValues: nodes.map { ($0, Optional("g-\($0.name)")) })
        func inputs(_ nodes: [Address], catalog: UInt64 = 1) -> RegionKey.Inputs {
            RegionKey.inputs(region: region, rings: rings, digests: (catalog, [region.name: 2]), nodes: nodes, generations: generations,
                             ringStamps: [:], options: Planner.Options(), version: "test")
        }
        let cache = RegionKeyCache()
        let first = try #require(cache.key(of: inputs(nodes)))
        #expect(first == RegionKey.key(of: inputs(nodes)))
        #expect(cache.key(of: inputs(nodes.reversed())) == first, "the nodes' order as gathered does not matter")
        #expect(cache.key(of: inputs(nodes, catalog: 3)) != first)
        #expect(cache.key(of: inputs(nodes)) == first)

        generations[nodes[0]] = "g-changed"
        let changed = cache.key(of: inputs(nodes))
        #expect(changed != nil && changed != first)
        #expect(changed == RegionKey.key(of: inputs(nodes)))
        generations[nodes[1]] = .some(nil)
        #expect(cache.key(of: inputs(nodes)) == nil, "a node that cannot vouch for its state: no key")
        let without = cache.key(of: inputs(nodes.filter { $0 != nodes[1] }))
        #expect(without != nil && without != changed, "a node that left is a change of the key")
    }
}
