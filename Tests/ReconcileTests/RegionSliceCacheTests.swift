import Foundation
import ManifestSources
import Manifests
@testable import Planning
import TestSupport
import Testing

/// A region's slice made with the cache is the one made without it, whichever columns changed in between.
@Suite struct RegionSliceCacheTests {
    private func names(_ slice: RegionSlice) -> [String] {
        slice.nodes.map { "\($0.address) \($0.meta.digest)" } + slice.instances.map { "\($0.address)" } + slice.networks.map { "\($0.address) \($0.meta.digest)" }
            + slice.rings.map { "\($0.address)" } + slice.floatingIPs.map { "\($0.address)" } + slice.volumes.map { "\($0.address)" }
            + slice.loadBalancers.map { "\($0.address)" } + slice.containers.map { "\($0.address)" }
    }

    @Test func aRegionsPartsAreGivenAgainOnlyWhileTheirColumnsAreTheSameArrays() throws {
        let repo = try Fixtures.deployment()
        var model = try Loader().load(DirectorySource(root: repo.path)).model
        let cache = RegionSliceCache()
        func same(_ comment: Comment, hit: Bool, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
            let hits = cache.hits
            for region in ["lab", "edge"] {
                let cached = RegionSlices(model, only: [region], cache: cache)[region]
                #expect(names(cached) == names(RegionSlices(model, only: [region])[region]), comment, sourceLocation: sourceLocation)
                #expect(!cached.nodes.isEmpty, comment, sourceLocation: sourceLocation)
            }
            #expect(cache.hits - hits == (hit ? 2 : 0), comment, sourceLocation: sourceLocation)
        }
        same("first", hit: false)
        same("nothing changed", hit: true)
        // A node changes in place (the column is then another array: the cache holds the old one).
        model.nodes[0].meta.digest &+= 1
        same("a node changed", hit: false)
        same("as it is now", hit: true)
        model.networks.removeLast()
        same("a network went", hit: false)
        // Instances are not part of what is kept: they come from the model each time.
        model.instances.removeLast()
        same("an instance went", hit: true)
        // Other columns let go of every part cut from the earlier ones: lab's part is made again after edge's.
        #expect(cache.regions == ["lab", "edge"])
        model.rings = model.rings.reversed()
        _ = RegionSlices(model, only: ["edge"], cache: cache)
        #expect(cache.regions == ["edge"], "lab's part was cut from the rings before")
        model.rings = model.rings.reversed()
        same("the rings as before, but another array", hit: false)
        // More regions than the cache keeps: the oldest is made again.
        for region in (0..<8).map({ "r\($0)" }) { _ = RegionSlices(model, only: [region], cache: cache) }
        same("lab and edge forgotten", hit: false)
    }
}
