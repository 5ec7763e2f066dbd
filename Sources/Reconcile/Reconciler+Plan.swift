import Dispatch
import Foundation
import Drivers
import Manifests
import Planning
import Parallel
import SimulatedNodes
import State

/// What a plan reused.
public struct ReuseStats: Sendable, CustomStringConvertible {
    /// Regions whose earlier plan was kept, and regions planned.
    public var regionsReused = 0
    public var regionsPlanned = 0
    /// Nodes observed, and nodes whose earlier observation was kept.
    public var nodesObserved = 0
    public var nodesReused = 0
    /// Node generations read (the others were known unchanged from a watch).
    public var generationsRead = 0
    /// Compute nodes of the regions planned whose ruleset was known from their last plan, not rendered again.
    public var rulesetsKept = 0
    /// Regions planned whose networking (DHCP, rulesets, load-balancer configurations) was kept whole: nothing it is
    /// made of changed.
    public var networkingKept = 0
    /// Regions planned from their last run, only the instances whose documents changed decided again, and how many
    /// instances those were.
    public var runsSpliced = 0
    public var instancesReplanned = 0
    /// Seconds in each step of the plan.
    public var phases = ReconcileRun.Phases()

    public var description: String {
        "regions: \(regionsReused) reused, \(regionsPlanned) planned; nodes: \(nodesReused) reused, \(nodesObserved) observed, \(generationsRead) generations read; rulesets: \(rulesetsKept) kept; networking: \(networkingKept) kept; domains: \(runsSpliced) regions spliced, \(instancesReplanned) instances decided again; \(phases)"
    }
}

/// What a plan is asked for: which regions, how much may be reused, and what the caller keeps between plans.
public struct PlanRequest {
    /// How much of earlier plans and observations a plan may reuse.
    public enum Mode: Sendable {
        /// A region whose inputs (documents, node generations, ring builders) are as they were when the memo
        /// remembered its plan gets that plan without its nodes being asked; a node whose generation is unchanged
        /// gives its kept observation. What `plan` and the service do.
        case normal
        /// Every region planned and every node asked again, nothing taken from a memo or an observation cache:
        /// drift, `plan --refresh`, CI plan steps and checks.
        case refresh
        /// A plan made earlier (`plan --out`): every node is asked again and the plan is given back only when each
        /// node is exactly as it was observed then (`Refusal.stale` otherwise). Nothing is planned anew.
        case saved(Plan)
    }

    public var mode = Mode.normal
    /// Regions (every declared one and every one that left the manifests but still has nodes StackLab changed, when empty).
    public var regions: [String] = []
    /// Only changes to these addresses or below (their dependencies come along).
    public var targets: [String] = []
    /// Where region plans are remembered and looked up (`normal` only); nil: the caches' memo, if any.
    public var memo: (any PlanMemo)?
    /// What a long-running caller keeps between plans (drivers, observations, ring builders, region plans).
    public var caches: RunCaches?
    /// The drivers to use (a run's verify passes those its apply used); nil: opened (or taken from the caches).
    public var drivers: [Address: any NodeDriver]?
    /// Clean up after processes that died before observing (closing their runs, settling their creates); a plan over a
    /// store it must not write (CI checks, a verify within a run that already did) does not.
    public var recover = true
    /// See `ReconcileRun.Options.sweepTemporaries`.
    public var sweepTemporaries: Bool?
    /// Called with the regions selected, before anything is recovered or observed: a run takes its leases here.
    public var hold: (([String]) throws -> Void)?
    /// Called with each region's nodes as observed (a region whose plan came from the memo was not observed).
    public var observed: ((String, [ObservedNode]) -> Void)?
    /// Called with the snapshots in each planned region's object store as listed (a region without one is left out).
    public var observedSnapshots: ((String, [ObservedSnapshot]) -> Void)?
    /// Called with the tenants' accounts in each planned region's object store as observed (where StackLab is reseller).
    public var observedAccounts: ((String, [ObservedAccount]) -> Void)?

    /// A request for `mode` over `regions`.
    public init(_ mode: Mode = .normal, regions: [String] = []) {
        self.mode = mode
        self.regions = regions
    }
}

/// A plan and what was found on the way to it.
public struct Planned {
    /// The plan (limited to the request's targets).
    public var plan: Plan
    /// The regions planned, and the node endpoints and drivers of them.
    public var regions: [String]
    public var endpoints: [NodeEndpoint]
    public var drivers: [Address: any NodeDriver]
    /// Instances StackLab manages on each region's nodes as observed (what a mass delete is measured against).
    public var managed: [String: Int]
    /// What the start cleaned up after processes that died.
    public var recovery: Reconciler.Recovery
    /// What was reused, and the time of each step.
    public var reuse: ReuseStats
}

