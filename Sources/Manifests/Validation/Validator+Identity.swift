extension Validator {
    /// Names are unique within their scope; regional and tenant resources name a declared region and tenant.
    /// (Instances are checked region by region, in `instanceFindings`: their addresses include the region.)
    mutating func checkIdentity() {
        var seen: [Address: SourceLocation] = [:]
        seen.reserveCapacity(model.nodes.count + 1024)
        var validator = self
        validator.diagnostics = []
        model.forEachMeta(includingInstances: false) { meta in validator.checkIdentity(of: meta, seen: &seen) }
        diagnostics += validator.diagnostics
    }

    /// One resource's identity: not a duplicate of one in `seen`, and its region and tenant declared.
    mutating func checkIdentity(of meta: ObjectMeta, seen: inout [Address: SourceLocation]) {
        let address = meta.address
        if let first = seen[address] {
            error("duplicate \(meta.kind.addressName) '\(meta.name.value)'\(Self.scopeText(meta))", at: meta.name.location,
                  hint: "first declared at \(place(first)); rename or remove one")
        } else {
            seen[address] = meta.name.location
        }
        if let region = meta.region, meta.kind != .region, index.regions[region.value] == nil, !unreadableRegions.contains(region.value) {
            error("\(meta.kind.addressName) '\(meta.name.value)' names region '\(region.value)', which is not declared", at: region.location,
                  hint: Self.suggestion(for: region.value, among: index.regions.keys, noun: "region"))
        }
        if let tenant = meta.tenant, index.tenants[tenant.value] == nil {
            undeclared(tenant.value, "\(meta.kind.addressName) '\(meta.name.value)' belongs to tenant '\(tenant.value)', which is not declared", at: tenant.location,
                  hint: Self.suggestion(for: tenant.value, among: index.tenants.keys, noun: "tenant"))
        }
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
