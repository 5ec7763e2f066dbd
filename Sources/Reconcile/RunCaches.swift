import Foundation
import Drivers
import Manifests
import Planning
import SimulatedNodes
import State

/// Observations kept with the generation they were made at: a node whose generation is unchanged is not asked
/// again. In memory, for the long-running reconciler; bounded to the regions observed most recently when made with
/// a limit (a node of another region is observed again: a simulated node reads the observation saved beside its host).
public final class ObservationCache: Sendable {
    private let cache: RegionBoundedCache<Address, ObservedNode>
    /// Each kept observation's fingerprint, once a plan made it, under the same generation: the plans that follow take
    /// it instead of digesting the observation again.
    private let fingerprints: RegionBoundedCache<Address, String>

    /// Each region's observations and their fingerprints as its last plan used them, with the group of nodes (the very
    /// arrays) they were for, for the 8 regions planned most recently.
    private let regions: RegionBoundedCache<String, Region>

    /// A region's nodes as observed, in order, and each one's fingerprint.
    struct Region: Sendable {
        var group: NodeGroups.Group
        var nodes: [ObservedNode]
        var fingerprints: [Address: String]
    }

    /// An empty cache, keeping the nodes of at most `regions` regions (every region when nil).
    public init(regions: Int? = nil) {
        cache = RegionBoundedCache(regions: regions)
        fingerprints = RegionBoundedCache(regions: regions)
        // Only a region planned again needs its observations (one whose key is unchanged keeps its plan): the 8 planned
        // most recently, as `RegionMemo` keeps their runs, not a second copy of every region's nodes.
        self.regions = RegionBoundedCache(regions: min(regions ?? 8, 8))
    }

    /// `region`'s nodes and fingerprints as its last plan used them, while its group is the very arrays it was then:
    /// no node came, went or moved to another generation (`NodeGroups` gives the same arrays again while the drivers
    /// and generations are the same dictionaries), so each node's kept observation and fingerprint would be these.
    func region(_ region: String, group: NodeGroups.Group) -> Region? {
        guard let kept = regions.value(region, region: region, stamp: ""), kept.group.nodes.sharesStorage(with: group.nodes),
              kept.group.generations.sharesStorage(with: group.generations) else { return nil }
        return kept
    }

    /// Keeps `region`'s nodes as a plan used them, when every node has a generation (a node without one is always asked).
    func keep(region: String, group: NodeGroups.Group, nodes: [ObservedNode], fingerprints: [Address: String]) {
        guard group.generations.allSatisfy({ $0 != nil }), nodes.count == group.nodes.count, fingerprints.count == nodes.count else {
            regions.forget(region, region: region)
            return
        }
        regions.keep(Region(group: group, nodes: nodes, fingerprints: fingerprints), key: region, region: region, stamp: "")
    }

    /// The observations kept for `nodes` (with their generations), in their order, nil where none is kept at it.
    func nodes(_ nodes: [(address: Address, generation: String?)]) -> [ObservedNode?] {
        cache.values(nodes.map { ($0.address, $0.address.region ?? "", $0.generation) })
    }

    func keep(_ node: ObservedNode, generation: String?) {
        cache.keep(node, key: node.address, region: node.address.region ?? "", stamp: generation)
    }

    /// The fingerprints of the observations kept for `nodes` at their generations, when a plan made them (in their order,
    /// nil where none is kept).
    func fingerprints(_ nodes: [(address: Address, generation: String?)]) -> [String?] {
        fingerprints.values(nodes.map { ($0.address, $0.address.region ?? "", $0.generation) })
    }