extension Reconciler {
    /// **Every plan is made here**: the CLI's plan, drift and apply, CI pipelines (plan, apply and check steps, the
    /// gate), the service, a run's verify and `IncrementalPlanner` all call it. In order: select the regions (and
    /// the orphan nodes of them) → `hold` → recover after dead processes → open drivers → read generations → reuse
    /// region plans whose `RegionKey` is unchanged (`normal`) → observe and plan the other regions a batch at a time
    /// (each batch's observations let go once it is planned: a plan over thousands of nodes holds one batch of
    /// observations besides the region plans) → combine → hold credit and limit to targets (`credit`). Each node's connection is let
    /// go once it is observed (the applier opens again only the nodes it changes).
    ///
    /// The plan equals one made over a full observation: a region's plan depends only on its `RegionKey`'s inputs.
    public func plan(_ request: PlanRequest) throws -> Planned {
        var stats = ReuseStats()
        let saved: Plan? = if case .saved(let plan) = request.mode { plan } else { nil }
        let refresh: Bool = if case .normal = request.mode { false } else { true }
        let (regions, endpoints) = try selection(saved?.regions ?? request.regions, kept: request.caches?.declaredNodes)
        stats.phases.end("select")
        if let hold = request.hold {
            try hold(regions)
            stats.phases.end("lock")
        }
        let recovery = request.recover ? try recover(sweepTemporaries: request.sweepTemporaries) : Recovery()
        stats.phases.end("recover")
        let drivers = try request.drivers ?? request.caches?.drivers.drivers(for: endpoints, open: drivers(for:)) ?? drivers(for: endpoints)
        let memo = refresh ? nil : request.memo ?? request.caches?.memo
        let observations = refresh ? nil : request.caches?.observations
        let ringCache = request.caches?.rings

        let ringStamps = try self.ringStamps()
        let hour = Self.hour()
        let declared = Set(model.regions.map(\.name))
        let regionResources = model.regions.filter { regions.contains($0.name) }.sorted { $0.name < $1.name }
        let removedRegions = regions.filter { !declared.contains($0) }.sorted()
        let wanted = Set(regions)
        let catalog = request.caches?.catalogs.catalog(of: model) ?? Catalog(model)
        let digests = self.digests

        // Generations first (a few stats per simulated node, or only for the nodes a watch saw change), before
        // anything is observed. Keys read only each region's rings; the slices (every instance of a region) are made
        // for the regions planned.
        let (generations, read) = (request.caches?.nodes ?? nodes).generations(of: drivers)
        stats.generationsRead = read
        let keptGroups = request.caches?.nodeGroups.groups(of: drivers, generations: generations)
        let groups = keptGroups?.groups ?? NodeGroups.make(drivers, generations: generations)
        let nodesByRegion = groups.mapValues(\.nodes)
        stats.phases.end("generations")
        let groupsVersion = keptGroups?.version
        var kept: [String: RegionPlan] = [:]
        var keys: [String: String] = [:]
        if let memo {
            // Gathered only for the regions whose key cannot be known otherwise (see `RegionKeyCache.keys`).
            lazy var ringsByRegion = Dictionary(grouping: model.rings.lazy.filter { wanted.contains($0.region ?? "") }.map(\.address), by: { $0.region ?? "" })
            func inputs(_ index: Int) -> RegionKey.Inputs {
                let region = regionResources[index], group = groups[region.name] ?? NodeGroups.Group()
                return RegionKey.inputs(region: region, rings: ringsByRegion[region.name] ?? [], digests: digests, nodes: group.nodes,
                                        generations: group.generations, ringStamps: ringStamps, options: options, version: BuildIdentity.current)
            }
            let keyCache = request.caches?.regionKeys
            let regionKeys: [String?]
            if let keyCache, let groupsVersion {
                let context = RegionKeyCache.Context(regions: model.regions, selected: regions, rings: model.rings, nodes: groupsVersion, ringStamps: ringStamps,
                                                     catalog: digests.catalog, options: options, version: BuildIdentity.current)
                regionKeys = keyCache.keys(of: regionResources.map(\.name), regional: digests.regions, context: context, inputs: inputs)
            } else {
                let inputs = regionResources.indices.map(inputs)
                let made = ResultSlots<String?>(count: inputs.count)
                DispatchQueue.concurrentPerform(iterations: inputs.count) { index in made[index] = RegionKey.key(of: inputs[index]) }
                regionKeys = made.values
            }
            keyCache?.retain(regions: declared)
            var asked: [(region: String, key: String)] = []
            for (region, key) in zip(regionResources, regionKeys) {
                guard let key else { continue }
                keys[region.name] = key
                asked.append((region.name, key))
            }
            for (entry, plan) in zip(asked, memo.plans(asked)) {
                if let plan { kept[entry.region] = plan }
            }
        }
        stats.regionsReused = kept.count
        let toPlan = regionResources.filter { kept[$0.name] == nil }
        stats.regionsPlanned = toPlan.count + removedRegions.count
        stats.phases.end("keys")
        let slices = saved == nil ? RegionSlices(model, only: Set(toPlan.map(\.name)), instancesByRegion: instancesByRegion, cache: request.caches?.slices) : RegionSlices(DesiredModel(), only: [])
        stats.phases.end("slices")

        var removed: [RegionPlan] = []
        var managed: [String: Int] = [:]
        var fingerprints: [Address: String] = [:]
        for batch in Self.batches(toPlan.map(\.name) + removedRegions, nodes: nodesByRegion, batchNodes: batchNodes) {
            // A region whose group of nodes is the very arrays its last plan used: its nodes and fingerprints as then,
            // nothing looked up node by node.
            var whole: [String: ObservationCache.Region] = [:]
            if let observations, saved == nil {
                for region in batch { if let group = groups[region], let kept = observations.region(region, group: group) { whole[region] = kept } }
            }
            var toObserve: [Address: any NodeDriver] = [:]
            for address in batch.filter({ whole[$0] == nil }).flatMap({ nodesByRegion[$0] ?? [] }) { toObserve[address] = drivers[address] }
            let observation = try observe(toObserve, cache: observations, generations: generations, disconnect: true)
            var observed = Dictionary(grouping: observation.nodes, by: { $0.address.region ?? "" })
            for (region, kept) in whole {
                observed[region] = kept.nodes
                stats.nodesReused += kept.nodes.count
            }
            stats.nodesReused += observation.reused
            stats.nodesObserved += toObserve.count - observation.reused
            for region in batch.sorted() { request.observed?(region, observed[region] ?? []) }
            stats.phases.endAdding("observe")
            if saved != nil {
                for node in observation.nodes {
                    fingerprints[node.address] = node.fingerprint
                    managed[node.address.region ?? "", default: 0] += node.domains.count { $0.address != nil }
                }
                continue
            }

            let regions = toPlan.filter { batch.contains($0.name) }
            let rings = try storedRings(Set(regions.flatMap { slices[$0.name].rings.map(\.address) }), stamps: ringStamps, cache: ringCache)
            let storedRings = adoptingLostRings(rings, regions: Set(regions.map(\.name)), observed: observed, drivers: drivers)
            let snapshots = try observeSnapshots(regions.map(\.name))
            for (region, listed) in snapshots { request.observedSnapshots?(region, listed) }
            let accounts = try observeAccounts(regions.map(\.name))
            for (region, observed) in accounts { request.observedAccounts?(region, observed) }
            stats.phases.endAdding("rings")
            let planned = ResultSlots<RegionPlan>(count: regions.count)
            let options = options
            let regionMemo = refresh ? nil : request.caches?.regionMemo
            let spared = regionMemo?.spared ?? 0, networkingKept = regionMemo?.networkingKept ?? 0, spliced = regionMemo?.spliced ?? (runs: 0, instances: 0)
            // The fingerprints of observations the cache gave back, made by an earlier plan.
            var known = whole.mapValues(\.fingerprints)
            let keptFingerprints = observations?.fingerprints(observation.nodes.map { ($0.address, generations[$0.address] ?? nil) }) ?? []
            for (node, fingerprint) in zip(observation.nodes, keptFingerprints) {
                if let fingerprint { known[node.address.region ?? "", default: [:]][node.address] = fingerprint }
            }
            DispatchQueue.concurrentPerform(iterations: regions.count) { [known, observed] index in
                planned[index] = Planner.planRegion(regions[index], slice: slices[regions[index].name], catalog: catalog,
                                                    observed: observed[regions[index].name] ?? [], storedRings: storedRings, hour: hour, options: options,
                                                    snapshots: snapshots[regions[index].name], accounts: accounts[regions[index].name],
                                                    regionMemo: regionMemo, fingerprints: known[regions[index].name] ?? [:])
            }
            stats.rulesetsKept += (regionMemo?.spared ?? 0) - spared
            stats.networkingKept += (regionMemo?.networkingKept ?? 0) - networkingKept
            stats.runsSpliced += (regionMemo?.spliced.runs ?? 0) - spliced.runs
            stats.instancesReplanned += (regionMemo?.spliced.instances ?? 0) - spliced.instances
            for plan in planned.values where known[plan.region]?.count != plan.fingerprints.count {
                for (address, fingerprint) in plan.fingerprints where known[plan.region]?[address] == nil {
                    observations?.keep(fingerprint: fingerprint, of: address, generation: generations[address] ?? nil)
                }
            }
            for plan in planned.values where whole[plan.region] == nil {
                if let group = groups[plan.region] {
                    observations?.keep(region: plan.region, group: group, nodes: observed[plan.region] ?? [], fingerprints: plan.fingerprints)
                }
            }
            for plan in planned.values {
                if let key = keys[plan.region] { memo?.remember(plan, key: key) }
                kept[plan.region] = plan
            }
            removed += removedRegions.filter(batch.contains).map { Planner.planRemovedRegion($0, observed: observed[$0] ?? [], options: options) }
            stats.phases.endAdding("plan")
        }
        if let saved {
            let changed = Set(saved.observed.keys).union(fingerprints.keys).filter { saved.observed[$0] != fingerprints[$0] }.sorted()
            guard changed.isEmpty else { throw ReconcileRun.Refusal.stale(changed.map(\.description)) }
            return Planned(plan: saved, regions: regions, endpoints: endpoints, drivers: drivers, managed: managed, recovery: recovery, reuse: stats)
        }
        try memo?.save()
        let regionPlans = regionResources.map { kept[$0.name]! } + removed
        for region in regionPlans { managed[region.region] = region.managed }
        let observedNodes = memo == nil ? nil : request.caches?.fingerprints.combine(regionPlans, keys: keys)
        let plan = Planner.combine(regionPlans, revision: revision, manifests: DesiredModel.digest(of: digests), observed: observedNodes)
        stats.phases.end("combine")
        let limited = try Self.limit(try holdingCredit(plan), to: request.targets, model: model)
        stats.phases.end("credit")
        return Planned(plan: limited, regions: regions, endpoints: endpoints, drivers: drivers, managed: managed, recovery: recovery, reuse: stats)
    }


