/// Every resource declared by a revision of the manifests repository, typed, with source locations.
public struct DesiredModel: Sendable {
    public var regions: [Resource<RegionSpec>] = []
    public var nodes: [Resource<NodeSpec>] = []
    public var networks: [Resource<NetworkSpec>] = []
    public var filters: [Resource<FilterSpec>] = []
    public var rings: [Resource<RingSpec>] = []
    public var flavors: [Resource<FlavorSpec>] = []
    public var images: [Resource<ImageSpec>] = []
    public var priceLists: [Resource<PriceListSpec>] = []
    public var tenants: [Resource<TenantSpec>] = []
    public var instances: [Resource<InstanceSpec>] = []
    public var volumes: [Resource<VolumeSpec>] = []
    public var floatingIPs: [Resource<FloatingIPSpec>] = []
    public var securityGroups: [Resource<SecurityGroupSpec>] = []
    public var keypairs: [Resource<KeypairSpec>] = []
    public var pipelines: [Resource<PipelineSpec>] = []

    /// An empty model.
    public init() {}

    /// The identity of every resource, in kind order then declaration order.
    public var metas: [ObjectMeta] {
        var all: [ObjectMeta] = []
        all.reserveCapacity(instances.count + nodes.count + volumes.count + 256)
        all += regions.map(\.meta)
        all += nodes.map(\.meta)
        all += networks.map(\.meta)
        all += filters.map(\.meta)
        all += rings.map(\.meta)
        all += flavors.map(\.meta)
        all += images.map(\.meta)
        all += priceLists.map(\.meta)
        all += tenants.map(\.meta)
        all += instances.map(\.meta)
        all += volumes.map(\.meta)
        all += floatingIPs.map(\.meta)
        all += securityGroups.map(\.meta)
        all += keypairs.map(\.meta)
        all += pipelines.map(\.meta)
        return all
    }

    /// Appends every resource of `other` (used to merge files parsed in parallel, in file order).
    public mutating func append(contentsOf other: DesiredModel) {
        regions += other.regions
        nodes += other.nodes
        networks += other.networks
        filters += other.filters
        rings += other.rings
        flavors += other.flavors
        images += other.images
        priceLists += other.priceLists
        tenants += other.tenants
        instances += other.instances
        volumes += other.volumes
        floatingIPs += other.floatingIPs
        securityGroups += other.securityGroups
        keypairs += other.keypairs
        pipelines += other.pipelines
    }
}
