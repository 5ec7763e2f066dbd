import Dispatch
import Foundation
import Drivers
import Manifests
import Planning
import Parallel
import SimulatedNodes
import State

/// Region plans kept between plans, by `RegionKey`.
public protocol PlanMemo: AnyObject {
    /// The plan remembered for `region` under `key`, if any.
    func plan(region: String, key: String) -> RegionPlan?
    /// Remembers `plan` (made from inputs with `key`).
    func remember(_ plan: RegionPlan, key: String)
    /// Makes what was remembered durable.
    func save() throws
}

/// Every region plan, in memory: the long-running reconciler's memo.
public final class MemoryPlanMemo: PlanMemo {
    private var plans: [String: (key: String, plan: RegionPlan)] = [:]

    /// An empty memo.
    public init() {}

    public func plan(region: String, key: String) -> RegionPlan? {
        plans[region].flatMap { $0.key == key ? $0.plan : nil }
    }

    public func remember(_ plan: RegionPlan, key: String) {
        plans[plan.region] = plan.settling ? nil : (key, plan)
    }

    public func save() {}
}

/// Converged region plans in the state store, so that `stacklab plan` run again over nodes that did not change
/// does not observe them again. Only converged regions are kept (a rebalanced ring is a change, so theirs list no
/// ring plans): their plan is a count and node fingerprints.
public final class StoredPlanMemo: PlanMemo {
    private let store: any PlanMemoStore
    private var stored: [String: (key: String, plan: Data)]
    private var pending: [(region: String, key: String, plan: Data?)] = []

    /// Reads the memos in `store`.
    public init(store: any PlanMemoStore) throws {
        self.store = store
        stored = try store.regionMemos()
    }

    public func plan(region: String, key: String) -> RegionPlan? {
        guard let memo = stored[region], memo.key == key else { return nil }
        return try? JSONDecoder().decode(RegionPlan.self, from: memo.plan)
    }

    public func remember(_ plan: RegionPlan, key: String) {
        if plan.isConverged, !plan.settling, let data = try? JSONEncoder().encode(plan) {
            pending.append((plan.region, key, data))
        } else if stored[plan.region] != nil {
            pending.append((plan.region, key, nil))
        }
    }

    public func save() throws {
        try store.saveRegionMemos(pending)
        pending = []
    }
}

/// Values kept with the stamp they were made at (a node's generation, a ring builder's stamp), by region: a value
/// is given back only under the same stamp. With a limit, only the `limit` regions used most recently are kept. A
/// long-running reconciler plans one region at a time, mostly the few its pushes touch; keeping the decoded state of
/// every region it ever planned (every one, after a resync) would hold a large cloud's observations and ring builders
/// for regions it may not plan again for an hour.
final class RegionBoundedCache<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private var entries: [String: [Key: (stamp: String, value: Value)]] = [:]
    private var lastUse: [String: UInt64] = [:]
    private var clock: UInt64 = 0
    private let limit: Int?
    private let lock = NSLock()

    /// An empty cache of at most `regions` regions (every region when nil).
    init(regions: Int?) {
        limit = regions.map { max(1, $0) }
    }

    func value(_ key: Key, region: String, stamp: String?) -> Value? {
        guard let stamp else { return nil }
        return lock.withLock {
            guard let kept = entries[region]?[key], kept.stamp == stamp else { return nil }
            use(region)
            return kept.value
        }
    }

    /// Keeps `value` under `stamp` (forgets the key's value when there is no stamp).
    func keep(_ value: Value, key: Key, region: String, stamp: String?) {
        lock.withLock {
            guard let stamp else {
                entries[region]?[key] = nil
                return
            }
            use(region)
            entries[region, default: [:]][key] = (stamp, value)
        }
    }

    /// Regions and values kept.
    var kept: (regions: Int, values: Int) {
        lock.withLock { (entries.count, entries.values.reduce(0) { $0 + $1.count }) }
    }

    /// Marks `region` used now; a region new to the cache that passes the limit forgets the one used least recently.
    private func use(_ region: String) {
        clock += 1
        guard lastUse.updateValue(clock, forKey: region) == nil, let limit, lastUse.count > limit,
              let oldest = lastUse.min(by: { $0.value < $1.value })?.key else { return }
        lastUse[oldest] = nil
        entries[oldest] = nil
    }
}

