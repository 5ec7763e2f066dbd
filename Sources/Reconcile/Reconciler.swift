import Dispatch
import Foundation
import Hypervisor
import Manifests
import Planning
import Parallel

/// Observe → plan → apply for the regions of a loaded revision.
public struct Reconciler: Sendable {
    /// The desired model (already validated).
    public var model: DesiredModel
    /// The revision it came from.
    public var revision: String?
    /// Where state lives (SQLite store, simulated hosts, locks).
    public var stateDirectory: String

    /// Creates a reconciler.
    public init(model: DesiredModel, revision: String?, stateDirectory: String) {
        self.model = model
        self.revision = revision
        self.stateDirectory = stateDirectory
    }

    /// Why a reconcile could not go ahead.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The regions named (all when empty); an unknown name is an error.
    public func regions(_ names: [String]) throws -> [String] {
        let known = Set(model.regions.map(\.name))
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw Failure(description: "region '\(unknown)' is not declared; regions are: \(known.sorted().joined(separator: ", "))")
        }
        return names.isEmpty ? known.sorted() : names.sorted()
    }

    /// A driver for every node of `regions` (each connects on first use).
    public func drivers(for regions: [String]) throws -> [String: any NodeDriver] {
        let wanted = Set(regions)
        let nodes = model.nodes.filter { wanted.contains($0.region ?? "") }
        let opened = ResultSlots<Result<LibvirtNode, DriverError>>(count: nodes.count)
        let stateDirectory = stateDirectory
        DispatchQueue.concurrentPerform(iterations: nodes.count) { index in
            opened[index] = Result { () throws(DriverError) in try LibvirtNode(node: nodes[index], stateDirectory: stateDirectory) }
        }
        var drivers: [String: any NodeDriver] = [:]
        for (node, result) in zip(nodes, opened.values) {
            switch result {
            case .success(let driver): drivers[node.name] = driver
            case .failure(let error): throw Failure(description: "cannot open node \(error)")
            }
        }
        return drivers
    }

    /// Observes every driver's node in parallel (see below).
    public func observe(_ drivers: [String: any NodeDriver]) throws -> [ObservedNode] {
        try observe(drivers, cache: nil, generations: [:], disconnect: false).nodes
    }

    /// Observes every driver's node in parallel. Any unreachable node fails the whole observation: a plan made
    /// without knowing a node's state could create duplicates. A node whose generation (in `generations`) matches
    /// the observation `cache` holds is not asked again; with `disconnect`, each connection is let go once used.
    /// Returns the observations in node-name order and how many came from `cache`.
    func observe(_ drivers: [String: any NodeDriver], cache: ObservationCache?, generations: [String: String?],
                 disconnect: Bool) throws -> (nodes: [ObservedNode], reused: Int) {
        let list = drivers.sorted { $0.key < $1.key }
        let results = ResultSlots<Result<(node: ObservedNode, reused: Bool), DriverError>>(count: list.count)
        DispatchQueue.concurrentPerform(iterations: list.count) { index in
            let (name, driver) = list[index]
            let generation = generations[name] ?? nil
            if let node = cache?.node(name, generation: generation) {
                results[index] = .success((node, true))
                return
            }
            let result = Result { () throws(DriverError) in try driver.observe() }
            if disconnect { driver.disconnect() }
            if case .success(let node) = result { cache?.keep(node, generation: generation) }
            results[index] = result.map { ($0, false) }
        }
        var observed: [ObservedNode] = []
        var reused = 0
        for result in results.values {
            switch result {
            case .success(let entry):
                observed.append(entry.node)
                if entry.reused { reused += 1 }
            case .failure(let error): throw Failure(description: "cannot observe node \(error)")
            }
        }
        return (observed, reused)
    }

    /// A plan for `regions`, limited to `targets` (address prefixes; their dependencies come along) when given.
    /// A state store that cannot be read is an error, never "no state": planning rings from scratch would move
    /// nearly every partition.
    public func plan(regions: [String], observed: [ObservedNode], targets: [String] = []) throws -> Plan {
        let plan = Planner.plan(model: model, observed: observed, regions: Set(regions), revision: revision,
                                storedRings: try storedRings(), hour: Int32(Date().timeIntervalSince1970 / 3600))
        return Self.limit(plan, to: targets)
    }

    /// A region's rings (all, or the one named by name or type), each with its saved builder and what a rebalance
    /// now would do.
    public func ringPlans(region: String, ring name: String? = nil) throws -> [(ring: Resource<RingSpec>, stored: StoredRing?, plan: RingPlan)] {
        guard model.regions.contains(where: { $0.name == region }) else { throw Failure(description: "region '\(region)' is not declared") }
        let rings = model.rings.filter { $0.region == region && (name == nil || $0.name == name || $0.spec.type?.value.rawValue == name) }
        guard !rings.isEmpty else { throw Failure(description: "region '\(region)' has no ring\(name.map { " '\($0)'" } ?? "")") }
        let stored = FileManager.default.fileExists(atPath: "\(stateDirectory)/stacklab.sqlite") ? try StateStore(directory: stateDirectory).rings() : [:]
        let nodes = model.nodes.filter { $0.region == region }
        let hour = Int32(Date().timeIntervalSince1970 / 3600)
        return try rings.sorted { $0.name < $1.name }.map { ring in
            do {
                let saved = stored[ring.address.description]
                return (ring, saved, try RingPlanner.plan(ring: ring, nodes: nodes, stored: saved, hour: hour))
            } catch {
                throw Failure(description: "\(ring.address): \(error)")
            }
        }
    }

    /// Deletes that exceed a region's `maxDeleteShare` of its running instances, as messages (empty when safe).
    public func massDeletions(in plan: Plan, observed: [ObservedNode]) -> [String] {
        var messages: [String] = []
        for region in model.regions where plan.regions.contains(region.name) {
            let managed = observed.filter { $0.address.region == region.name }.flatMap(\.domains).filter { $0.address != nil }.count
            let deletes = plan.changes.count { $0.action == .delete && $0.reason == .removed && $0.address.kind == .instance && $0.address.region == region.name }
            let share = Double(region.spec.maxDeleteShare?.value.units ?? 250_000) / 1e6
            if managed > 0, deletes > 0, Double(deletes) / Double(managed) > share {
                messages.append("region '\(region.name)': the plan deletes \(deletes) of its \(managed) instances, more than the \(Int(share * 100))% allowed by maxDeleteShare")
            }
        }
        return messages
    }
}
