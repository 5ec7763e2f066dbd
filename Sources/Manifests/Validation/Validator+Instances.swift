/// What one region's instances contribute to validation: their own findings (identity, references, fixed IPs)
/// and the demand and per-tenant usage that the capacity and quota rules add up. A function of the region's
/// instance documents (and where they are) and of everything that is not an instance, so it can be kept.
struct InstanceFindings: Sendable {
    struct Usage: Sendable {
        var instances = 0
        var vcpus = 0
        var ram: UInt64 = 0
    }

    var diagnostics: [Diagnostic] = []
    /// Demand on the region (instances with a declared flavor).
    var vcpus = 0
    var ram: UInt64 = 0
    /// Root plus ephemeral disks (saturating: a sum past 16 EiB fits nowhere anyway).
    var disk: UInt64 = 0
    var instances = 0
    /// Usage by tenant.
    var usage: [String: Usage] = [:]

    /// Counts an instance of `tenant` with `flavor` (nil: not declared) in the demand and usage, or with `removing` takes
    /// it away again (exact while no sum saturated: `countsExactly`).
    mutating func count(tenant: String, flavor: FlavorSpec?, removing: Bool = false) {
        var used = usage[tenant] ?? .init()
        if removing {
            used.instances -= 1
            if let flavor {
                vcpus -= flavor.vcpus.value
                ram -= flavor.ram.value.bytes
                disk -= flavor.diskDemand
                instances -= 1
                used.vcpus -= flavor.vcpus.value
                used.ram -= flavor.ram.value.bytes
            }
        } else {
            used.instances += 1
            if let flavor {
                vcpus = vcpus.saturatingAdd(flavor.vcpus.value)
                ram = ram.saturatingAdd(flavor.ram.value.bytes)
                disk = disk.saturatingAdd(flavor.diskDemand)
                instances += 1
                used.vcpus = used.vcpus.saturatingAdd(flavor.vcpus.value)
                used.ram = used.ram.saturatingAdd(flavor.ram.value.bytes)
            }
        }
        usage[tenant] = used
    }

    /// Whether every sum is far from saturating, so an instance counted can be taken away again exactly.
    var countsExactly: Bool {
        vcpus < Int.max / 2 && ram < UInt64.max / 2 && disk < UInt64.max / 2
    }
}

extension Validator {
    /// The findings of the instances at `positions` (indices into `model.instances`, all in one region, in
    /// declaration order): names unique in the region, region and tenant declared, a declared flavor, image,
    /// network of their region, keypair and security groups of their own tenant, and fixed IPs in the fixed
    /// range (not the floating range), not used twice.
    func instanceFindings(at positions: [Int]) -> InstanceFindings {
        var validator = self
        validator.diagnostics = []
        var findings = InstanceFindings()
        var seen: [Address: SourceLocation] = [:]
        seen.reserveCapacity(positions.count)
        var fixedIPs: [ModelIndex.RegionalKey: [IPv4Address: Int]] = [:]  // → index in model.instances
        // The zones each region's compute nodes are in (a node without a zone is its own zone).
        var computeZones: [String: Set<String>] = [:]
        // Fields are read in place (`model.instances[position].meta`): copying whole resources was a fifth of
        // validation at 100,000 instances.
        for position in positions {
            validator.checkIdentity(of: model.instances[position].meta, seen: &seen)
            validator.checkReferences(of: position, computeZones: &computeZones, fixedIPs: &fixedIPs)
            findings.count(tenant: model.instances[position].meta.tenant!.value,
                           flavor: index.flavors[model.instances[position].spec.flavor.value]?.spec)
        }
        validator.checkAddressCapacity(of: positions)
        findings.diagnostics = validator.diagnostics
        return findings
    }

    /// The positions of the instances this load replaced in the last load's model, by region, when each kept its region
    /// (nil when the model was merged anew, or an instance moved to another region).
    func changedByRegion(cache: ValidationCache) -> [String: [Int]]? {
        guard let ranges = cache.changedInstances, cache.lastMoved != nil else { return nil }
        var byRegion: [String: [Int]] = [:]
        var replaced = cache.replacedInstances.makeIterator()
        for position in ranges.joined() {
            guard let old = replaced.next() else { return nil }
            let region = model.instances[position].meta.region!.value
            guard old.meta.region?.value == region else { return nil }
            byRegion[region, default: []].append(position)
        }
        return replaced.next() == nil ? byRegion : nil
    }

