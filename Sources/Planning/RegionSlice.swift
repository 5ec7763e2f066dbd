import Foundation
import Manifests

/// The resources of one region that its plan reads, in declaration order.
public struct RegionSlice: Sendable {
    public var nodes: [Resource<NodeSpec>] = []
    public var instances: [Resource<InstanceSpec>] = []
    public var networks: [Resource<NetworkSpec>] = []
    public var rings: [Resource<RingSpec>] = []
    public var floatingIPs: [Resource<FloatingIPSpec>] = []
    public var volumes: [Resource<VolumeSpec>] = []
    public var loadBalancers: [Resource<LoadBalancerSpec>] = []
    public var containers: [Resource<ContainerSpec>] = []

    public init() {}
}

extension RegionSlice {
    /// `region`'s resources of `model` but its instances (a filter pass per kind, comparing names without hashing them).
    init(nonInstancesOf region: String, in model: DesiredModel) {
        func mine<Spec>(_ resource: Resource<Spec>) -> Bool { resource.meta.region?.value == region }
        nodes = model.nodes.filter(mine)
        networks = model.networks.filter(mine)
        rings = model.rings.filter(mine)
        floatingIPs = model.floatingIPs.filter(mine)
        volumes = model.volumes.filter(mine)
        loadBalancers = model.loadBalancers.filter(mine)
        containers = model.containers.filter(mine)
    }
}

/// The parts of regions' slices other than instances, kept by a long-running planner for the 8 regions sliced most
/// recently, with the columns they were filtered from: while those are the same arrays (a push to a tenant's file
/// leaves the columns of nodes, networks and rings as they were), so are the parts. Only parts of the current columns
/// are kept, so the cache holds one version of them.
public final class RegionSliceCache: @unchecked Sendable {
    private let lock = NSLock()
    /// The regions kept, the most recent last.
    private var kept: [(region: String, columns: HeldColumns, part: RegionSlice)] = []
    private static let regions = 8
    /// Parts given again, counted.
    private(set) var hits = 0
    /// The regions whose parts are kept, the most recent last.
    var regions: [String] { lock.withLock { kept.map(\.region) } }

    /// Nothing kept yet.
    public init() {}

    /// `region`'s slice of `model` without instances: the kept one while its columns are the kept ones.
    func parts(of region: String, in model: DesiredModel) -> RegionSlice {
        let columns = HeldColumns(model.nodes, model.networks, model.rings, model.floatingIPs, model.volumes, model.loadBalancers, model.containers)
        let hit: RegionSlice? = lock.withLock {
            // Parts cut from other columns are let go: kept, they would hold those columns' storage (an earlier
            // version of the cloud's nodes, say) for as long as their region is not sliced again.
            kept.removeAll { !$0.columns.same(as: columns) }
            guard let index = kept.firstIndex(where: { $0.region == region }) else { return nil }
            let entry = kept.remove(at: index)
            kept.append(entry)
            hits += 1
            return entry.part
        }
        if let hit { return hit }
        let part = RegionSlice(nonInstancesOf: region, in: model)
        lock.withLock {
            kept.append((region, columns, part))
            if kept.count > Self.regions { kept.removeFirst(kept.count - Self.regions) }
        }
        return part
    }
}

/// Every region's slice, built in one pass over the model.
public struct RegionSlices: Sendable {
    public private(set) var byRegion: [String: RegionSlice] = [:]

    /// The slices of every region, or of the regions `only` names (a run over one region of many copies only its own).
    /// `instancesByRegion`, when known (`LoadResult.instancesByRegion`, for this very model), spares one region's slice
    /// a pass over every instance.
    /// `cache` (a long-running planner's) gives one region's parts other than instances again while the columns they
    /// come from are the same arrays.
    public init(_ model: DesiredModel, only: Set<String>? = nil, instancesByRegion: [String: [Int]]? = nil, cache: RegionSliceCache? = nil) {
        if only?.isEmpty == true { return }
        if let only, only.count == 1, let target = only.first {
            // One region (a service's run): a filter pass per kind, comparing names without hashing them.
            func mine<Spec>(_ resource: Resource<Spec>) -> Bool { resource.meta.region?.value == target }
            var slice = cache?.parts(of: target, in: model) ?? RegionSlice(nonInstancesOf: target, in: model)
            // Each position checked in place (reading an element of the column through the array would copy it, every
            // field retained, 1,000 times at the large size), then each element copied once.
            let positions = instancesByRegion.map { $0[target] ?? [] }
            let valid = positions.map { positions in
                model.instances.withUnsafeBufferPointer { column in
                    positions.allSatisfy { $0 < column.count && column[$0].meta.region?.value == target }
                }
            } ?? false
            if let positions, valid {
                slice.instances = model.instances.withUnsafeBufferPointer { column in positions.map { column[$0] } }
            } else {
                slice.instances = model.instances.filter(mine)
            }
            byRegion[target] = slice
            return
        }
        func wanted(_ region: String?) -> String? { region.flatMap { only?.contains($0) ?? true ? $0 : nil } }
        for node in model.nodes { if let region = wanted(node.region) { byRegion[region, default: .init()].nodes.append(node) } }
        for instance in model.instances { if let region = wanted(instance.region) { byRegion[region, default: .init()].instances.append(instance) } }
        for network in model.networks { if let region = wanted(network.region) { byRegion[region, default: .init()].networks.append(network) } }
        for ring in model.rings { if let region = wanted(ring.region) { byRegion[region, default: .init()].rings.append(ring) } }
        for floating in model.floatingIPs { if let region = wanted(floating.region) { byRegion[region, default: .init()].floatingIPs.append(floating) } }
        for volume in model.volumes { if let region = wanted(volume.region) { byRegion[region, default: .init()].volumes.append(volume) } }
        for balancer in model.loadBalancers { if let region = wanted(balancer.region) { byRegion[region, default: .init()].loadBalancers.append(balancer) } }
        for container in model.containers { if let region = wanted(container.region) { byRegion[region, default: .init()].containers.append(container) } }
    }

