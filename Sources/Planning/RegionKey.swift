import Crypto
import Dispatch
import Foundation
import Parallel
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
    /// What a key is made from, as gathered (nodes and rings in the order given, not sorted): equal inputs make equal
    /// keys, so a caller that kept the last ones (`RegionKeyCache`) compares them instead of sorting and hashing again.
    public struct Inputs: Equatable, Sendable {
        var region: String
        var objectStore: Bool
        var catalog: UInt64
        var regional: UInt64
        var keepOrphans: Bool
        var deleteContainerObjects: Bool
        var version: String
        /// All the nodes the plan observes (those that left the manifests included), all of this region.
        var nodes: [Address]
        /// Each of `nodes`' generation, in their order.
        var generations: [String?]
        var rings: [Address]
        var ringStamps: [String?]
    }

    /// What `region`'s key is made from (`rings`: the addresses of its rings). `nodes` are all the nodes its plan observes (those that left the manifests
    /// included), all of this region, and `generations` theirs, in the same order.
    public static func inputs(region: Resource<RegionSpec>, rings ringAddresses: [Address], digests: (catalog: UInt64, regions: [String: UInt64]),
                              nodes: [Address], generations: [String?], ringStamps: [Address: String], options: Planner.Options,
                              version: String) -> Inputs {
        Inputs(region: region.name, objectStore: region.spec.objectStore != nil, catalog: digests.catalog, regional: digests.regions[region.name] ?? 0,
                      keepOrphans: options.keepOrphans, deleteContainerObjects: options.deleteContainerObjects, version: version, nodes: nodes,
                      generations: generations, rings: ringAddresses, ringStamps: ringAddresses.map { ringStamps[$0] })
    }

    /// The key made from `inputs`.
    public static func key(of inputs: Inputs) -> String? {
        guard !inputs.objectStore else { return nil }
        var text = "stacklab-region-plan\n\(inputs.version)\n\(inputs.region)\n\(inputs.catalog)\n\(inputs.regional)\n\(inputs.keepOrphans)\n\(inputs.deleteContainerObjects)\n"
        for index in inputs.nodes.indices.sorted(by: { inputs.nodes[$0].name < inputs.nodes[$1].name }) {  // all of the region
            guard let generation = inputs.generations[index] else { return nil }
            text += "node \(inputs.nodes[index].name) \(generation)\n"
        }
        for index in inputs.rings.indices.sorted(by: { inputs.rings[$0] < inputs.rings[$1] }) {
            text += "ring \(inputs.rings[index]) \(inputs.ringStamps[index] ?? "-")\n"
        }
        return SHA256.hash(data: Data(text.utf8)).hexDigits
    }
}

/// Each region's last key with the inputs it was made from, kept by a long-running planner: a region whose inputs
/// equal the last ones (no node's generation, document digest or ring stamp changed) gets the same key without its
/// nodes being sorted and its text hashed again. While what every region's inputs share (`Context`) is as it was, a
/// region's inputs are not even gathered: its own documents' digest equal to the last one is enough.
public final class RegionKeyCache: @unchecked Sendable {
    private let lock = NSLock()
    /// Each region's inputs and key, and the context (`contexts`' count then) under which they were last made or found equal.
    private var kept: [String: (inputs: RegionKey.Inputs, key: String?, context: Int)] = [:]
    /// The last context, and how many different ones came so far.
    private var lastContext: Context?
    private var contexts = 0

    /// What every region's inputs are made from besides its own: the columns of regions and rings (compared by storage),
    /// the regions asked for, which node groups (`nodes`: a number the caller changes whenever its groups of nodes
    /// and generations are other arrays), the ring stamps, the cloud-wide documents' digest, the options and the version.
    public struct Context: Sendable {
        public var regions: [Resource<RegionSpec>]
        public var selected: [String]
        public var rings: [Resource<RingSpec>]
        public var nodes: Int
        public var ringStamps: [Address: String]
        public var catalog: UInt64
        public var keepOrphans: Bool
        public var deleteContainerObjects: Bool
        public var version: String

