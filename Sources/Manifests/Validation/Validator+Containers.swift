extension Validator {
    /// Containers live in a region whose object store StackLab can act on as reseller admin; the tenants they share
    /// with exist and are others; referrers narrow a public container (on a private one they would open it).
    mutating func checkContainers() {
        for container in model.containers {
            let region = container.region!, tenant = container.tenant!
            let what = "container '\(container.name)'"
            if let regionResource = index.regions[region], regionResource.spec.objectStore?.value.reseller == nil {
                error("\(what) needs region '\(region)''s object store, with a reseller credential to act on the tenant's account", at: container.meta.location,
                      hint: "give region '\(region)' (\(place(regionResource.meta.location))) objectStore: {proxy: …, user: …, reseller: {user: account:admin}}")
            }
            for (field, names) in [("readers", container.spec.readers), ("writers", container.spec.writers)] {
                for name in names?.value ?? [] {
                    if name.value == tenant {
                        error("\(what) lists its own tenant '\(tenant)' in '\(field)'", at: name.location, hint: "the tenant owns it: remove '\(tenant)'")
                    } else if index.tenants[name.value] == nil {
                        error("\(what) shares with tenant '\(name.value)', which is not declared", at: name.location,
                              hint: Self.suggestion(for: name.value, among: index.tenants.keys, noun: "tenant"))
                    }
                }
            }
            if let referrers = container.spec.allowReferrers, !referrers.value.isEmpty, container.spec.effectivePublic == .none {
                error("\(what) allows referrers but is not public", at: referrers.location,
                      hint: "referrers narrow who may read a public container: add public: read (or list), or remove allowReferrers")
            }
        }
    }
}
