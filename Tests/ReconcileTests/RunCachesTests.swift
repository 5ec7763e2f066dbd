import Foundation
import SimulatedNodes
import Drivers
import Manifests
import Planning
import TestSupport
import Testing
@testable import Reconcile

/// What a long-running reconciler keeps decoded between runs is bounded by regions: the regions used most recently
/// are kept, another region's state is read again when it is planned, and nothing is given back under another stamp.
@Suite struct RunCachesTests {
    @Test func aBoundedCacheForgetsTheRegionUsedLeastRecently() {
        let cache = RegionBoundedCache<String, Int>(regions: 2)
        cache.keep(1, key: "ring/r1/object", region: "r1", stamp: "a")
        cache.keep(2, key: "ring/r2/object", region: "r2", stamp: "a")
        #expect(cache.value("ring/r1/object", region: "r1", stamp: "a") == 1, "used now: r2 is the least recent")
        #expect(cache.value("ring/r1/object", region: "r1", stamp: "b") == nil, "another stamp is not the same value")
        cache.keep(3, key: "ring/r3/object", region: "r3", stamp: "a")
        #expect(cache.value("ring/r2/object", region: "r2", stamp: "a") == nil, "r2 forgotten")
        #expect(cache.value("ring/r1/object", region: "r1", stamp: "a") == 1)
        #expect(cache.value("ring/r3/object", region: "r3", stamp: "a") == 3)
        #expect(cache.kept == (2, 2))

        // More values of a region kept are one region; no stamp forgets the key's value.
        cache.keep(4, key: "ring/r3/account", region: "r3", stamp: "a")
        #expect(cache.kept == (2, 3))
        cache.keep(5, key: "ring/r3/account", region: "r3", stamp: nil)
        #expect(cache.value("ring/r3/account", region: "r3", stamp: "a") == nil)

        let unbounded = RegionBoundedCache<String, Int>(regions: nil)
        for region in 0..<50 { unbounded.keep(region, key: "k", region: "r\(region)", stamp: "a") }
        #expect(unbounded.kept == (50, 50))
    }

    @Test func theMemoKeepsThePlansOfTheRegionsPlannedMostRecently() {
        let memo = MemoryPlanMemo(regions: 2)
        for region in ["r1", "r2", "r3"] { memo.remember(RegionPlan(region: region), key: "k-\(region)") }
        #expect(memo.kept == 2)
        #expect(memo.plan(region: "r1", key: "k-r1") == nil, "r1 was planned least recently")
        #expect(memo.plan(region: "r3", key: "k-r3")?.region == "r3")
        #expect(memo.plan(region: "r3", key: "other inputs") == nil, "a plan is given back only under its key")
        var settling = RegionPlan(region: "r3")
        settling.settling = true
        memo.remember(settling, key: "k-r3")
        #expect(memo.plan(region: "r3", key: "k-r3") == nil, "a settling region's plan changes with the hour: not kept")
        #expect(MemoryPlanMemo().kept == 0)
    }

    @Test func nodesOfARegionForgottenAreObservedAgainWithTheSameResult() throws {
        let state = try Scratch("state")
        let reconciler = Reconciler(model: DesiredModel(), revision: nil, stateDirectory: state.path, state: nil)
        var endpoints: [NodeEndpoint] = []
        for region in ["r1", "r2", "r3"] {
            for index in 0..<2 {
                endpoints.append(NodeEndpoint(address: Address(kind: .node, region: region, name: "\(region)-n\(index)"), libvirt: "simulated", cpus: 4, memoryKiB: 8 << 20))
            }
        }
        let drivers = try reconciler.drivers(for: endpoints)
        let cache = ObservationCache(regions: 2)
        var first: [String: [ObservedNode]] = [:]
        /// Observes one region's nodes through the cache; returns how many came from it.
        func observe(_ region: String) throws -> Int {
            let some = drivers.filter { $0.key.region == region }
            let (nodes, reused) = try reconciler.observe(some, cache: cache, generations: reconciler.nodes.generations(of: some).values, disconnect: true)
            #expect(nodes.count == 2)
            if let earlier = first[region] { #expect(nodes == earlier, "\(region): the same observation, kept or read again") } else { first[region] = nodes }
            return reused
        }
        #expect(try observe("r1") == 0)
        #expect(try observe("r1") == 2)
        #expect(try observe("r2") == 0)
        #expect(try observe("r1") == 2, "r1 used again: r2 is now the least recent")
        #expect(try observe("r3") == 0)
        #expect(cache.kept == (2, 4))
        #expect(try observe("r2") == 0, "r2 was forgotten: observed again (and r1 forgotten)")
        #expect(try observe("r3") == 2)
        #expect(try observe("r1") == 0)

        // A node whose generation changed is observed again, kept region or not.
        let node = Address(kind: .node, region: "r1", name: "r1-n0")
        try SimulatedHost.write(SimulatedHost.emptyHost(cpus: 8, memoryKiB: 8 << 20), to: SimulatedNode.hostFile(stateDirectory: state.path, node: node))
        let some = drivers.filter { $0.key.region == "r1" }
        let again = try reconciler.observe(some, cache: cache, generations: reconciler.nodes.generations(of: some).values, disconnect: true)
        #expect(again.reused == 1)
        #expect(again.nodes.first { $0.address == node }?.cpus == 8)
    }
}
