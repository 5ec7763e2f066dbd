extension Validator {
    /// Names are unique within their scope; regional and tenant resources name a declared region and tenant.
    mutating func checkIdentity() {
        var seen: [Address: SourceLocation] = [:]
        seen.reserveCapacity(model.instances.count + model.nodes.count + 1024)
        var found: [Diagnostic] = []
        model.forEachMeta { meta in
            let address = meta.address
            if let first = seen[address] {
                found.append(.error("duplicate \(meta.kind.addressName) '\(meta.name.value)'\(Self.scopeText(meta))", at: meta.name.location,
                                    hint: "first declared at \(place(first)); rename or remove one"))
            } else {
                seen[address] = meta.name.location
            }
            if let region = meta.region, meta.kind != .region, index.regions[region.value] == nil, !unreadableRegions.contains(region.value) {
                found.append(.error("\(meta.kind.addressName) '\(meta.name.value)' names region '\(region.value)', which is not declared", at: region.location,
                                    hint: Self.suggestion(for: region.value, among: index.regions.keys, noun: "region")))
            }
            if let tenant = meta.tenant, index.tenants[tenant.value] == nil {
                found.append(.error("\(meta.kind.addressName) '\(meta.name.value)' belongs to tenant '\(tenant.value)', which is not declared", at: tenant.location,
                                    hint: Self.suggestion(for: tenant.value, among: index.tenants.keys, noun: "tenant")))
            }
        }
        diagnostics += found
    }

    static func scopeText(_ meta: ObjectMeta) -> String {
        switch (meta.region?.value, meta.tenant?.value) {
        case (let region?, let tenant?): " in region '\(region)' of tenant '\(tenant)'"
        case (let region?, nil): " in region '\(region)'"
        case (nil, let tenant?): " of tenant '\(tenant)'"
        case (nil, nil): ""
        }
    }
}
