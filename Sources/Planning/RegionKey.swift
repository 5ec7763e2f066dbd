import Crypto
import Foundation
import Manifests

/// Everything a region's plan is computed from, reduced to one sha256: the digest of every regional document of
/// the region and of every cloud-wide document (`DesiredModel.planDigests`, derived from the model's table of kinds,
/// so a new kind cannot be left out), the generation of each node the plan observes, the stamps of its stored ring
/// builders, the plan options and the planner's version. `Planner.planRegion` is a function of exactly these and the
/// hour, and the hour matters only while a ring is settling (`RegionPlan.settling`), so for a region that is not
/// settling equal keys mean equal plans and a reconciler may keep the earlier one.
///
/// Nil when a node cannot vouch for its state (no generation: production nodes today), or the region has an object
/// store (its snapshots are listed for every plan); such a region is always planned afresh.
public enum RegionKey {
    /// The key of `region`'s plan, or nil when a node has no generation. `nodes` are all the nodes its plan observes
    /// (those that left the manifests included), all of this region.
    public static func make(region: Resource<RegionSpec>, rings: [Resource<RingSpec>], digests: (catalog: UInt64, regions: [String: UInt64]),
                            nodes: [Address], generations: [Address: String?], ringStamps: [Address: String], options: Planner.Options,
                            version: String) -> String? {
        guard region.spec.objectStore == nil else { return nil }
        var text = "stacklab-region-plan\n\(version)\n\(region.name)\n\(digests.catalog)\n\(digests.regions[region.name] ?? 0)\n\(options.keepOrphans)\n\(options.deleteContainerObjects)\n"
        for node in nodes.sorted(by: { $0.name < $1.name }) {  // all of the region
            guard let generation = generations[node] ?? nil else { return nil }
            text += "node \(node.name) \(generation)\n"
        }
        for ring in rings.map(\.address).sorted() {
            text += "ring \(ring) \(ringStamps[ring] ?? "-")\n"
        }
        return SHA256.hash(data: Data(text.utf8)).hexDigits
    }
}
