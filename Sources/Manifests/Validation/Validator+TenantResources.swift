extension Validator {
    /// A volume's snapshots: names used once, `keep` only with a schedule, and a region whose object store keeps them.
    mutating func checkSnapshots(of volume: Resource<VolumeSpec>) {
        let snapshots = volume.spec.snapshots?.value ?? []
        guard !snapshots.isEmpty || volume.spec.from != nil else { return }
        let region = volume.region!
        if index.regions[region]?.spec.objectStore == nil, let regionResource = index.regions[region] {
            let location = volume.spec.snapshots?.location ?? volume.spec.from!.location
            error("volume '\(volume.name)' uses snapshots, but region '\(region)' has no object store to keep them", at: location,
                  hint: "give region '\(region)' (\(place(regionResource.meta.location))) an objectStore: {proxy: http://…:8080, user: account:user}")
        }
        var seen: [String: SourceLocation] = [:]
        for snapshot in snapshots {
            if let first = seen[snapshot.name.value] {
                error("volume '\(volume.name)' lists snapshot '\(snapshot.name.value)' twice", at: snapshot.name.location, hint: "first listed at \(place(first)); give each snapshot its own name")
            }
            seen[snapshot.name.value] = snapshot.name.location
            if let keep = snapshot.keep, snapshot.every == nil {
                error("snapshot '\(snapshot.name.value)' of volume '\(volume.name)' has 'keep' but no 'every'", at: keep.location,
                      hint: "'keep' limits scheduled snapshots: add every: 24h, or remove 'keep' (a one-off snapshot is kept until it leaves the list)")
            }
        }
        if let from = volume.spec.from, from.value.volume.value == volume.name {
            error("volume '\(volume.name)' is restored from a snapshot of itself", at: from.value.volume.location,
                  hint: "restore into a new volume: give it another name")
        }
    }

    /// Volumes and floating IPs attach to instances of their own tenant and region; floating addresses come from
    /// the floating range and are not used twice; a guest device is used once per instance.
    mutating func checkTenantResources() {
        var devices: [ModelIndex.TenantRegionalKey: [String: SourceLocation]] = [:]
        for volume in model.volumes { checkSnapshots(of: volume) }
        for volume in model.volumes {
            guard let name = volume.spec.instance else { continue }
            let key = ModelIndex.TenantRegionalKey(region: volume.region!, tenant: volume.tenant!, name: name.value)
            guard index.attachedInstances.contains(key) else {
                reportMissingInstance(name, of: "volume '\(volume.name)'", region: volume.region!, tenant: volume.tenant!)
                continue
            }
            if let device = volume.spec.device {
                let flavor = index.attachedFlavors[key].flatMap { index.flavors[$0] }
                if device.value == "vda" {
                    error("volume '\(volume.name)' is attached to instance '\(name.value)' as vda, which is the instance's root disk", at: device.location,
                          hint: "pick a device after the flavor's own disks (\(flavor.map { Self.firstFreeDevice($0) } ?? "vdc"))")
                } else if device.value == "vdb", let flavor, (flavor.spec.ephemeral?.value.bytes ?? 0) > 0 {
                    error("volume '\(volume.name)' is attached to instance '\(name.value)' as vdb, which flavor '\(flavor.name)' gives its ephemeral disk",
                          at: device.location, hint: "pick \(Self.firstFreeDevice(flavor)) or later")
                }
                if let first = devices[key]?[device.value] {
                    error("volume '\(volume.name)' is attached to instance '\(name.value)' as \(device.value), which another volume already uses",
                          at: device.location, hint: "first used at \(place(first)); pick another device name")
                }
                devices[key, default: [:]][device.value] = device.location
            }
        }
        var addresses: [IPv4Address: Resource<FloatingIPSpec>] = [:]
        var attached: [ModelIndex.TenantRegionalKey: Resource<FloatingIPSpec>] = [:]
        var perNetwork: [ModelIndex.RegionalKey: [Resource<FloatingIPSpec>]] = [:]
        defer { checkFloatingCapacity(perNetwork) }
        for floating in model.floatingIPs {
            let region = floating.region!
            let what = "floating IP '\(floating.name)'"
            if let name = floating.spec.instance {
                let key = ModelIndex.TenantRegionalKey(region: region, tenant: floating.tenant!, name: name.value)
                if !index.attachedInstances.contains(key) {
                    reportMissingInstance(name, of: what, region: region, tenant: floating.tenant!)
                } else if let other = attached[key] {
                    error("\(what) points at instance '\(name.value)', which floating IP '\(other.name)' already points at", at: name.location)
                } else {
                    attached[key] = floating
                }
            }
            let networks = index.networksByRegion[region] ?? []
            let network: Resource<NetworkSpec>?
            if let name = floating.spec.network {
                network = index.networks[.init(region: region, name: name.value)]
                if network == nil {
                    undeclared(name.value, "\(what) uses network '\(name.value)', which region '\(region)' does not have", at: name.location,
                          hint: Self.suggestion(for: name.value, among: networks.map(\.name), noun: "network"))
                }
            } else {
                let withRange = networks.filter { $0.spec.floatingRange != nil }
                network = withRange.count == 1 ? withRange[0] : nil
                if withRange.count != 1, index.regions[region] != nil {
                    error("\(what) names no network and region '\(region)' has \(withRange.count) networks with a floating range",
                          at: floating.meta.name.location, hint: "add 'network: <name>' to its spec")
                }
            }
            if let network { perNetwork[.init(region: region, name: network.name), default: []].append(floating) }
            guard let address = floating.spec.address else { continue }
            if let range = network?.spec.floatingRange, !range.value.contains(address.value) {
                error("address \(address.value) of \(what) is outside the floating range \(range.value) of network '\(network!.name)'", at: address.location)
            } else if let network, network.spec.floatingRange == nil {
                error("\(what) uses network '\(network.name)', which has no floating range", at: address.location)
            }
            if let other = addresses[address.value] {
                error("address \(address.value) of \(what) is already used by floating IP '\(other.name)' of tenant '\(other.tenant!)'", at: address.location,
                      hint: "first used at \(place(other.spec.address!.location))")
            } else {
                addresses[address.value] = floating
            }
        }
    }

    /// A network's floating range holds all the floating IPs that use it (its network and broadcast addresses aside).
    private mutating func checkFloatingCapacity(_ perNetwork: [ModelIndex.RegionalKey: [Resource<FloatingIPSpec>]]) {
        for (key, floating) in perNetwork.sorted(by: { ($0.key.region, $0.key.name) < ($1.key.region, $1.key.name) }) {
            guard let network = index.networks[key], let range = network.spec.floatingRange else { continue }
            let usable = range.value.size > 2 ? range.value.size - 2 : 0
            guard UInt64(floating.count) > usable else { continue }
            error("network '\(network.name)' of region '\(key.region)' has \(floating.count) floating IPs but its floating range \(range.value) holds \(usable)",
                  at: range.location, hint: "widen the floatingRange, or release floating IPs")
        }
    }

    /// The first guest device a flavor's own disks leave free (`vdb`, or `vdc` after an ephemeral disk).
    static func firstFreeDevice(_ flavor: Resource<FlavorSpec>) -> String {
        (flavor.spec.ephemeral?.value.bytes ?? 0) > 0 ? "vdc" : "vdb"
    }

    mutating func reportMissingInstance(_ name: Located<String>, of what: String, region: String, tenant: String) {
        if let owner = index.instanceOwners[.init(region: region, name: name.value)]?.first(where: { $0 != tenant }) {
            error("\(what) is attached to instance '\(name.value)' of tenant '\(owner)'; tenants may only use their own", at: name.location,
                  hint: "attach it to an instance of tenant '\(tenant)'")
        } else {
            undeclared(name.value, "\(what) is attached to instance '\(name.value)', which tenant '\(tenant)' does not have in region '\(region)'", at: name.location,
                  hint: "declare the instance, or fix the name")
        }
    }

    /// Filter rules name declared tenants and reach only protected networks.
    mutating func checkFilters() {
        for filter in model.filters {
            for rule in filter.spec.allow?.value ?? [] {
                for tenant in rule.tenants.value where tenant.value != "*" && index.tenants[tenant.value] == nil {
                    undeclared(tenant.value, "filter '\(filter.name)' allows tenant '\(tenant.value)', which is not declared", at: tenant.location,
                          hint: Self.suggestion(for: tenant.value, among: index.tenants.keys, noun: "tenant"))
                }
                for destination in rule.to.value where !filter.spec.protect.value.contains(where: { $0.value.contains(destination.value) }) {
                    warning("filter '\(filter.name)' allows \(destination.value), which no 'protect' network covers, so the rule has no effect",
                            at: destination.location, hint: "rules open holes in the protected networks; list the network under 'protect'")
                }
                if rule.proto?.value == .icmp, let ports = rule.ports {
                    error("filter '\(filter.name)' gives ports for ICMP, which has none", at: ports.location)
                }
            }
        }
    }
}