    /// `regions` in batches of at most `batchNodes` nodes, in order (a region is never split: a larger one is a batch alone).
    static func batches(_ regions: [String], nodes: [String: [Address]], batchNodes: Int) -> [Set<String>] {
        var batches: [Set<String>] = []
        var batch = Set<String>()
        var count = 0
        for region in regions {
            let size = nodes[region]?.count ?? 0
            if !batch.isEmpty && count + size > batchNodes {
                batches.append(batch)
                batch = []
                count = 0
            }
            batch.insert(region)
            count += size
        }
        if !batch.isEmpty { batches.append(batch) }
        return batches
    }

    /// `plan` limited to `targets` (address prefixes), with the changes those depend on. A target that names no
    /// declared resource and no change is an error (a typo must not read as "No changes").
    static func limit(_ plan: Plan, to targets: [String], model: DesiredModel) throws -> Plan {
        guard !targets.isEmpty else { return plan }
        func matches(_ address: Address, _ target: String) -> Bool {
            let text = address.description
            return text == target || text.hasPrefix(target + "/")
        }
        var matched = Set<String>()
        var keep = Set<ChangeID>()
        for change in plan.changes {
            for target in targets where matches(change.address, target) {
                matched.insert(target)
                keep.insert(change.id)
            }
        }
        // A target with no change may still name a resource that is up to date; one that names nothing is a typo.
        for target in targets where !matched.contains(target) {
            var known = false
            model.forEachMeta { meta in known = known || matches(meta.address, target) }
            guard known else {
                throw ReconcileError(.invalid, "--target '\(target)' matches no resource and no change; give an address such as instance/<region>/<tenant>/<name> or a prefix of one (see 'stacklab show')")
            }
        }
        var plan = plan
        for change in plan.changes.reversed() where keep.contains(change.id) { keep.formUnion(change.dependsOn) }
        plan.changes = plan.changes.filter { keep.contains($0.id) }
        return plan
    }
}
