/// Lookups over a desired model, built once per validation.
struct ModelIndex {
    struct RegionalKey: Hashable {
        var region: String
        var name: String
    }

    struct TenantRegionalKey: Hashable {
        var region: String
        var tenant: String
        var name: String
    }

    var regions: [String: Resource<RegionSpec>] = [:]
    var flavors: [String: Resource<FlavorSpec>] = [:]
    var images: [String: Resource<ImageSpec>] = [:]
    var tenants: [String: Resource<TenantSpec>] = [:]
    var priceLists: [String: Resource<PriceListSpec>] = [:]
    var networks: [RegionalKey: Resource<NetworkSpec>] = [:]
    var nodes: [RegionalKey: Resource<NodeSpec>] = [:]
    var nodesByRegion: [String: [Resource<NodeSpec>]] = [:]
    /// What each region's nodes offer (before allocation ratios): made with the catalog, so kept with it.
    var offered: [String: Offered] = [:]
    var networksByRegion: [String: [Resource<NetworkSpec>]] = [:]
    var keypairs: [TenantKey: [Resource<KeypairSpec>]] = [:]
    var keypairOwners: [String: Set<String>] = [:]
    var securityGroups: [TenantKey: [Resource<SecurityGroupSpec>]] = [:]
    var securityGroupOwners: [String: Set<String>] = [:]
    /// The instances that volumes, floating IPs and load balancers attach to (only those: a cloud has far fewer of them).
    var attachedInstances: Set<TenantRegionalKey> = []
    /// Their flavors (whose disks take the first device names).
    var attachedFlavors: [TenantRegionalKey: String] = [:]
    /// For "belongs to another tenant" messages: attached instance name in a region → the tenants that have one.
    var instanceOwners: [RegionalKey: [String]] = [:]

    /// Everything but what instances are attached to: built from every column but instances.
    init(catalogOf model: DesiredModel) {
        for r in model.regions { regions[r.name] = regions[r.name] ?? r }
        for f in model.flavors { flavors[f.name] = flavors[f.name] ?? f }
        for i in model.images { images[i.name] = images[i.name] ?? i }
        for t in model.tenants { tenants[t.name] = tenants[t.name] ?? t }
        for p in model.priceLists { priceLists[p.name] = priceLists[p.name] ?? p }
        for n in model.networks {
            let key = RegionalKey(region: n.region!, name: n.name)
            if networks[key] == nil {
                networks[key] = n
                networksByRegion[n.region!, default: []].append(n)
            }
        }
        for n in model.nodes {
            let key = RegionalKey(region: n.region!, name: n.name)
            if nodes[key] == nil {
                nodes[key] = n
                nodesByRegion[n.region!, default: []].append(n)
            }
        }
        for (region, members) in nodesByRegion { offered[region] = Offered(members) }
        for k in model.keypairs {
            keypairs[TenantKey(tenant: k.tenant!, name: k.name), default: []].append(k)
            keypairOwners[k.name, default: []].insert(k.tenant!)
        }
        for g in model.securityGroups {
            securityGroups[TenantKey(tenant: g.tenant!, name: g.name), default: []].append(g)
            securityGroupOwners[g.name, default: []].insert(g.tenant!)
        }
    }

    /// What a region's nodes offer: its compute nodes' CPUs, memory and instance storage, and its volume nodes' disks.
    struct Offered {
        var computeNodes = 0
        var cpus = 0
        var memory: UInt64 = 0
        var instanceStorage: UInt64 = 0
        var volumeStorage: UInt64 = 0

        init() {}

        init(_ nodes: [Resource<NodeSpec>]) {
            for node in nodes {
                if node.spec.has(.compute) {
                    computeNodes += 1
                    cpus = cpus.saturatingAdd(node.spec.cpus.value)
                    memory = memory.saturatingAdd(node.spec.memory.value.bytes)
                    instanceStorage = instanceStorage.saturatingAdd(node.spec.instanceStorageBytes)
                }
                if node.spec.has(.volume) {
                    for disk in node.spec.disks?.value ?? [] { volumeStorage = volumeStorage.saturatingAdd(disk.size.value.bytes) }
                }
            }
        }
    }

    /// The instances volumes, floating IPs, load balancers and alarms attach to, their flavors and owners.
    mutating func attach(_ model: DesiredModel) {
        attachedInstances = []
        attachedFlavors = [:]
        instanceOwners = [:]
        var referenced: Set<RegionalKey> = []
        for v in model.volumes { if let name = v.spec.instance { referenced.insert(RegionalKey(region: v.region!, name: name.value)) } }
        for f in model.floatingIPs { if let name = f.spec.instance { referenced.insert(RegionalKey(region: f.region!, name: name.value)) } }
        for b in model.loadBalancers { for name in b.spec.members.value { referenced.insert(RegionalKey(region: b.region!, name: name.value)) } }
        for a in model.alarms { for name in a.spec.instances.value { referenced.insert(RegionalKey(region: a.region!, name: name.value)) } }
        if !referenced.isEmpty {
            // Instances read in place, and by name first: `for i in model.instances` would copy (retain) every one.
            let names = Set(referenced.map(\.name))
            for index in model.instances.indices where names.contains(model.instances[index].meta.name.value) {
                let i = model.instances[index]
                let key = RegionalKey(region: i.region!, name: i.name)
                guard referenced.contains(key) else { continue }
                attachedInstances.insert(TenantRegionalKey(region: i.region!, tenant: i.tenant!, name: i.name))
                attachedFlavors[TenantRegionalKey(region: i.region!, tenant: i.tenant!, name: i.name)] = i.spec.flavor.value
                instanceOwners[key, default: []].append(i.tenant!)
            }
        }
    }

    /// The keypair `name` of `tenant` usable in `region` (tenant-wide or in that region).
    func keypair(_ name: String, tenant: String, region: String?) -> Resource<KeypairSpec>? {
        keypairs[TenantKey(tenant: tenant, name: name)]?.first { $0.region == nil || region == nil || $0.region == region }
    }

    /// The security group `name` of `tenant` usable in `region`.
    func securityGroup(_ name: String, tenant: String, region: String?) -> Resource<SecurityGroupSpec>? {
        securityGroups[TenantKey(tenant: tenant, name: name)]?.first { $0.region == nil || region == nil || $0.region == region }
    }
}
