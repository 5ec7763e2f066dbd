extension Validator {
    /// Every region has at least three servers, one controller and one compute node.
    mutating func checkRegions() {
        for region in model.regions {
            let nodes = index.nodesByRegion[region.name] ?? []
            if nodes.count < Self.minimumNodesPerRegion {
                error("region '\(region.name)' has \(nodes.count) \(nodes.count == 1 ? "node" : "nodes"); StackLab needs at least \(Self.minimumNodesPerRegion)",
                      at: region.meta.name.location, hint: "declare more Node documents under regions/\(region.name)/")
            }
            if !nodes.isEmpty {
                if !nodes.contains(where: { $0.spec.has(.controller) }) {
                    error("region '\(region.name)' has no node with role 'controller'", at: region.meta.name.location,
                          hint: "give one node the controller role: it runs the API, scheduler and Swift proxy")
                }
                if !nodes.contains(where: { $0.spec.has(.compute) }) {
                    warning("region '\(region.name)' has no node with role 'compute', so it can run no instances", at: region.meta.name.location)
                }
            }
            if let share = region.spec.maxDeleteShare, !(0...1_000_000).contains(share.value.units) {
                error("'maxDeleteShare' must be between 0 and 1", at: share.location)
            }
        }
    }

    /// Node addresses are unique in the cloud; storage and volume roles need disks; roles are not repeated.
    mutating func checkNodes() {
        var addresses: [IPv4Address: Resource<NodeSpec>] = [:]
        for node in model.nodes {
            let spec = node.spec
            if let other = addresses[spec.address.value] {
                error("node '\(node.name)' has address \(spec.address.value), already used by node '\(other.name)'", at: spec.address.location,
                      hint: "first used at \(place(other.spec.address.location))")
            } else {
                addresses[spec.address.value] = node
            }
            var roles: Set<Role> = []
            for role in spec.roles.value {
                if !roles.insert(role.value).inserted {
                    warning("node '\(node.name)' lists role '\(role.value.rawValue)' twice", at: role.location)
                }
                if role.value == .storage || role.value == .volume, spec.disks?.value.isEmpty ?? true {
                    error("node '\(node.name)' has no disks but has role '\(role.value.rawValue)'", at: role.location,
                          hint: "add its disks under 'disks:', or remove the '\(role.value.rawValue)' role")
                }
            }
            var diskNames: [String: SourceLocation] = [:]
            for disk in spec.disks?.value ?? [] {
                if let first = diskNames[disk.name.value] {
                    error("node '\(node.name)' declares disk '\(disk.name.value)' twice", at: disk.name.location, hint: "first declared at \(place(first))")
                }
                diskNames[disk.name.value] = disk.name.location
            }
            if spec.memory.value.bytes < 1 << 30 {
                error("node '\(node.name)' has \(spec.memory.value) of memory; a server needs at least 1GiB", at: spec.memory.location,
                      hint: "memory takes a unit: write e.g. 256GiB")
            }
        }
    }
}
