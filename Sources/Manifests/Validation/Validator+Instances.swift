extension Validator {
    /// Instances name a declared flavor, image, network of their region, and keypair and security groups of their
    /// own tenant; fixed IPs sit in the fixed range (not the floating range) and are not used twice.
    mutating func checkInstances() {
        var fixedIPs: [ModelIndex.RegionalKey: [IPv4Address: Int]] = [:]  // → index in model.instances
        // The zones each region's compute nodes are in (a node without a zone is its own zone).
        var computeZones: [String: Set<String>] = [:]
        for (region, nodes) in index.nodesByRegion {
            computeZones[region] = Set(nodes.filter { $0.spec.has(.compute) }.map { $0.spec.zone?.value ?? $0.name })
        }
        for position in model.instances.indices {
            let instance = model.instances[position]
            let spec = instance.spec
            let region = instance.region!
            let tenant = instance.tenant!
            var what: String { "instance '\(instance.name)'" }
            let flavor = index.flavors[spec.flavor.value]
            if flavor == nil {
                error("\(what) uses flavor '\(spec.flavor.value)', which is not declared", at: spec.flavor.location,
                      hint: Self.suggestion(for: spec.flavor.value, among: index.flavors.keys, noun: "flavor"))
            }
            if let image = index.images[spec.image.value] {
                if let flavor, let minDisk = image.spec.minDisk, minDisk.value > flavor.spec.disk.value {
                    error("\(what) boots image '\(image.name)', which needs a \(minDisk.value) root disk, but flavor '\(flavor.name)' gives \(flavor.spec.disk.value)",
                          at: spec.image.location, hint: "choose a larger flavor")
                }
            } else {
                error("\(what) uses image '\(spec.image.value)', which is not declared", at: spec.image.location,
                      hint: Self.suggestion(for: spec.image.value, among: index.images.keys, noun: "image"))
            }
            let network = index.networks[.init(region: region, name: spec.network.value)]
            if network == nil, index.regions[region] != nil {
                error("\(what) uses network '\(spec.network.value)', which region '\(region)' does not have", at: spec.network.location,
                      hint: Self.suggestion(for: spec.network.value, among: (index.networksByRegion[region] ?? []).map(\.name), noun: "network"))
            }
            if let keypair = spec.keypair, index.keypair(keypair.value, tenant: tenant, region: region) == nil {
                reportForeign("keypair", keypair, tenant: tenant, owners: index.keypairOwners[keypair.value], what: what,
                              candidates: index.keypairs.keys.filter { $0.tenant == tenant }.map(\.name))
            }
            for group in spec.securityGroups?.value ?? [] where index.securityGroup(group.value, tenant: tenant, region: region) == nil {
                reportForeign("security group", group, tenant: tenant, owners: index.securityGroupOwners[group.value], what: what,
                              candidates: index.securityGroups.keys.filter { $0.tenant == tenant }.map(\.name))
            }
            if let pinned = spec.node {
                if let node = index.nodes[.init(region: region, name: pinned.value)] {
                    if !node.spec.has(.compute) {
                        error("\(what) is pinned to node '\(pinned.value)', which does not have role 'compute'", at: pinned.location)
                    }
                } else {
                    error("\(what) is pinned to node '\(pinned.value)', which region '\(region)' does not have", at: pinned.location,
                          hint: Self.suggestion(for: pinned.value, among: (index.nodesByRegion[region] ?? []).map(\.name), noun: "node"))
                }
            }
            if let zone = spec.zone, computeZones[region]?.contains(zone.value) != true {
                error("\(what) asks for zone '\(zone.value)', where region '\(region)' has no compute node", at: zone.location,
                      hint: Self.suggestion(for: zone.value, among: computeZones[region] ?? [], noun: "zone"))
            }
            if let ip = spec.fixedIP, let network {
                checkFixedIP(ip, of: position, in: network, taken: &fixedIPs)
            }
        }
    }

    private mutating func checkFixedIP(_ ip: Located<IPv4Address>, of position: Int, in network: Resource<NetworkSpec>,
                                       taken: inout [ModelIndex.RegionalKey: [IPv4Address: Int]]) {
        let instance = model.instances[position]
        var what: String { "instance '\(instance.name)'" }
        let fixed = network.spec.fixedRange.value
        if let floating = network.spec.floatingRange, floating.value.contains(ip.value) {
            error("fixed IP \(ip.value) of \(what) lies in the floating range \(floating.value) of network '\(network.name)'", at: ip.location,
                  hint: "floating addresses are public; a fixed IP comes from \(fixed)")
        } else if !fixed.contains(ip.value) {
            error("fixed IP \(ip.value) of \(what) is outside network '\(network.name)' (\(fixed))", at: ip.location,
                  hint: "pick an address inside \(fixed), or leave 'fixedIP' out to have one allocated")
        } else if ip.value == fixed.first || ip.value == fixed.last || ip.value == network.spec.gateway.value {
            error("fixed IP \(ip.value) of \(what) is the network, broadcast or gateway address of '\(network.name)'", at: ip.location)
        } else {
            let key = ModelIndex.RegionalKey(region: instance.region!, name: network.name)
            if let other = taken[key]?[ip.value].map({ model.instances[$0] }) {
                error("fixed IP \(ip.value) of \(what) is already used by instance '\(other.name)' of tenant '\(other.tenant!)'", at: ip.location,
                      hint: "first used at \(place(other.spec.fixedIP!.location))")
            } else {
                taken[key, default: [:]][ip.value] = position
            }
        }
    }
}
