import Foundation
import Drivers
import Manifests
import Planning
import State

/// Ring builders: read from the state store (through a cache of decoded builders), adopted from the nodes when the
/// store lost one, and what a rebalance now would do.
extension Reconciler {
    /// Saved ring builders (those at `addresses` when given).
    func storedRings(_ addresses: Set<Address>? = nil) throws -> [Address: StoredRing] {
        addresses?.isEmpty == true ? [:] : try fromStore([:]) { try $0.rings(addresses) }
    }

    /// The saved ring builders of `regions` only: a region's run reads its own rings, never every region's (their
    /// addresses come from the stamps, which are read without the builders). With `cache`, a builder whose stamp is
    /// unchanged is not read and decoded again.
    func storedRings(ofRegions regions: Set<String>, cache: RingStateCache? = nil) throws -> [Address: StoredRing] {
        let stamps = try ringStamps().filter { $0.key.region.map(regions.contains) ?? false }
        return try storedRings(Set(stamps.keys), stamps: stamps, cache: cache)
    }

    /// The saved ring builders at `addresses`: from `cache` when their stamp (in `stamps`) is the one it holds,
    /// otherwise read, decoded and kept there.
    func storedRings(_ addresses: Set<Address>, stamps: [Address: String], cache: RingStateCache?) throws -> [Address: StoredRing] {
        var rings: [Address: StoredRing] = [:]
        var toRead = Set<Address>()
        for address in addresses {
            if let ring = cache?.ring(address, stamp: stamps[address]) { rings[address] = ring } else { toRead.insert(address) }
        }
        for (address, read) in try storedRings(toRead) {
            var ring = read
            ring.stamp = stamps[address]
            rings[address] = ring
            cache?.keep(ring, address: address, stamp: stamps[address])
        }
        return rings
    }

    /// `stored` plus, for each ring of `regions` the store has no builder for while its nodes hold the ring file, the
    /// builder adopted from that file, when every node holding it has the same one and it can be read (the planner
    /// refuses the ring otherwise: a builder from scratch would move most replicas at once).
    func adoptingLostRings(_ stored: [Address: StoredRing], regions: Set<String>, observed: [String: [ObservedNode]],
                           drivers: [Address: any NodeDriver]) -> [Address: StoredRing] {
        var result = stored
        let lost = model.rings.filter { regions.contains($0.region ?? "") && stored[$0.address] == nil }
        guard !lost.isEmpty else { return result }
        let byAddress = Dictionary(observed.values.joined().map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        for ring in lost {
            let nodes = model.nodes.filter { $0.region == ring.region }
            let holders = nodes.filter { $0.spec.has(.storage) || $0.spec.has(.controller) }.sorted { $0.name < $1.name }
                .compactMap { node in byAddress[node.address]?.rings[ring.fileName].map { (node: node.address, sha256: $0) } }
            guard let first = holders.first, holders.allSatisfy({ $0.sha256 == first.sha256 }), let driver = drivers[first.node],
                  let data = try? driver.readRing(ring.fileName), RingPlanner.sha256(data) == first.sha256,
                  let state = try? RingPlanner.adopt(file: data, from: first.node.name, ring: ring, nodes: nodes, hour: Self.hour())
            else { continue }
            result[ring.address] = state
        }
        return result
    }

    /// Stamps of the saved ring builders (see `RingBuilderStore.ringStamps`).
    func ringStamps() throws -> [Address: String] {
        try fromStore([:]) { try $0.ringStamps() }
    }

    /// Reads the ring builders' part of the state store (`none` when there is no store yet). A store that cannot
    /// be read is an error, never "no state": planning rings from scratch would move nearly every partition.
    private func fromStore<T>(_ none: T, _ read: (any StateBackend) throws -> T) throws -> T {
        guard let state else { return none }
        do {
            return try read(state)
        } catch {
            throw ReconcileError(.stateUnavailable, "cannot read the ring builders in the state store: \(error); nothing was planned", cause: error)
        }
    }

    /// A region's rings (all, or the one named by name or type), each with its saved builder and what a rebalance
    /// now would do.
    public func ringPlans(region: String, ring name: String? = nil) throws -> [(ring: Resource<RingSpec>, stored: StoredRing?, plan: RingPlan)] {
        guard model.regions.contains(where: { $0.name == region }) else { throw ReconcileError(.invalid, "region '\(region)' is not declared") }
        let rings = model.rings.filter { $0.region == region && (name == nil || $0.name == name || $0.spec.type?.value.rawValue == name) }
        guard !rings.isEmpty else { throw ReconcileError(.invalid, "region '\(region)' has no ring\(name.map { " '\($0)'" } ?? "")") }
        let stored = try storedRings(ofRegions: [region])
        let nodes = model.nodes.filter { $0.region == region }
        let hour = Self.hour()
        return try rings.sorted { $0.name < $1.name }.map { ring in
            do {
                let saved = stored[ring.address]
                return (ring, saved, try RingPlanner.plan(ring: ring, nodes: nodes, stored: saved, hour: hour))
            } catch {
                throw ReconcileError(.invalid, "\(ring.address): \(error)", cause: error)
            }
        }
    }
}