    func keep(fingerprint: String, of address: Address, generation: String?) {
        fingerprints.keep(fingerprint, key: address, region: address.region ?? "", stamp: generation)
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
    /// A class: looking one up then retains one reference, not each of the endpoint's strings.
    private final class Kept {
        let endpoint: NodeEndpoint
        let driver: any NodeDriver
        init(endpoint: NodeEndpoint, driver: any NodeDriver) {
            self.endpoint = endpoint
            self.driver = driver
        }
    }
    private let lock = NSLock()
    /// The endpoints last asked for when every one had a kept driver, and those drivers (the endpoints held, so their
    /// storage cannot be another array's while compared against).
    private var last: (endpoints: [NodeEndpoint], drivers: [Address: any NodeDriver])?

    /// An empty pool.
    public init() {}

    /// The drivers of `endpoints`: those kept, and for the others what `open` makes (kept from now on).
    public func drivers(for endpoints: [NodeEndpoint], open: ([NodeEndpoint]) throws -> [Address: any NodeDriver]) throws -> [Address: any NodeDriver] {
        // The same array of endpoints as last time (`DeclaredNodes` gives it while no Node document changed), and no
        // driver opened or let go since: the same drivers.
        if let last = lock.withLock({ self.last }), last.endpoints.sharesStorage(with: endpoints) {
            return last.drivers
        }
        var result: [Address: any NodeDriver] = [:]
        result.reserveCapacity(endpoints.count)
        var missing: [NodeEndpoint] = []
        lock.withLock {
            for endpoint in endpoints {
                if let kept = drivers[endpoint.address], kept.endpoint == endpoint { result[endpoint.address] = kept.driver } else { missing.append(endpoint) }
            }
        }
        guard !missing.isEmpty else {
            lock.withLock { last = (endpoints, result) }
            return result
        }
        let opened = try open(missing)
        let byAddress = Dictionary(missing.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        lock.withLock {
            last = nil
            for (address, driver) in opened {
                guard let endpoint = byAddress[address] else { continue }
                drivers[address] = Kept(endpoint: endpoint, driver: driver)
                result[address] = driver
            }
        }
        return result
    }

    /// Lets go of every driver but those of `endpoints`. Nothing to look at when they are the array the last `drivers`
    /// answered from kept drivers alone and the pool holds no other driver (a push that touched no Node document).
    public func retain(endpoints: [NodeEndpoint]) {
        let unchanged = lock.withLock { last.map { $0.endpoints.sharesStorage(with: endpoints) && $0.drivers.count == drivers.count } ?? false }
        guard !unchanged else { return }
        retain(Set(endpoints.map(\.address)))
    }

    /// Lets go of every driver but those of `addresses` (nodes that left the manifests).
    public func retain(_ addresses: Set<Address>) {
        lock.withLock {
            guard drivers.keys.contains(where: { !addresses.contains($0) }) else { return }
            drivers = drivers.filter { addresses.contains($0.key) }
            last = nil
        }
    }
}

/// The declared nodes' endpoints and addresses, made again only when the model's column of nodes is another array. A
/// load that splices its kept model (`DesiredModel.splice`) keeps every column no changed file has a resource of,
/// storage and all, so a push that touches no Node document gives the same array, and 10,000 endpoints are not made
/// and hashed again. The column is held, so its storage cannot be another array's while it is compared against.
public final class DeclaredNodes: @unchecked Sendable {
    private let lock = NSLock()
    private var column: [Resource<NodeSpec>]?
    private var all: [NodeEndpoint] = []
    private var addresses: Set<Address> = []
    /// The endpoints of the regions last asked for (the same array while the column and the regions are).
    private var selected: (regions: [String], endpoints: [NodeEndpoint])?
    /// The held nodes last looked through, and those of them not declared (while the column is the same).
    private var lastHeld: (held: [NodeEndpoint], undeclared: [NodeEndpoint])?
    /// The inventory's nodes last read, those of them not declared, and the inventory's revision read before them (while
    /// the column is the same).
    private var lastKnown: (regions: Set<String>?, revision: Int64, undeclared: [NodeEndpoint])?

    /// Nothing kept yet.
    public init() {}

    private func refresh(_ nodes: [Resource<NodeSpec>]) {
        if let column, column.sharesStorage(with: nodes) { return }
        column = nodes
        all = nodes.map(NodeEndpoint.init)
        addresses = Set(all.map(\.address))
        selected = nil
        lastHeld = nil
        lastKnown = nil
    }

    /// The addresses of every node of `nodes` (a model's column).
    func addresses(of nodes: [Resource<NodeSpec>]) -> Set<Address> {
        lock.withLock {
            refresh(nodes)
            return addresses
        }
    }

    /// The endpoints of `held` whose node `nodes` does not declare: the ones last found while both are the same arrays.
    func undeclared(_ held: [NodeEndpoint], of nodes: [Resource<NodeSpec>]) -> [NodeEndpoint] {
        lock.withLock {
            refresh(nodes)
            if let lastHeld, lastHeld.held.sharesStorage(with: held) { return lastHeld.undeclared }
            let undeclared = held.filter { !addresses.contains($0.address) }
            lastHeld = (held, undeclared)
            return undeclared
        }
    }

    /// The nodes `inventory` records (in `regions` when given) that `nodes` does not declare: the ones last found while
    /// the inventory's revision, the regions and the column are the same. A service's inventory holds every node it
    /// ever changed (10,000 at the large size): it is read again only when a node was recorded or forgotten since.
    func undeclared(in inventory: any NodeInventory, regions: Set<String>?, of nodes: [Resource<NodeSpec>]) throws -> [NodeEndpoint] {
        // The revision first: nodes read after it are at least as new, so keeping them under it is never stale.
        let revision = try inventory.inventoryRevision()
        let kept: [NodeEndpoint]? = lock.withLock {
            refresh(nodes)
            guard let lastKnown, lastKnown.revision == revision, lastKnown.regions == regions else { return nil }
            return lastKnown.undeclared
        }
        if let kept { return kept }
        let known = try inventory.knownNodes(in: regions)
        return lock.withLock {
            refresh(nodes)
            let undeclared = known.filter { !addresses.contains($0.address) }
            lastKnown = (regions, revision, undeclared)
            return undeclared
        }
    }

    /// The endpoints of the nodes of `nodes` in `regions`, in column order.
    func endpoints(of nodes: [Resource<NodeSpec>], in regions: [String]) -> [NodeEndpoint] {
        lock.withLock {
            refresh(nodes)
            if let selected, selected.regions == regions { return selected.endpoints }
            let wanted = Set(regions)
            let endpoints = all.filter { wanted.contains($0.address.region ?? "") }
            selected = (regions, endpoints)
            return endpoints
        }
    }
}

/// What a long-running caller (the service, `IncrementalPlanner`) keeps from one plan to the next, so that a plan costs
/// what changed: the node source (its listing of simulated hosts and their watched generations), node drivers,
/// observations (while a node's generation is unchanged), decoded ring builders, and region plans (while a region's
/// inputs are unchanged).
public final class RunCaches: Sendable {
    /// The nodes of the state directory, listing simulated hosts again only when a region directory changed and
    /// reading generations again only for nodes whose files changed.
    public let nodes: LocalNodes
    public let drivers = DriverPool()
    /// The declared nodes' endpoints, while the model's column of nodes is the same array.
    public let declaredNodes = DeclaredNodes()
    /// Observations of unchanged nodes and decoded ring builders, of the `regions` regions planned most recently.
    public let observations: ObservationCache
    public let rings: RingStateCache
    /// The last plan of each of the `regions` regions planned most recently, under its `RegionKey`.
    public let memo: MemoryPlanMemo
    /// Each region's last `RegionKey` with what it was made from.
    public let regionKeys = RegionKeyCache()
    /// The drivers' nodes by region with their generations, while the drivers and generations are the last ones.
    public let nodeGroups = NodeGroups()
    /// Every region's node fingerprints merged, as the last plan's were.
    public let fingerprints = PlanFingerprints()
    /// What the last plans of at most 8 of the regions planned most recently decided (which compute nodes run the
    /// ruleset their inputs render, the networking, each instance's domain): a region planned again decides only what
    /// its changed inputs touch.
    public let regionMemo: RegionMemo
    /// The last plan's catalog, while the columns it is made from are the same arrays.
    public let catalogs = CatalogCache()
    /// The parts of the last regions' slices other than instances, while the columns they come from are the same arrays.
    public let slices = RegionSliceCache()
    /// Empty caches for the nodes of `stateDirectory` (production nodes reached as `environment` says), keeping the decoded state (observations, ring builders) of at
    /// most `regions` regions (every region when nil).
    public init(stateDirectory: String, regions: Int? = nil, environment: RunEnvironment = RunEnvironment()) {
        nodes = LocalNodes(stateDirectory: stateDirectory, watching: true, identity: environment.sshIdentity, socketSetting: environment.libvirtSocket)
        observations = ObservationCache(regions: regions)
        rings = RingStateCache(regions: regions)
        memo = MemoryPlanMemo(regions: regions)
        regionMemo = RegionMemo(regions: min(regions ?? 8, 8))
    }
}

/// The nodes of a plan's drivers by region, each region's with their generations in the same order: what region keys
/// and batches are made from. Kept by a long-running planner: while the drivers and generations are the very
/// dictionaries of the last plan (`DriverPool` and `GenerationWatch` give them again while no node changed), the groups
/// are the last ones, the same arrays, and a region key compares its node inputs by storage, not node by node.
public final class NodeGroups: @unchecked Sendable {
    public struct Group: Sendable {
        public var nodes: [Address] = []
        /// Each node's generation, in the order of `nodes`.
        public var generations: [String?] = []
    }

    private let lock = NSLock()
    private var last: (drivers: [Address: any NodeDriver], generations: [Address: String?], groups: [String: Group], version: Int)?
    private var made = 0

    /// Nothing kept yet.
    public init() {}

    /// The groups of `drivers`: the last ones when `drivers` and `generations` are the last call's dictionaries. With
    /// them a number, the same exactly while the groups are the same arrays (`RegionKeyCache.Context.nodes`).
    public func groups(of drivers: [Address: any NodeDriver], generations: [Address: String?]) -> (groups: [String: Group], version: Int) {
        if let last = lock.withLock({ last }), last.drivers.sharesStorage(with: drivers), last.generations.sharesStorage(with: generations) {
            return (last.groups, last.version)
        }
        let groups = Self.make(drivers, generations: generations)
        return lock.withLock {
            made += 1
            last = (drivers, generations, groups, made)
            return (groups, made)
        }
    }

    /// The groups of `drivers`, made from them.
    public static func make(_ drivers: [Address: any NodeDriver], generations: [Address: String?]) -> [String: Group] {
        var groups: [String: Group] = [:]
        for address in drivers.keys {
            groups[address.region ?? "", default: Group()].nodes.append(address)
            groups[address.region ?? "", default: Group()].generations.append(generations[address] ?? nil)
        }
        return groups
    }
}

/// The fingerprints of every region's nodes in one dictionary (`Plan.observed`), kept from one plan to the next: a
/// region whose plan comes under the same `RegionKey` as last time has the same fingerprints (the key covers its nodes'
/// generations), so only the regions planned under another key, or with none, are taken out and put in again.
public final class PlanFingerprints: @unchecked Sendable {
    private let lock = NSLock()
    private var merged: [Address: String] = [:]
    /// Each region's key when its fingerprints were put in (nil: planned without one), and the fingerprints it put in.
    private var regions: [String: (key: String?, fingerprints: [Address: String])] = [:]

    /// Nothing kept yet.
    public init() {}

    /// The fingerprints of `plans` merged. A node is named by its own region's plan only (its address holds the region).
    func combine(_ plans: [RegionPlan], keys: [String: String]) -> [Address: String] {
        lock.withLock {
            let now = Set(plans.map(\.region))
            for (region, kept) in regions where !now.contains(region) {
                for node in kept.fingerprints.keys { merged[node] = nil }
                regions[region] = nil
            }
            for plan in plans {
                let key = keys[plan.region]
                if let kept = regions[plan.region], let key, kept.key == key { continue }
                // Planned again (a document changed) over the same nodes as they were: the same fingerprints, nothing to
                // take out and put in (which would also copy the whole dictionary while the last plan holds it).
                if let kept = regions[plan.region], kept.fingerprints.sharesStorage(with: plan.fingerprints) || kept.fingerprints == plan.fingerprints {
                    regions[plan.region]?.key = key
                    continue
                }
                for node in regions[plan.region]?.fingerprints.keys ?? [:].keys { merged[node] = nil }
                merged.merge(plan.fingerprints) { first, _ in first }
                regions[plan.region] = (key, plan.fingerprints)
            }
            return merged
        }
    }
}

/// The catalog a plan reads (`Catalog`: flavors, images, Filters, security groups, keypairs, each tenant's billing and
/// quotas), kept while the model's columns it is made from are the very arrays of the last plan's model (a push that
/// edits only regional documents leaves them alone), so a plan does not index every tenant's documents again.
public final class CatalogCache: @unchecked Sendable {
    private let lock = NSLock()
    private var kept: (columns: HeldColumns, catalog: Catalog)?

    /// Nothing kept yet.
    public init() {}

    /// The catalog of `model`: the kept one while its columns are the kept ones.
    public func catalog(of model: DesiredModel) -> Catalog {
        let columns = HeldColumns(model.tenants, model.priceLists, model.flavors, model.images, model.filters, model.securityGroups, model.keypairs)
        if let kept = lock.withLock({ kept }), kept.columns.same(as: columns) { return kept.catalog }
        let catalog = Catalog(model)
        lock.withLock { kept = (columns, catalog) }
        return catalog
    }
}

