extension Validator {
    /// A list of the tenant's instances in `region` (a load balancer's members, an alarm's instances): each one the
    /// tenant's own and there, none listed twice, and the list not empty.
    mutating func checkInstances(_ names: Located<[Located<String>]>, of what: String, noun: String, region: String, tenant: String,
                                 none: (message: String, hint: String)) {
        var seen: [String: SourceLocation] = [:]
        for name in names.value {
            if let first = seen[name.value] {
                error("\(what) lists \(noun) '\(name.value)' twice", at: name.location, hint: "first listed at \(place(first))")
                continue
            }
            seen[name.value] = name.location
            if !index.attachedInstances.contains(.init(region: region, tenant: tenant, name: name.value)) {
                reportMissingInstance(name, of: what, region: region, tenant: tenant)
            }
        }
        if names.value.isEmpty { error(none.message, at: names.location, hint: none.hint) }
    }

    /// Load balancers and public domains: a region that has them has a `loadbalancer` node and `publicDomains`;
    /// members are the tenant's own instances in the same region; listeners, checks and stickiness agree; the tcp
    /// listeners fit the region's port range.
    mutating func checkLoadBalancers() {
        var tcpListeners: [String: Int] = [:]
        for balancer in model.loadBalancers {
            let region = balancer.region!, tenant = balancer.tenant!
            let what = "load balancer '\(balancer.name)'"
            if let regionResource = index.regions[region] {
                if regionResource.spec.publicDomains == nil {
                    error("\(what) is in region '\(region)', which has no public domains", at: balancer.meta.name.location,
                          hint: "give region '\(region)' (\(place(regionResource.meta.location))) publicDomains: {suffix: example.org, ports: 11000-11999}")
                }
                if !(index.nodesByRegion[region] ?? []).contains(where: { $0.spec.has(.loadbalancer) }) {
                    error("\(what) is in region '\(region)', which has no node with role 'loadbalancer' to run it", at: balancer.meta.name.location,
                          hint: "give a node of region '\(region)' the role loadbalancer")
                }
            }
            checkInstances(balancer.spec.members, of: what, noun: "member", region: region, tenant: tenant,
                           none: ("\(what) has no members", "list the instances it sends to"))
            let listeners = balancer.spec.listeners.value
            if listeners.isEmpty {
                error("\(what) has no listeners", at: balancer.spec.listeners.location, hint: "add e.g. {protocol: http, port: 80}")
            }
            let http = listeners.filter { $0.proto.value == .http }
            if http.count > 1 {
                error("\(what) has \(http.count) http listeners; it may have one (they all share the region's port 80 and its name)",
                      at: http[1].proto.location, hint: "declare another load balancer for a second http service")
            }
            tcpListeners[region, default: 0] += listeners.count - http.count
            if let stickiness = balancer.spec.stickiness, stickiness.value == .cookie, http.isEmpty {
                error("\(what) asks for cookie stickiness but has no http listener", at: stickiness.location,
                      hint: "cookies work on http listeners only; use balance: source for tcp")
            }
            if let check = balancer.spec.healthCheck?.value, check.effectiveType == .tcp {
                for field in [check.path?.location, check.expect?.location].compactMap({ $0 }) {
                    error("\(what) gives an http check's '\(field == check.path?.location ? "path" : "expect")' to a tcp check", at: field,
                          hint: "write type: http, or remove it")
                }
            }
        }
        for region in model.regions {
            guard let domains = region.spec.publicDomains else { continue }
            let nodes = index.nodesByRegion[region.name] ?? []
            if !nodes.isEmpty, !nodes.contains(where: { $0.spec.has(.loadbalancer) }) {
                warning("region '\(region.name)' has public domains but no node with role 'loadbalancer', so nothing serves them",
                        at: domains.location, hint: "give a node of region '\(region.name)' the role loadbalancer")
            }
            let range = domains.value.ports.value
            let size = Int(range.upper) - Int(range.lower) + 1
            if let used = tcpListeners[region.name], used > size {
                error("region '\(region.name)' has \(used) tcp listeners, more than its public-domain range \(range) holds (\(size) \(size == 1 ? "port" : "ports"))",
                      at: domains.value.ports.location, hint: "widen the range, or remove tcp listeners")
            }
        }
        for node in model.nodes where node.spec.has(.loadbalancer) {
            if let region = node.region, let resource = index.regions[region], resource.spec.publicDomains == nil {
                warning("node '\(node.name)' has role 'loadbalancer' but region '\(region)' has no publicDomains, so it serves nothing",
                        at: node.spec.roles.location, hint: "give region '\(region)' publicDomains: {suffix: example.org, ports: 11000-11999}")
            }
        }
    }
}
