import Dispatch
import Foundation
import Manifests
import Parallel

/// Turns the desired model and the observed nodes into a plan. Pure: no I/O, deterministic.
public enum Planner {
    /// How a plan treats what the manifests no longer name.
    public struct Options: Sendable, Hashable {
        /// Report StackLab's objects on nodes or regions that left the manifests instead of deleting them (and do not
        /// re-create their instances elsewhere).
        public var keepOrphans = false
        /// Delete a tenant's container that left the manifests even when it holds objects, with every object (and
        /// every old version) in it. Without it such a container is a plan error: StackLab deletes no tenant data on
        /// its own.
        public var deleteContainerObjects = false

        /// Default options: orphans are deleted (or moved); containers only when empty.
        public init(keepOrphans: Bool = false, deleteContainerObjects: Bool = false) {
            self.keepOrphans = keepOrphans
            self.deleteContainerObjects = deleteContainerObjects
        }
    }

    /// Plans `regions` (all declared when nil, plus `removedRegions`). `observed` holds every node of those regions
    /// that was observed, by node address, including nodes that left the manifests. `storedRings` holds each ring's
    /// builder from earlier runs (by ring address); `hour` is now, in hours since the epoch, for min_part_hours.
    /// Regions are independent and planned concurrently.
    public static func plan(model: DesiredModel, observed: [ObservedNode], regions only: Set<String>? = nil, removedRegions: [String] = [],
                            revision: String? = nil, manifests: String? = nil, storedRings: [Address: StoredRing] = [:], hour: Int32 = 0,
                            options: Options = Options(), snapshots: [String: [ObservedSnapshot]] = [:], accounts: [String: [ObservedAccount]] = [:]) -> Plan {
        let regions = model.regions.filter { only?.contains($0.name) ?? true }.sorted { $0.name < $1.name }
        let slices = RegionSlices(model, only: only)
        let catalog = Catalog(model)
        let byRegion = Dictionary(grouping: observed, by: { $0.address.region ?? "" })
        let results = ResultSlots<RegionPlan>(count: regions.count)
        DispatchQueue.concurrentPerform(iterations: regions.count) { index in
            let region = regions[index]
            results[index] = planRegion(region, slice: slices[region.name], catalog: catalog, observed: byRegion[region.name] ?? [],
                                        storedRings: storedRings, hour: hour, options: options, snapshots: snapshots[region.name], accounts: accounts[region.name])
        }
        let removed = removedRegions.sorted().map { planRemovedRegion($0, observed: byRegion[$0] ?? [], options: options) }
        return combine(results.values + removed, revision: revision, manifests: manifests ?? model.digest)
    }

    /// Plans one region from its slice of the model and the observations of its nodes (those that left the
    /// manifests included). The result depends only on the arguments, so a caller that knows none of them changed
    /// may keep an earlier result (the incremental reconciler does). `snapshots` lists the region's object store (nil
    /// when it has none), `accounts` the tenants' accounts in it (nil when StackLab has no reseller credential there).
    /// `regionMemo`, kept by a long-running caller, spares what the region's last plan decided from the same inputs:
    /// rulesets of nodes, the whole networking, every instance but those whose documents changed (the plan is the same
    /// with or without it). `fingerprints` are those of
    /// observations the caller knows (the very observations in `observed`); the others are digested.
    public static func planRegion(_ region: Resource<RegionSpec>, slice: RegionSlice, catalog: Catalog, observed: [ObservedNode],
                                  storedRings: [Address: StoredRing], hour: Int32, options: Options = Options(),
                                  snapshots: [ObservedSnapshot]? = nil, accounts: [ObservedAccount]? = nil, regionMemo: RegionMemo? = nil,
                                  fingerprints: [Address: String] = [:]) -> RegionPlan {
        var planner = RegionPlanner(region: region.name, spec: region.spec, slice: slice, catalog: catalog, observed: observed, options: options)
        planner.regionLocation = region.meta.location
        planner.regionDocument = region
        planner.regionMemo = regionMemo
        planner.fingerprints = fingerprints
        planner.snapshots = snapshots
        planner.accounts = accounts
        planner.hour = hour
        planner.run()
        planner.planRings(storedRings: storedRings, hour: hour)
        return planner.result()
    }

