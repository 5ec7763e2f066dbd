extension Validator {
    /// Rings select existing storage devices and ask for no more replicas than there are zones to spread them over.
    mutating func checkRings() {
        var ringTypes: [String: [RingType: Resource<RingSpec>]] = [:]
        for ring in model.rings {
            let region = ring.region!
            let spec = ring.spec
            guard let type = spec.type?.value ?? RingType(rawValue: ring.name) else {
                error("ring '\(ring.name)' has no 'type' and its name is not account, container or object", at: ring.meta.name.location,
                      hint: "add 'type: object' (or account, container) to its spec")
                continue
            }
            if let other = ringTypes[region]?[type] {
                error("region '\(region)' has two \(type.rawValue) rings: '\(other.name)' and '\(ring.name)'", at: ring.meta.name.location,
                      hint: "a region has one ring of each type")
            }
            ringTypes[region, default: [:]][type] = ring
            guard index.regions[region] != nil else { continue }
            let storageNodes = (index.nodesByRegion[region] ?? []).filter { $0.spec.has(.storage) }
            var selected: [Resource<NodeSpec>] = []
            if let names = spec.devices?.nodes {
                for name in names.value {
                    guard let node = index.nodes[.init(region: region, name: name.value)] else {
                        error("ring '\(ring.name)' selects node '\(name.value)', which is not declared in region '\(region)'", at: name.location,
                              hint: Self.suggestion(for: name.value, among: storageNodes.map(\.name), noun: "storage node"))
                        continue
                    }
                    guard node.spec.has(.storage) else {
                        error("ring '\(ring.name)' selects node '\(name.value)', which does not have role 'storage'", at: name.location,
                              hint: "add 'storage' to the node's roles, or leave it out of the ring")
                        continue
                    }
                    selected.append(node)
                }
            } else {
                selected = storageNodes
            }
            var devices = 0
            var zones: Set<String> = []
            for node in selected {
                let disks = node.spec.disks?.value ?? []
                let chosen = spec.devices?.disks.map { names in disks.filter { disk in names.value.contains { $0.value == disk.name.value } } } ?? disks
                if !chosen.isEmpty { zones.insert(node.spec.zone?.value ?? node.name) }
                devices += chosen.count
            }
            if let diskNames = spec.devices?.disks {
                for name in diskNames.value where !selected.contains(where: { ($0.spec.disks?.value ?? []).contains { $0.name.value == name.value } }) {
                    error("ring '\(ring.name)' selects disk '\(name.value)', which no selected node has", at: name.location)
                }
            }
            if devices == 0 {
                error("ring '\(ring.name)' has no devices: region '\(region)' has no storage node with disks selected by it", at: ring.meta.name.location,
                      hint: "give nodes the 'storage' role and disks, or fix the ring's device selection")
                continue
            }
            if devices > Int(UInt16.max) {
                error("ring '\(ring.name)' selects \(devices) devices; Swift's ring format holds at most \(UInt16.max)", at: ring.meta.name.location,
                      hint: "split storage into more regions or select fewer disks")
            }
            let replicas = spec.replicas.value
            let wholeReplicas = Int((replicas.units + 999_999) / 1_000_000)
            if wholeReplicas > zones.count {
                error("ring '\(ring.name)' asks for \(replicas.formatted()) replicas but its devices span only \(zones.count) \(zones.count == 1 ? "zone" : "zones")",
                      at: spec.replicas.location,
                      hint: "replicas of one partition must sit in different zones: lower 'replicas' to \(zones.count) or add storage nodes in other zones")
            }
            let partitions = UInt64(1) << UInt64(spec.partPower.value)
            if UInt64(devices) > partitions * UInt64(wholeReplicas) {
                warning("ring '\(ring.name)' has \(devices) devices but only \(partitions) partitions × \(wholeReplicas) replicas; some devices will hold nothing",
                        at: spec.partPower.location, hint: "raise 'partPower'")
            }
        }
    }
}
