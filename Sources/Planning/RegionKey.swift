import Crypto
import Foundation
import Manifests

/// Everything a region's plan is computed from, reduced to one sha256: the source digests of its region, nodes,
/// instances, networks and rings (`ObjectMeta.digest`, which covers the document's file path and text) and of
/// the cloud-wide catalog, the generation of each of its nodes, the stamps of its stored ring builders, and the
/// planner's version. `Planner.planRegion` is a function of exactly these and the hour, and the hour matters only
/// while a ring is settling (`RegionPlan.settling`), so for a region that is not settling equal keys mean equal
/// plans and a reconciler may keep the earlier one. A change to one document re-plans only the regions it is in.
///
/// Nil when a node cannot vouch for its state (no generation: production nodes today); such a region is always
/// planned afresh.
public enum RegionKey {
    /// The catalog's part of every key: flavors and images.
    public static func catalog(_ model: DesiredModel) -> String {
        var hasher = DigestList()
        for flavor in model.flavors { hasher.add(flavor.meta.digest) }
        for image in model.images { hasher.add(image.meta.digest) }
        return hasher.hex
    }

    /// The key of `region`'s plan, or nil when a node has no generation. `nodes` are all the nodes its plan observes
    /// (those that left the manifests included).
    public static func make(region: Resource<RegionSpec>, slice: RegionSlice, catalog: String, nodes: [Address], generations: [Address: String?],
                            ringStamps: [String: String], options: Planner.Options, version: String) -> String? {
        var documents = DigestList()
        documents.add(region.meta.digest)
        for digest in slice.digests { documents.add(digest) }
        var text = "stacklab-region-plan\n\(version)\n\(region.name)\n\(catalog)\n\(documents.hex)\n\(options.keepOrphans)\n"
        for node in nodes.sorted() {
            guard let generation = generations[node] ?? nil else { return nil }
            text += "node \(node) \(generation)\n"
        }
        for ring in slice.rings.map(\.address.description).sorted() {
            text += "ring \(ring) \(ringStamps[ring] ?? "-")\n"
        }
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// The sha256 of a list of 64-bit digests, in order.
private struct DigestList {
    private var hash = SHA256()
    private var buffer: [UInt8] = []

    mutating func add(_ digest: UInt64) {
        withUnsafeBytes(of: digest.littleEndian) { buffer.append(contentsOf: $0) }
        if buffer.count >= 4096 {
            hash.update(data: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    var hex: String {
        var hash = hash
        hash.update(data: buffer)
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