    /// The ruleset every compute node of `region` should run, planned as `planRegion` plans it (for `firewall show`).
    public static func rulesets(_ region: Resource<RegionSpec>, model: DesiredModel, observed: [ObservedNode]) -> [Ruleset] {
        var planner = RegionPlanner(region: region.name, spec: region.spec, slice: RegionSlices(model, only: [region.name])[region.name], catalog: Catalog(model),
                                    observed: observed, options: Options())
        planner.regionLocation = region.meta.location
        planner.run()
        return planner.rulesets.sorted { $0.node < $1.node }
    }

    /// Plans a region that left the manifests but whose nodes still hold StackLab's objects: every one of them is
    /// deleted (or, with `keepOrphans`, reported).
    public static func planRemovedRegion(_ name: String, observed: [ObservedNode], options: Options = Options()) -> RegionPlan {
        var planner = RegionPlanner(region: name, spec: nil, slice: RegionSlice(), catalog: Catalog(DesiredModel()), observed: observed,
                                    options: options)
        planner.run()
        return planner.result()
    }

    /// One plan from region plans (in region order). `observed`: the regions' fingerprints merged already (a
    /// long-running caller keeps them, `PlanFingerprints`).
    public static func combine(_ regions: [RegionPlan], revision: String?, manifests: String, observed: [Address: String]? = nil) -> Plan {
        var fingerprints: [Address: String] = observed ?? [:]
        if observed == nil {
            fingerprints.reserveCapacity(regions.reduce(0) { $0 + $1.fingerprints.count })
            for region in regions { fingerprints.merge(region.fingerprints) { first, _ in first } }
        }
        var plan = Plan(revision: revision, regions: regions.map(\.region), observed: fingerprints, changes: [],
                        unmanaged: regions.flatMap(\.unmanaged), errors: regions.flatMap(\.errors))
        // Each region's array is shared with the region plan (and the memo keeping it), not copied.
        for region in regions { plan.changes.append(chunk: region.changes) }
        plan.manifests = manifests
        plan.orphans = regions.flatMap(\.orphans)
        plan.rings = regions.flatMap(\.rings)
        plan.unchanged = regions.reduce(0) { $0 + $1.unchanged }
        return plan
    }
}

/// What planning one region produced.
public struct RegionPlan: Sendable, Codable {
    public var region: String
    public var fingerprints: [Address: String] = [:]
    public var changes: [Change] = []
    public var unmanaged: [Plan.Unmanaged] = []
    public var errors: [Plan.Problem] = []
    public var orphans: [Plan.Orphan] = []
    public var rings: [RingRebalance] = []
    public var unchanged = 0
    /// Instances StackLab manages on the region's nodes as observed (what a mass delete is measured against).
    public var managed = 0
    /// Whether a ring of the region holds partitions back (min_part_hours): its plan changes with the hour.
    public var settling = false

    /// Whether the region is converged: nothing to change, and nothing unmanaged, orphaned or in error.
    public var isConverged: Bool { changes.isEmpty && unmanaged.isEmpty && errors.isEmpty && orphans.isEmpty }

    public init(region: String) {
        self.region = region
    }

    /// This plan as a memo keeps it for later: each change `compacted()`. Read, it is the same plan.
    public func compacted() -> RegionPlan {
        var plan = self
        plan.changes = changes.compacted()
        return plan
    }
}

extension Change {
    /// This change as a plan kept for later holds it: what it carries whole, and nothing reads until it is done, kept
    /// deflated (the rules and traffic counters of a ruleset it loads, `Ruleset.Rules.compacted()`,
    /// `Ruleset.Counters.compacted()`; a ring builder's state,
    /// `KeptBytes.compacted()`). Read, it is the same change.
    public func compacted() -> Change {
        var change = self
        switch operation {
        case .node(.loadFirewall(var ruleset)):
            ruleset.rules = ruleset.rules.compacted()
            ruleset.counters = ruleset.counters.compacted()
            change.operation = .node(.loadFirewall(ruleset))
        case .region(.saveRingBuilder(let state, let checksum, let previous)):
            change.operation = .region(.saveRingBuilder(state: state.compacted(), checksum: checksum, previous: previous))
        default:
            break
        }
        return change
    }

    /// Whether `compacted()` may keep something of it deflated (a ruleset's rules and counters, a ring builder's state).
    var hasKeptPayload: Bool {
        switch operation {
        case .node(.loadFirewall), .region(.saveRingBuilder): true
        default: false
        }
    }
}

extension [Change] {
    /// Each change `compacted()`; the very array when none carries anything to deflate.
    func compacted() -> [Change] {
        var changes = self
        for index in changes.indices where changes[index].hasKeptPayload {
            changes[index] = changes[index].compacted()
        }
        return changes
    }
}