        public init(regions: [Resource<RegionSpec>], selected: [String], rings: [Resource<RingSpec>], nodes: Int, ringStamps: [Address: String],
                    catalog: UInt64, options: Planner.Options, version: String) {
            self.regions = regions
            self.selected = selected
            self.rings = rings
            self.nodes = nodes
            self.ringStamps = ringStamps
            self.catalog = catalog
            keepOrphans = options.keepOrphans
            deleteContainerObjects = options.deleteContainerObjects
            self.version = version
        }

        func same(as other: Context) -> Bool {
            regions.sharesStorage(with: other.regions) && rings.sharesStorage(with: other.rings) && nodes == other.nodes && selected == other.selected
                && catalog == other.catalog && keepOrphans == other.keepOrphans && deleteContainerObjects == other.deleteContainerObjects
                && version == other.version && ringStamps == other.ringStamps
        }
    }

    /// An empty cache.
    public init() {}

    /// The keys of `regions` (names, in order) under `context`: while it is the last one, a region whose digest in
    /// `regional` is the one its kept inputs hold has its kept key, and `inputs` (a region's inputs, by its index) is
    /// asked only for the others; every region's when the context changed.
    public func keys(of regions: [String], regional: [String: UInt64], context: Context, inputs: (Int) -> RegionKey.Inputs) -> [String?] {
        var keys = [String?](repeating: nil, count: regions.count)
        var rest: [Int] = []
        let current: Int = lock.withLock {
            if let lastContext, lastContext.same(as: context) {
                for (index, region) in regions.enumerated() {
                    if let entry = kept[region], entry.context == contexts, entry.inputs.regional == regional[region] ?? 0 {
                        keys[index] = entry.key
                    } else {
                        rest.append(index)
                    }
                }
            } else {
                contexts += 1
                lastContext = context
                rest = Array(regions.indices)
            }
            return contexts
        }
        guard !rest.isEmpty else { return keys }
        for (index, key) in zip(rest, self.keys(of: rest.map(inputs), context: current)) { keys[index] = key }
        return keys
    }

    /// The keys made from each of `inputs`, in order: a region's kept key when its inputs equal the ones it was made
    /// from (under one lock for all; equal inputs are kept in their place, so the next call's arrays are most often these
    /// same ones, which compare at once), the others made in parallel and kept. What the contextual look-up falls back
    /// on; called alone (by tests), its entries vouch for no context.
    func keys(of inputs: [RegionKey.Inputs]) -> [String?] {
        keys(of: inputs, context: nil)
    }

    /// `keys(of:)`, noting the entries as made under `context` (none: they vouch for no context).
    private func keys(of inputs: [RegionKey.Inputs], context: Int?) -> [String?] {
        var keys = [String?](repeating: nil, count: inputs.count)
        var toMake: [Int] = []
        lock.withLock {
            for (index, wanted) in inputs.enumerated() {
                if let entry = kept[wanted.region], entry.inputs == wanted {
                    kept[wanted.region] = (wanted, entry.key, context ?? -1)
                    keys[index] = entry.key
                } else {
                    toMake.append(index)
                }
            }
        }
        let made = ResultSlots<String?>(count: toMake.count)
        DispatchQueue.concurrentPerform(iterations: toMake.count) { [toMake] slot in made[slot] = RegionKey.key(of: inputs[toMake[slot]]) }
        lock.withLock {
            for (slot, index) in toMake.enumerated() {
                keys[index] = made[slot] ?? nil
                kept[inputs[index].region] = (inputs[index], keys[index], context ?? -1)
            }
        }
        return keys
    }

    /// Forgets every region but `regions` (those still declared).
    public func retain(regions: Set<String>) {
        lock.withLock {
            guard kept.keys.contains(where: { !regions.contains($0) }) else { return }
            kept = kept.filter { regions.contains($0.key) }
        }
    }
}