    /// `region`'s findings made from the last load's, when only the instances at `changed` (ascending) were replaced
    /// and the last load's findings were clean: each replaced instance kept its name, tenant, network and fixed IP, so
    /// no name or address is taken twice and no network holds more instances than before, and its own findings are
    /// those of the region's whole check. Nil when that cannot be shown.
    func splicedFindings(region: String, changed: [Int], context: UInt64, cache: ValidationCache) -> InstanceFindings? {
        guard var findings = cache.previous(region: region, context: context), findings.diagnostics.isEmpty,
              findings.countsExactly, let ranges = cache.changedInstances else { return nil }
        // The replaced instances of this region, as the last load had them (in `changed`'s order).
        var old: [Int: Resource<InstanceSpec>] = [:]
        for (position, instance) in zip(ranges.joined(), cache.replacedInstances) where model.instances[position].meta.region!.value == region {
            old[position] = instance
        }
        for position in changed {
            guard let was = old[position] else { return nil }
            let now = model.instances[position]
            guard was.meta.name.value == now.meta.name.value, was.meta.tenant?.value == now.meta.tenant?.value,
                  was.spec.network.value == now.spec.network.value, was.spec.fixedIP?.value == now.spec.fixedIP?.value else { return nil }
        }
        for position in changed {
            let was = old[position]!
            findings.count(tenant: was.meta.tenant!.value, flavor: index.flavors[was.spec.flavor.value]?.spec, removing: true)
        }
        let own = instanceFindings(at: changed)
        findings.diagnostics = own.diagnostics
        findings.vcpus = findings.vcpus.saturatingAdd(own.vcpus)
        findings.ram = findings.ram.saturatingAdd(own.ram)
        findings.disk = findings.disk.saturatingAdd(own.disk)
        findings.instances += own.instances
        for (tenant, used) in own.usage {
            var total = findings.usage[tenant] ?? .init()
            total.instances += used.instances
            total.vcpus = total.vcpus.saturatingAdd(used.vcpus)
            total.ram = total.ram.saturatingAdd(used.ram)
            findings.usage[tenant] = total
        }
        return findings
    }

