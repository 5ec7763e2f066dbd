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

    /// A digest of every document the model was decoded from (each resource's `ObjectMeta.digest`, which covers its
    /// file path and text): equal digests mean the same manifests. A saved plan records it.
    public var digest: String {
        var hasher = StableHasher()
        forEachMeta { hasher.combine($0.digest) }
        return hasher.hex
    }

    /// Calls `body` with the identity of every resource (instances left out unless asked for), in kind order then
    /// declaration order (as `metas`).
    func forEachMeta(includingInstances: Bool = true, _ body: (ObjectMeta) -> Void) {
        func each<Spec>(_ resources: [Resource<Spec>]) {
            for index in resources.indices { body(resources[index].meta) }
        }
        each(regions); each(nodes); each(networks); each(filters); each(rings); each(flavors); each(images)
        each(priceLists); each(tenants)
        if includingInstances { each(instances) }
        each(volumes); each(floatingIPs); each(securityGroups); each(keypairs); each(pipelines)
    }

    /// Calls `body` with the identity of every resource, to change it.
    mutating func updateMetas(_ body: (inout ObjectMeta) -> Void) {
        func each<Spec>(_ resources: inout [Resource<Spec>]) {
            for index in resources.indices { body(&resources[index].meta) }
        }
        each(&regions); each(&nodes); each(&networks); each(&filters); each(&rings); each(&flavors); each(&images)
        each(&priceLists); each(&tenants); each(&instances); each(&volumes); each(&floatingIPs); each(&securityGroups)
        each(&keypairs); each(&pipelines)
    }

    /// Gives every resource of one file the digest of its document's source (`ObjectMeta.digest`): the file's path
    /// and its bytes from the line its document starts on to the line the next one starts on (the first from the
    /// top of the file, the last to its end). A document's value depends only on those (anchors do not cross
    /// documents), so an unchanged digest means an unchanged resource.
    mutating func stampDigests(path: String, bytes: [UInt8]) {
        var lines = Set<Int32>()
        updateMetas { lines.insert($0.location.line) }
        guard !lines.isEmpty else { return }
        let starts = lines.sorted()
        // Byte offset of each start line.
        var offsets = [Int](repeating: bytes.count, count: starts.count)
        var next = 0
        var line: Int32 = 1
        var index = 0
        while next < starts.count {
            if line == starts[next] {
                offsets[next] = index
                next += 1
                continue
            }
            guard let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            index = newline + 1
            line += 1
        }
        var digests: [Int32: UInt64] = [:]
        for (position, start) in starts.enumerated() {
            var hasher = StableHasher()
            hasher.combine(path)
            let from = position == 0 ? 0 : offsets[position]
            let to = position + 1 < starts.count ? offsets[position + 1] : bytes.count
            bytes.withUnsafeBufferPointer { hasher.combine(bytes: $0[from..<max(from, to)]) }
            digests[start] = hasher.value
        }
        updateMetas { $0.digest = digests[$0.location.line] ?? 0 }
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