    public subscript(region: String) -> RegionSlice { byRegion[region] ?? RegionSlice() }
}

extension Catalog {
    /// Folds the documents of lists into one stamp (see `stamp`): nil once a document has no digest.
    struct Stamp {
        private(set) var value: UInt64? = 0xcbf2_9ce4_8422_2325

        mutating func add<Spec>(_ list: [Resource<Spec>]) {
            fold(UInt64(list.count))
            for resource in list {
                guard resource.meta.digest != 0 else {
                    value = nil
                    return
                }
                let location = resource.meta.location
                fold(resource.meta.digest)
                fold(UInt64(UInt32(bitPattern: location.line)) << 32 | UInt64(UInt32(bitPattern: location.column)))
                fold(UInt64(location.file.index))
            }
        }

        private mutating func fold(_ next: UInt64) {
            value = value.map { ($0 ^ next) &* 0x100_0000_01b3 }
        }
    }

    /// Per tenant: the price list it is billed by (its own, or the only one there is), and whether it prepays.
    public static func billing(_ model: DesiredModel) -> [String: (priceList: String, prepaid: Bool)] {
        let onlyList = model.priceLists.count == 1 ? model.priceLists[0].name : ""
        var billing: [String: (priceList: String, prepaid: Bool)] = [:]
        for tenant in model.tenants {
            billing[tenant.name] = (tenant.spec.priceList?.value ?? onlyList, tenant.spec.billing?.value == .prepaid)
        }
        return billing
    }
}

/// The cloud-wide catalog a region's plan reads: flavors and images by name, the egress filters, security groups and
/// keypairs by tenant and name.
public struct Catalog: Sendable {
    public var flavors: [String: Resource<FlavorSpec>] = [:]
    public var images: [String: Resource<ImageSpec>] = [:]
    public var filters: [Resource<FilterSpec>] = []
    public var securityGroups: [TenantKey: Resource<SecurityGroupSpec>] = [:]
    public var keypairs: [TenantKey: Resource<KeypairSpec>] = [:]
    /// Per tenant: the price list it is billed by, and whether it prepays (instances then default to monthly).
    public var billing: [String: (priceList: String, prepaid: Bool)] = [:]
    /// Per tenant: the quotas of its account in each region's object store (nil: none).
    public var storageQuotas: [String: (bytes: Int64?, objects: Int64?)] = [:]
    /// The digests and places of every document the catalog is made from (tenants, price lists, flavors, images,
    /// Filters, security groups, keypairs), folded in model order: equal stamps, equal catalogs. Nil when a document has
    /// no digest (a model not loaded from files), so such catalogs are never taken for equal.
    public private(set) var stamp: UInt64?

    public init(_ model: DesiredModel) {
        var stamp = Stamp()
        stamp.add(model.tenants)
        stamp.add(model.priceLists)
        stamp.add(model.flavors)
        stamp.add(model.images)
        stamp.add(model.filters)
        stamp.add(model.securityGroups)
        stamp.add(model.keypairs)
        self.stamp = stamp.value
        billing = Self.billing(model)
        for tenant in model.tenants {
            storageQuotas[tenant.name] = (tenant.spec.quotas?.storage.map { Int64(clamping: $0.value.bytes) }, tenant.spec.quotas?.objects.map { Int64($0.value) })
        }
        flavors = Dictionary(model.flavors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        images = Dictionary(model.images.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        filters = model.filters
        securityGroups = Dictionary(model.securityGroups.compactMap { group in TenantKey(group.address).map { ($0, group) } }, uniquingKeysWith: { first, _ in first })
        keypairs = Dictionary(model.keypairs.compactMap { keypair in TenantKey(keypair.address).map { ($0, keypair) } }, uniquingKeysWith: { first, _ in first })
    }
}