    private mutating func checkReferences(of position: Int, computeZones: inout [String: Set<String>],
                                          fixedIPs: inout [ModelIndex.RegionalKey: [IPv4Address: Int]]) {
        let spec = model.instances[position].spec
        let region = model.instances[position].meta.region!.value
        let tenant = model.instances[position].meta.tenant!.value
        var what: String { "instance '\(model.instances[position].name)'" }
        let flavor = index.flavors[spec.flavor.value]
        if flavor == nil {
            undeclared(spec.flavor.value, "\(what) uses flavor '\(spec.flavor.value)', which is not declared", at: spec.flavor.location,
                  hint: Self.suggestion(for: spec.flavor.value, among: index.flavors.keys, noun: "flavor"))
        }
        if let image = index.images[spec.image.value] {
            if let flavor, let minDisk = image.spec.minDisk, minDisk.value > flavor.spec.disk.value {
                error("\(what) boots image '\(image.name)', which needs a \(minDisk.value) root disk, but flavor '\(flavor.name)' gives \(flavor.spec.disk.value)",
                      at: spec.image.location, hint: "choose a larger flavor")
            }
        } else {
            undeclared(spec.image.value, "\(what) uses image '\(spec.image.value)', which is not declared", at: spec.image.location,
                  hint: Self.suggestion(for: spec.image.value, among: index.images.keys, noun: "image"))
        }
        let network = index.networks[.init(region: region, name: spec.network.value)]
        if network == nil, index.regions[region] != nil {
            undeclared(spec.network.value, "\(what) uses network '\(spec.network.value)', which region '\(region)' does not have", at: spec.network.location,
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
        if let zone = spec.zone {
            if computeZones[region] == nil {
                computeZones[region] = Set((index.nodesByRegion[region] ?? []).filter { $0.spec.has(.compute) }.map { $0.spec.zone?.value ?? $0.name })
            }
            if computeZones[region]?.contains(zone.value) != true {
                error("\(what) asks for zone '\(zone.value)', where region '\(region)' has no compute node", at: zone.location,
                      hint: Self.suggestion(for: zone.value, among: computeZones[region] ?? [], noun: "zone"))
            }
        }
        if let ip = spec.fixedIP, let network {
            checkFixedIP(ip, of: position, in: network, taken: &fixedIPs)
        }
    }

    /// Every network of the region has an address for each of its instances: its fixed range's host addresses less the
    /// gateway and DNS servers in it and one address for each compute node of the region (see
    /// `NetworkSpec.instanceCapacity`, which the planner's pool follows).
    private mutating func checkAddressCapacity(of positions: [Int]) {
        var counts: [String: Int] = [:]
        for position in positions { counts[model.instances[position].spec.network.value, default: 0] += 1 }
        guard let region = positions.first.map({ model.instances[$0].meta.region!.value }) else { return }
        let computeNodes = (index.nodesByRegion[region] ?? []).filter { $0.spec.has(.compute) }.count
        for (name, count) in counts.sorted(by: { $0.key < $1.key }) {
            guard let network = index.networks[.init(region: region, name: name)] else { continue }
            let range = network.spec.fixedRange.value
            let capacity = network.spec.instanceCapacity(computeNodes: computeNodes)
            if count > capacity {
                let hosts = Int(range.last.value - range.first.value) - 1
                let reserved = network.spec.reservedAddresses.count
                error("network '\(name)' of region '\(region)' has \(count) instances but its fixed range \(range) holds only \(capacity) addresses for them "
                      + "(\(max(0, hosts)) host addresses, less \(reserved) for the gateway and DNS servers and \(computeNodes) for the region's compute nodes, "
                      + "each its instances' gateway on the network)",
                      at: network.spec.fixedRange.location, hint: "widen 'fixedRange' or move instances to another network")
            }
        }
    }

    private mutating func checkFixedIP(_ ip: Located<IPv4Address>, of position: Int, in network: Resource<NetworkSpec>,
                                       taken: inout [ModelIndex.RegionalKey: [IPv4Address: Int]]) {
        var what: String { "instance '\(model.instances[position].name)'" }
        let fixed = network.spec.fixedRange.value
        if let floating = network.spec.floatingRange, floating.value.contains(ip.value) {
            error("fixed IP \(ip.value) of \(what) lies in the floating range \(floating.value) of network '\(network.name)'", at: ip.location,
                  hint: "floating addresses are public; a fixed IP comes from \(fixed)")
        } else if !fixed.contains(ip.value) {
            error("fixed IP \(ip.value) of \(what) is outside network '\(network.name)' (\(fixed))", at: ip.location,
                  hint: "pick an address inside \(fixed), or leave 'fixedIP' out to have one allocated")
        } else if ip.value == fixed.first || ip.value == fixed.last || ip.value == network.spec.gateway.value {
            error("fixed IP \(ip.value) of \(what) is the network, broadcast or gateway address of '\(network.name)'", at: ip.location)
        } else if network.spec.dns?.value.contains(where: { $0.value == ip.value }) == true {
            error("fixed IP \(ip.value) of \(what) is a DNS server of network '\(network.name)'", at: ip.location,
                  hint: "pick another address, or leave 'fixedIP' out to have one allocated")
        } else {
            let key = ModelIndex.RegionalKey(region: model.instances[position].meta.region!.value, name: network.name)
            if let other = taken[key]?[ip.value].map({ model.instances[$0] }) {
                error("fixed IP \(ip.value) of \(what) is already used by instance '\(other.name)' of tenant '\(other.tenant!)'", at: ip.location,
                      hint: "first used at \(place(other.spec.fixedIP!.location))")
            } else {
                taken[key, default: [:]][ip.value] = position
            }
        }
    }
}
