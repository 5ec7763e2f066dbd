import Manifests

/// Public domains and tenant load balancers: one HAProxy configuration for the region, rendered for each of its
/// `loadbalancer` nodes (`haproxy/<region>/<node>`). Ports of the region's range are sticky: the ones the nodes' files
/// record are kept, and a freed port waits the region's `reuseAfter` before it is handed out to anyone else.
extension RegionPlanner {
    /// What the region's load-balancer nodes serve: the services (ports allocated), the ports held, and each
    /// instance's public domain (`name:port`).
    struct ProxyPlan {
        var services: [ProxyConfig.Service]
        var held: [ProxyConfig.HeldPort]
        var domains: [Address: String]
    }

    /// Plans what the region's load-balancer nodes serve from the instances' places (`members`: every instance of the
    /// region with its fixed IP and groups; `membership`: the members of each security group); nil when the region has
    /// no public domains or no load-balancer node.
    mutating func proxyPlan(members: [FirewallRules.Member], membership: [TenantKey: [FirewallRules.Member]]) -> ProxyPlan? {
        guard let domains = spec?.publicDomains?.value, nodes.contains(where: { $0.spec.has(.loadbalancer) }) else { return nil }
        let installed = installedProxies.sorted { $0.key < $1.key }.map(\.value)
        let memberOf = Dictionary(members.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        let instancePort = domains.effectiveInstancePort

        // What wants a port, in address order: instances whose groups open the public-domain port, then tcp listeners.
        var services: [ProxyConfig.Service] = []
        var wanting: [PortOwner] = []
        for instance in slice.instances.sorted(byAddress: \.address) {
            guard let member = memberOf[instance.address] else { continue }
            guard let sources = Self.sources(opening: instancePort, to: member, groups: catalog.securityGroups, membership: membership) else { continue }
            let owner = PortOwner(address: instance.address)
            wanting.append(owner)
            services.append(.init(name: "pd:\(PublicDomain.label(for: instance.address))", owner: owner, mode: .tcp, port: 0,
                                  host: PublicDomain.name(for: instance.address, domains: domains),
                                  servers: [.init(name: instance.name, ip: member.ip, port: instancePort)], balance: .roundrobin, check: nil,
                                  cookie: false, sources: sources.contains { $0.prefix == 0 } ? nil : sources))
        }
        for balancer in slice.loadBalancers.sorted(by: { $0.address < $1.address }) {
            let spec = balancer.spec
            let check = spec.healthCheck?.value
            let probe = ProxyConfig.Check(path: check?.effectiveType == .http ? check?.path?.value ?? "/" : nil, expect: check?.expect?.value ?? 200,
                                          intervalMilliseconds: check?.effectiveInterval ?? 2000, rise: check?.effectiveRise ?? 2, fall: check?.effectiveFall ?? 3)
            let memberAddresses = spec.members.value.map { Address(kind: .instance, region: region, tenant: balancer.tenant, name: $0.value) }
            for listener in spec.listeners.value {
                let servers = memberAddresses.compactMap { address in memberOf[address].map { ProxyConfig.Server(name: address.name, ip: $0.ip, port: listener.port.value) } }
                let http = listener.proto.value == .http
                let owner = PortOwner(address: balancer.address, listener: http ? nil : listener.port.value)
                if !http { wanting.append(owner) }
                services.append(.init(name: "lb:\(balancer.tenant ?? ""):\(balancer.name):\(http ? "http" : "tcp\(listener.port.value)")", owner: owner,
                                      mode: http ? .http : .tcp, port: http ? ProxyConfig.httpPort : 0,
                                      host: PublicDomain.name(forBalancer: balancer.address, domains: domains),
                                      servers: servers, balance: spec.balance?.value ?? .roundrobin, check: probe,
                                      cookie: http && spec.stickiness?.value == .cookie, sources: nil))
            }
        }
        let (ports, held) = allocatePorts(wanting, installed: installed, domains: domains)
        services = services.compactMap { service in
            guard service.mode == .tcp else { return service }
            guard let port = ports[service.owner] else { return nil }
            var service = service
            service.port = port
            return service
        }
        var named: [Address: String] = [:]
        for service in services where service.owner.address.kind == .instance { named[service.owner.address] = "\(service.host):\(service.port)" }
        return ProxyPlan(services: services, held: held, domains: named)
    }

    /// Plans every load-balancer node's configuration (none: HAProxy leaves every node that has it).
    mutating func planProxies(_ plan: ProxyPlan?) {
        guard let plan else {
            removeProxies(keeping: [])
            return
        }
        let balancerNodes = nodes.filter { $0.spec.has(.loadbalancer) }
        for node in balancerNodes {
            let address = nodeAddress(node.name)
            guard let seen = observed[address] else { continue }
            let config = ProxyConfig(node: address, runDirectory: (node.spec.fileRoot?.value ?? "") + ProxyConfig.runDirectory, services: plan.services, held: plan.held)
            planProxy(config, on: seen)
        }
        removeProxies(keeping: Set(balancerNodes.map { nodeAddress($0.name) }))
    }

    /// The sources a security group rule admits to `port` on `member`: nil when no group opens it. A rule with neither
    /// `cidr` nor `group` admits anyone (0.0.0.0/0); a `group` rule admits its members' fixed IPs.
    static func sources(opening port: Int, to member: FirewallRules.Member, groups: [TenantKey: Resource<SecurityGroupSpec>],
                        membership: [TenantKey: [FirewallRules.Member]]) -> [IPv4Network]? {
        guard let tenant = member.address.tenant else { return nil }
        var sources: [IPv4Network] = []
        var opened = false
        for name in member.groups {
            guard let group = groups[TenantKey(tenant: tenant, name: name)] else { continue }
            for rule in group.spec.rules?.value ?? [] where (rule.direction?.value ?? .ingress) == .ingress {
                let proto = rule.proto?.value ?? .tcp
                guard proto == .tcp || proto == .any else { continue }
                if let ports = rule.ports?.value, !(Int(ports.lower)...Int(ports.upper)).contains(port) { continue }
                opened = true
                if let cidr = rule.cidr?.value {
                    sources.append(cidr)
                } else if let other = rule.group?.value {
                    sources += (membership[TenantKey(tenant: tenant, name: other)] ?? []).map { IPv4Network(address: $0.ip, prefix: 32) }
                } else {
                    return [IPv4Network(address: IPv4Address(0), prefix: 0)]
                }
            }
        }
        guard opened else { return nil }
        let unique = Array(Set(sources)).sorted { ($0.address.value, $0.prefix) < ($1.address.value, $1.prefix) }
        return unique.isEmpty ? nil : unique
    }

    /// Sticky ports: an owner keeps the port a node's file records for it (or the one held for it, if it came back
    /// within the wait); the others take the lowest port neither in use nor held. A port whose owner left is held from
    /// this hour; a hold ends once `reuseAfter` has passed. Ports outside the range are given up.
    private mutating func allocatePorts(_ wanting: [PortOwner], installed: [ProxyConfig.Installed],
                                        domains: PublicDomains) -> (ports: [PortOwner: Int], held: [ProxyConfig.HeldPort]) {
        let range = domains.ports.value
        let wait = Int32(clamping: domains.effectiveReuseAfterHours)
        var had: [PortOwner: Int] = [:]
        var holds: [Int: ProxyConfig.HeldPort] = [:]
        for file in installed {
            for (owner, port) in file.ports where had[owner] == nil { had[owner] = port }
            for hold in file.held where holds[hold.port].map({ hold.hour < $0.hour }) ?? true { holds[hold.port] = hold }
        }
        let wanted = Set(wanting)
        var used: [Int: PortOwner] = [:]
        var ports: [PortOwner: Int] = [:]
        func inRange(_ port: Int) -> Bool { port >= Int(range.lower) && port <= Int(range.upper) }
        for owner in wanting {
            let previous = had[owner] ?? holds.values.first { $0.owner == owner }?.port
            if let port = previous, inRange(port), used[port] == nil, holds[port].map({ $0.owner == owner }) ?? true {
                used[port] = owner
                ports[owner] = port
                holds[port] = nil
            }
        }
        for (owner, port) in had where !wanted.contains(owner) && inRange(port) && used[port] == nil && holds[port] == nil {
            holds[port] = .init(port: port, owner: owner, hour: hour)
        }
        for (port, hold) in holds where hour >= hold.hour &+ wait || !inRange(port) || used[port] != nil { holds[port] = nil }
        if !holds.isEmpty { scheduled = true }  // a hold ends with the hour: the plan changes then
        var next = Int(range.lower)
        for owner in wanting where ports[owner] == nil {
            while next <= Int(range.upper), used[next] != nil || holds[next] != nil { next += 1 }
            guard next <= Int(range.upper) else {
                errors.append(.init(address: owner.address, message: "region '\(region)' has no free public-domain port left in \(range) for \(owner): widen the region's publicDomains.ports, or wait for held ports (\(holds.count) freed in the last \(wait) h) to be released"))
                continue
            }
            used[next] = owner
            ports[owner] = next
        }
        return (ports, Array(holds.values))
    }

    /// A change installing `config` when the node's file differs from it (or was edited by hand, or its HAProxy is
    /// not running).
    private mutating func planProxy(_ config: ProxyConfig, on seen: ObservedNode) {
        let address = Address(kind: .haproxy, region: region, name: seen.address.name)
        let text = config.text
        guard seen.proxy != text || seen.proxyDrift != nil else {
            unchanged += 1
            return
        }
        var fields = seen.proxy == nil
            ? [Change.FieldChange(field: "services", old: "", new: "\(config.services.count)")] : config.diff(from: seen.proxy)
        if let drift = seen.proxyDrift { fields.insert(.init(field: "haproxy", old: drift, new: "as rendered, running"), at: 0) }
        let reason: Change.Reason = seen.proxy == nil ? .new : seen.proxyDrift != nil ? .drifted : .specChanged
        changes.append(Change(address: address, target: target(seen.address), action: seen.proxy == nil ? .create : .update, reason: reason,
                              fields: fields, operation: .loadProxy(config)))
    }

    /// Stops HAProxy and removes its configuration on nodes that no longer serve the region's load balancers.
    private mutating func removeProxies(keeping: Set<Address>) {
        for address in observedOrder where !keeping.contains(address) && observed[address]!.proxy != nil {
            let node = observed[address]!
            let reason: Change.Reason = spec == nil ? .regionRemoved : nodes.contains { nodeAddress($0.name) == node.address } ? .removed : .nodeRemoved
            changes.append(Change(address: Address(kind: .haproxy, region: region, name: node.address.name), target: target(node.address), action: .delete,
                                  reason: reason, operation: .loadProxy(ProxyConfig(node: node.address, runDirectory: ProxyConfig.runDirectory, services: [], held: []))))
        }
    }
}
