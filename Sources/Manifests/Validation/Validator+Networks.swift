extension Validator {
    /// Gateways sit inside their fixed range; fixed and floating ranges do not overlap each other (in a region),
    /// floating ranges (public addresses) do not overlap anywhere in the cloud, and bridges are unique per region.
    mutating func checkNetworks() {
        var floating: [(network: Resource<NetworkSpec>, range: Located<IPv4Network>)] = []
        for (region, networks) in index.networksByRegion.sorted(by: { $0.key < $1.key }) {
            var bridges: [String: Resource<NetworkSpec>] = [:]
            for (position, network) in networks.enumerated() {
                let spec = network.spec
                let fixed = spec.fixedRange.value
                if !fixed.contains(spec.gateway.value) {
                    error("gateway \(spec.gateway.value) of network '\(network.name)' is outside its fixed range \(fixed)", at: spec.gateway.location,
                          hint: "pick an address inside \(fixed), usually its first host (\(IPv4Address(fixed.first.value &+ 1)))")
                } else if spec.gateway.value == fixed.first || spec.gateway.value == fixed.last {
                    error("gateway \(spec.gateway.value) of network '\(network.name)' is the network or broadcast address of \(fixed)",
                          at: spec.gateway.location, hint: "use a host address such as \(IPv4Address(fixed.first.value &+ 1))")
                }
                if fixed.prefix > 30 {
                    error("fixed range \(fixed) of network '\(network.name)' holds no room for instances", at: spec.fixedRange.location,
                          hint: "use a /30 or larger network")
                }
                if let range = spec.floatingRange {
                    if range.value.overlaps(fixed) {
                        error("floating range \(range.value) of network '\(network.name)' overlaps its fixed range \(fixed)", at: range.location,
                              hint: "floating (public) and fixed (private) addresses must be disjoint")
                    }
                    floating.append((network, range))
                }
                if let other = bridges[spec.bridge.value] {
                    error("network '\(network.name)' uses bridge '\(spec.bridge.value)', already used by network '\(other.name)' in region '\(region)'",
                          at: spec.bridge.location, hint: "each network of a region needs its own bridge")
                }
                bridges[spec.bridge.value] = network
                for other in networks[..<position] {
                    if other.spec.fixedRange.value.overlaps(fixed) {
                        error("fixed range \(fixed) of network '\(network.name)' overlaps \(other.spec.fixedRange.value) of network '\(other.name)' in region '\(region)'",
                              at: spec.fixedRange.location, hint: "declared at \(place(other.spec.fixedRange.location))")
                    }
                    if let otherFloating = other.spec.floatingRange, otherFloating.value.overlaps(fixed) {
                        error("fixed range \(fixed) of network '\(network.name)' overlaps the floating range \(otherFloating.value) of network '\(other.name)'",
                              at: spec.fixedRange.location)
                    }
                    if let range = spec.floatingRange, range.value.overlaps(other.spec.fixedRange.value) {
                        error("floating range \(range.value) of network '\(network.name)' overlaps the fixed range \(other.spec.fixedRange.value) of network '\(other.name)'",
                              at: range.location)
                    }
                }
            }
        }
        for (position, entry) in floating.enumerated() {
            for other in floating[..<position] where other.range.value.overlaps(entry.range.value) {
                error("floating range \(entry.range.value) of network '\(entry.network.name)' in region '\(entry.network.region!)' overlaps \(other.range.value) of network '\(other.network.name)' in region '\(other.network.region!)'",
                      at: entry.range.location, hint: "public addresses must be unique across the cloud; declared at \(place(other.range.location))")
            }
        }
    }
}