/// Observations kept with the generation they were made at: a node whose generation is unchanged is not asked
/// again. In memory, for the long-running reconciler; bounded to the regions observed most recently when made with
/// a limit (a node of another region is observed again: a simulated node reads the observation saved beside its host).
public final class ObservationCache: Sendable {
    private let cache: RegionBoundedCache<Address, ObservedNode>

    /// An empty cache, keeping the nodes of at most `regions` regions (every region when nil).
    public init(regions: Int? = nil) {
        cache = RegionBoundedCache(regions: regions)
    }

    func node(_ address: Address, generation: String?) -> ObservedNode? {
        cache.value(address, region: address.region ?? "", stamp: generation)
    }

    func keep(_ node: ObservedNode, generation: String?) {
        cache.keep(node, key: node.address, region: node.address.region ?? "", stamp: generation)
    }

    /// Regions and nodes kept.
    public var kept: (regions: Int, nodes: Int) { let kept = cache.kept; return (kept.regions, kept.values) }
}

/// Ring builders decoded from the state store, kept by their stamp (`StateStore.ringStamps`): a builder is
/// megabytes of JSON, decoded again only when it was saved again. In memory, for the long-running reconciler; bounded
/// to the regions planned most recently when made with a limit.
public final class RingStateCache: Sendable {
    private let cache: RegionBoundedCache<Address, StoredRing>

    /// An empty cache, keeping the rings of at most `regions` regions (every region when nil).
    public init(regions: Int? = nil) {
        cache = RegionBoundedCache(regions: regions)
    }

    func ring(_ address: Address, stamp: String?) -> StoredRing? {
        cache.value(address, region: address.region ?? "", stamp: stamp)
    }

    func keep(_ ring: StoredRing, address: Address, stamp: String?) {
        cache.keep(ring, key: address, region: address.region ?? "", stamp: stamp)
    }
}

/// A driver per node, kept while the node's endpoint (URI, size, host key, file root) is unchanged and made anew
/// when it changed: a long-running reconciler does not open its nodes again for every run.
public final class DriverPool: @unchecked Sendable {
    /// Each driver with the endpoint it was opened for: a node whose endpoint changed (another URI, size, host key
    /// or file root) gets a new driver. Compared, not hashed: the endpoints of an unchanged model share their strings
    /// with the kept ones, so 10,000 comparisons cost less than hashing one endpoint's host key 10,000 times.
    private var drivers: [Address: Kept] = [:]
    private struct Kept {
        let endpoint: NodeEndpoint
        let driver: any NodeDriver
    }
    private let lock = NSLock()

    /// An empty pool.
    public init() {}

