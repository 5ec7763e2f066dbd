extension Validator {
    /// Price lists price declared flavors (and every flavor has a price); tenants name declared price lists.
    mutating func checkCatalog() {
        for list in model.priceLists {
            var priced: [String: SourceLocation] = [:]
            for price in list.spec.flavors.value {
                if index.flavors[price.flavor.value] == nil {
                    undeclared(price.flavor.value, "price list '\(list.name)' prices flavor '\(price.flavor.value)', which is not declared", at: price.flavor.location,
                          hint: Self.suggestion(for: price.flavor.value, among: index.flavors.keys, noun: "flavor"))
                }
                priced[price.flavor.value] = price.flavor.location
            }
            for flavor in model.flavors where priced[flavor.name] == nil {
                warning("flavor '\(flavor.name)' has no price in price list '\(list.name)'; instances of it cannot be billed",
                        at: flavor.meta.name.location, hint: "add it under 'flavors:' in \(place(list.spec.flavors.location))")
            }
            var codes: [String: SourceLocation] = [:]
            for coupon in list.spec.coupons?.value ?? [] {
                if let first = codes[coupon.code.value] {
                    error("price list '\(list.name)' declares coupon '\(coupon.code.value)' twice", at: coupon.code.location, hint: "first at \(place(first))")
                }
                codes[coupon.code.value] = coupon.code.location
                for tenant in coupon.tenants?.value ?? [] where index.tenants[tenant.value] == nil {
                    undeclared(tenant.value, "coupon '\(coupon.code.value)' names tenant '\(tenant.value)', which is not declared", at: tenant.location,
                          hint: Self.suggestion(for: tenant.value, among: index.tenants.keys, noun: "tenant"))
                }
            }
        }
        for tenant in model.tenants {
            if let name = tenant.spec.priceList, index.priceLists[name.value] == nil {
                undeclared(name.value, "tenant '\(tenant.name)' is billed by price list '\(name.value)', which is not declared", at: name.location,
                      hint: Self.suggestion(for: name.value, among: index.priceLists.keys, noun: "price list"))
            } else if tenant.spec.priceList == nil, model.priceLists.count > 1 {
                error("tenant '\(tenant.name)' names no price list and there are \(model.priceLists.count) to choose from", at: tenant.meta.name.location,
                      hint: "add 'priceList: <name>' to its spec")
            }
        }
    }

    /// Keypairs and security groups limited to a region name a declared one (checked with identity);
    /// security group rules name groups of the same tenant.
    mutating func checkTenantScopes() {
        for group in model.securityGroups {
            for rule in group.spec.rules?.value ?? [] {
                if let direction = rule.direction, direction.value == .egress {
                    warning("security group '\(group.name)' has an egress rule, which StackLab does not enforce: groups are allow-only ingress rules (the SWS filter governs what instances reach)",
                            at: direction.location, hint: "remove the rule, or open the destination with a Filter")
                }
                guard let name = rule.group else { continue }
                if index.securityGroup(name.value, tenant: group.tenant!, region: group.region) == nil {
                    reportForeign("security group", name, tenant: group.tenant!, owners: index.securityGroupOwners[name.value],
                                  what: "security group '\(group.name)'", candidates: index.securityGroups.keys.filter { $0.tenant == group.tenant! }.map(\.name))
                }
            }
        }
    }

    /// Reports a reference to a tenant-owned object that does not exist in `tenant`, saying so when another tenant owns one.
    mutating func reportForeign(_ noun: String, _ name: Located<String>, tenant: String, owners: Set<String>?, what: String, candidates: [String]) {
        if let owner = owners?.filter({ $0 != tenant }).sorted().first {
            error("\(what) uses \(noun) '\(name.value)' of tenant '\(owner)'; tenants may only use their own", at: name.location,
                  hint: "declare a \(noun) '\(name.value)' for tenant '\(tenant)'")
        } else {
            error("\(what) uses \(noun) '\(name.value)', which tenant '\(tenant)' does not have", at: name.location,
                  hint: Self.suggestion(for: name.value, among: candidates, noun: noun))
        }
    }
}