    /// The drivers of `endpoints`: those kept, and for the others what `open` makes (kept from now on).
    public func drivers(for endpoints: [NodeEndpoint], open: ([NodeEndpoint]) throws -> [Address: any NodeDriver]) throws -> [Address: any NodeDriver] {
        var result: [Address: any NodeDriver] = [:]
        result.reserveCapacity(endpoints.count)
        var missing: [NodeEndpoint] = []
        lock.withLock {
            for endpoint in endpoints {
                if let kept = drivers[endpoint.address], kept.endpoint == endpoint { result[endpoint.address] = kept.driver } else { missing.append(endpoint) }
            }
        }
        guard !missing.isEmpty else { return result }
        let opened = try open(missing)
        let byAddress = Dictionary(missing.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        lock.withLock {
            for (address, driver) in opened {
                guard let endpoint = byAddress[address] else { continue }
                drivers[address] = Kept(endpoint: endpoint, driver: driver)
                result[address] = driver
            }
        }
        return result
    }

    /// Lets go of every driver but those of `addresses` (nodes that left the manifests).
    public func retain(_ addresses: Set<Address>) {
        lock.withLock {
            guard drivers.keys.contains(where: { !addresses.contains($0) }) else { return }
            drivers = drivers.filter { addresses.contains($0.key) }
        }
    }
}

/// What a long-running caller of `ReconcileRun` keeps from one run to the next, so that a run costs what changed:
/// the node source (its listing of simulated hosts and their watched generations), node drivers, observations (while
/// a node's generation is unchanged), decoded ring builders.
public final class RunCaches: Sendable {
    /// The nodes of the state directory, listing simulated hosts again only when a region directory changed and
    /// reading generations again only for nodes whose files changed.
    public let nodes: LocalNodes
    public let drivers = DriverPool()
    /// Observations of unchanged nodes and decoded ring builders, of the `regions` regions planned most recently.
    public let observations: ObservationCache
    public let rings: RingStateCache
    /// Empty caches for the nodes of `stateDirectory`, keeping the decoded state (observations, ring builders) of at
    /// most `regions` regions (every region when nil).
    public init(stateDirectory: String, regions: Int? = nil) {
        nodes = LocalNodes(stateDirectory: stateDirectory, watching: true)
        observations = ObservationCache(regions: regions)
        rings = RingStateCache(regions: regions)
    }
}

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
    /// Seconds in each step of the plan.
    public var phases = ReconcileRun.Phases()

    public var description: String {
        "regions: \(regionsReused) reused, \(regionsPlanned) planned; nodes: \(nodesReused) reused, \(nodesObserved) observed, \(generationsRead) generations read; \(phases)"
    }
}

extension Reconciler {
    /// A plan for `regions` that keeps what did not change: a region whose `RegionKey` equals the one `memo`
    /// holds gets its remembered plan without its nodes being observed; otherwise its nodes are observed (or taken
    /// from `observations` when their generation is unchanged) and it is planned. `refresh` observes and plans
    /// everything. The plan equals `plan(regions:observed:)` over a full observation. With `disconnect`, each
    /// node's connection is let go once it is observed (a plan that applies nothing needs no more of it).
    public func plan(regions: [String], drivers: [Address: any NodeDriver], memo: (any PlanMemo)?, observations: ObservationCache? = nil,
                     ringCache: RingStateCache? = nil, refresh: Bool = false, disconnect: Bool = false,
                     targets: [String] = []) throws -> (plan: Plan, reuse: ReuseStats) {
        var stats = ReuseStats()
        let ringStamps = try self.ringStamps()
        let hour = Self.hour()
        let declared = Set(model.regions.map(\.name))
        let regionResources = model.regions.filter { regions.contains($0.name) }.sorted { $0.name < $1.name }
        let removedRegions = regions.filter { !declared.contains($0) }.sorted()
        // Keys read only each region's rings; the slices (every instance of a region) are made for the regions planned.
        let wanted = Set(regions)
        let ringsByRegion = Dictionary(grouping: model.rings.filter { wanted.contains($0.region ?? "") }, by: { $0.region ?? "" })
        let catalog = Catalog(model)
        let digests = self.digests
        let nodesByRegion = Dictionary(grouping: drivers.keys, by: { $0.region ?? "" })

        // Generations first (a few stats per simulated node, or only for the nodes a watch saw change), before
        // anything is observed.
        let (generations, read) = nodes.generations(of: drivers)
        stats.generationsRead = read
        stats.phases.end("generations")
        var kept: [String: RegionPlan] = [:]
        var keys: [String: String] = [:]
        let regionKeys = ResultSlots<String?>(count: regionResources.count)
        let options = options
        DispatchQueue.concurrentPerform(iterations: regionResources.count) { index in
            let region = regionResources[index]
            regionKeys[index] = RegionKey.make(region: region, rings: ringsByRegion[region.name] ?? [], digests: digests, nodes: nodesByRegion[region.name] ?? [],
                                               generations: generations, ringStamps: ringStamps, options: options, version: BuildIdentity.current)
        }
        for (region, key) in zip(regionResources, regionKeys.values) {
            guard let key else { continue }
            keys[region.name] = key
            if !refresh, let plan = memo?.plan(region: region.name, key: key) { kept[region.name] = plan }
        }
        stats.regionsReused = kept.count
        let toPlan = regionResources.filter { kept[$0.name] == nil }
        stats.regionsPlanned = toPlan.count + removedRegions.count
        stats.phases.end("keys")
        let slices = RegionSlices(model, only: Set(toPlan.map(\.name)))
        stats.phases.end("slices")

        // Regions are observed and planned a batch at a time, each batch's observations let go once it is planned: a
        // plan over thousands of nodes holds one batch of observations besides the region plans.
        var removed: [RegionPlan] = []
        for batch in Self.batches(toPlan.map(\.name) + removedRegions, nodes: nodesByRegion, batchNodes: batchNodes) {
            var toObserve: [Address: any NodeDriver] = [:]
            for address in batch.flatMap({ nodesByRegion[$0] ?? [] }) { toObserve[address] = drivers[address] }
            let observation = try observe(toObserve, cache: refresh ? nil : observations, generations: generations, disconnect: disconnect)
            let observed = Dictionary(grouping: observation.nodes, by: { $0.address.region ?? "" })
            stats.nodesReused += observation.reused
            stats.nodesObserved += toObserve.count - observation.reused
            stats.phases.endAdding("observe")

            let regions = toPlan.filter { batch.contains($0.name) }
            let rings = try storedRings(Set(regions.flatMap { slices[$0.name].rings.map(\.address) }), stamps: ringStamps, cache: ringCache)
            let storedRings = adoptingLostRings(rings, regions: Set(regions.map(\.name)), observed: observation.nodes, drivers: drivers)
            let snapshots = try observeSnapshots(regions.map(\.name))
            stats.phases.endAdding("rings")
            let planned = ResultSlots<RegionPlan>(count: regions.count)
            DispatchQueue.concurrentPerform(iterations: regions.count) { index in
                planned[index] = Planner.planRegion(regions[index], slice: slices[regions[index].name], catalog: catalog,
                                                    observed: observed[regions[index].name] ?? [], storedRings: storedRings, hour: hour, options: options,
                                                    snapshots: snapshots[regions[index].name])
            }
            for plan in planned.values {
                if let key = keys[plan.region] { memo?.remember(plan, key: key) }
                kept[plan.region] = plan
            }
            removed += removedRegions.filter(batch.contains).map { Planner.planRemovedRegion($0, observed: observed[$0] ?? [], options: options) }
            stats.phases.endAdding("plan")
        }
        try memo?.save()
        let plan = Planner.combine(regionResources.map { kept[$0.name]! } + removed, revision: revision,
                                   manifests: DesiredModel.digest(of: digests))
        stats.phases.end("combine")
        return (try Self.limit(try holdingCredit(plan), to: targets, model: model), stats)
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
        for (address, ring) in try storedRings(toRead) {
            rings[address] = ring
            cache?.keep(ring, address: address, stamp: stamps[address])
        }
        return rings
    }

    /// `stored` plus, for each ring of `regions` the store has no builder for while its nodes hold the ring file, the
    /// builder adopted from that file, when every node holding it has the same one and it can be read (the planner
    /// refuses the ring otherwise: a builder from scratch would move most replicas at once).
    func adoptingLostRings(_ stored: [Address: StoredRing], regions: Set<String>, observed: [ObservedNode],
                           drivers: [Address: any NodeDriver]) -> [Address: StoredRing] {
        var result = stored
        let byAddress = Dictionary(observed.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        for ring in model.rings where regions.contains(ring.region ?? "") && stored[ring.address] == nil {
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
