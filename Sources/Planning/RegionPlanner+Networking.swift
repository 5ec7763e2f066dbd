import Manifests
import Parallel

/// FlatDHCP multi-host: every compute node is the gateway and DHCP server of its own instances, and runs one
/// ruleset (SWS egress filter, security groups, floating-IP NAT). Each node gets a `dhcp/<region>/<node>` and a
/// `firewall/<region>/<node>` change when what it has differs from what it should have.
extension RegionPlanner {
    /// Gives every compute node its own address on each network, before instances take theirs: the one it has (sticky),
    /// else the highest free one. Instances' addresses and fixed IPs are already claimed in `pools`.
    mutating func claimGateways(in pools: inout [String: AddressPool]) {
        let compute = addressedNodes
        for network in slice.networks.sorted(by: { $0.name < $1.name }) {
            var chosen: [Address: IPv4Address] = [:]
            for node in compute {
                if let had = observed[node]?.dhcp?.networks.first(where: { $0.network == network.name })?.gateway,
                   pools[network.name]?.claim(had) == true {
                    chosen[node] = had
                }
            }
            for node in compute where chosen[node] == nil {
                if let ip = pools[network.name]?.allocateFromTop() {
                    chosen[node] = ip
                } else {
                    errors.append(.init(address: node, message: "network '\(network.name)' has no free address left for the node's gateway; widen its fixedRange"))
                }
            }
            gateways[network.name] = chosen
        }
    }

    /// The nodes with an address of their own on each network: every compute node (its instances' gateway), and every
    /// load-balancer node of a region with public domains (what HAProxy reaches the instances from).
    var addressedNodes: [Address] {
        nodes.filter { $0.spec.has(.compute) || ($0.spec.has(.loadbalancer) && spec?.publicDomains != nil) }.map { nodeAddress($0.name) }
    }

    /// An instance's place on its network, as DHCP and the firewall see it.
    struct Attachment {
        var address: Address
        var node: Address
        var ip: IPv4Address
        var mac: String
        var bridge: String
        var metadata: InstanceMetadata?
    }

    /// Everything a region's networking (DHCP, rulesets, load-balancer configurations) is planned from, as a planner with
    /// a memo compares it: the documents it reads (by digest and place: the region, its networks, floating IPs, load
    /// balancers and nodes, the Filters in force, each instance's security groups and keypair), each instance's place and
    /// the fields of its document it reads, the nodes' gateways, every observed node's fingerprint, and the hour (ports
    /// held for load balancers end with it).
    struct NetworkingInputs: Equatable, Sendable {
        var documents: [FirewallRules.SharedInputs.Document]
        var instances: [Link]
        var gateways: [String: [Address: IPv4Address]]
        var observed: [Address: String]
        var hour: Int32

        /// An instance as networking reads it, in declaration order.
        struct Link: Equatable, Sendable {
            var address: Address
            var name: String
            var node: Address?
            var ip: IPv4Address?
            var mac: String?
            var bridge: String?
            var network: String
            var groups: [String]
            var keypair: String?
            var zone: String?
            var userData: String?

            /// `instance` (at `address`) as networking reads it, attached at `place`.
            init(_ instance: Resource<InstanceSpec>, address: Address, place: Attachment?) {
                self.address = address
                name = instance.name
                node = place?.node
                ip = place?.ip
                mac = place?.mac
                bridge = place?.bridge
                network = instance.spec.network.value
                groups = instance.spec.securityGroups?.value.map(\.value) ?? []
                keypair = instance.spec.keypair?.value
                zone = instance.spec.zone?.value
                userData = instance.spec.userData?.value
            }
        }
    }

    /// What planning a region's networking added to its plan. The rulesets rendered are not kept: only a planner with no
    /// memo reads them (`Planner.rulesets`).
    struct NetworkingOutcome: Sendable {
        var changes: [Change]
        var errors: [Plan.Problem]
        var unchanged: Int
        var scheduled: Bool
        /// The compute nodes with a ruleset of ours (not rendered again when the outcome is kept).
        var firewalls: Int
    }

    /// A region's networking outcome with what it was planned from (kept by `RegionMemo`).
    struct NetworkingMemo: Sendable {
        var inputs: NetworkingInputs
        var outcome: NetworkingOutcome
    }

    /// Plans each compute node's DHCP configuration and ruleset (and the load-balancer nodes' HAProxy) from the domains
    /// wanted, and removes them from nodes that no longer serve instances; with a memo, adds the kept outcome instead when
    /// nothing it is planned from changed.
    mutating func planNetworking(desired: [Address: DesiredDomain], current: [Address: Placed]) {
        guard spec != nil else {
            removeNetworking(keeping: [])
            planProxies(nil)
            return
        }
        let networks = Dictionary(slice.networks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        // What is wanted; a declared instance that cannot be planned now (an error says why) keeps what it has.
        let addresses = slice.instances.map(\.address)  // made once, not in each loop below
        var attached: [Address: Attachment] = [:]
        attached.reserveCapacity(addresses.count)
        for (instance, address) in zip(slice.instances, addresses) {
            if let domain = desired[address] {
                attached[address] = Attachment(address: address, node: domain.node, ip: domain.interface.ip, mac: domain.interface.mac,
                                               bridge: domain.interface.bridge)
            } else if let have = current[address], let ip = have.domain.ip, let bridge = networks[instance.spec.network.value]?.spec.bridge.value {
                attached[address] = Attachment(address: address, node: have.node, ip: ip, mac: have.domain.mac ?? DesiredDomain.mac(for: address),
                                               bridge: bridge)
            }
        }
        // Made from the same inputs as the region's last plan: the same changes (a resize, an image or a power state
        // changes none of them).
        let inputs = networkingInputs(addresses: addresses, attached: attached)
        if let inputs, let kept = regionMemo?.networking(of: region, inputs: inputs) {
            changes += kept.changes
            errors += kept.errors
            unchanged += kept.unchanged
            scheduled = scheduled || kept.scheduled
            return
        }
        let before = (changes: changes.count, errors: errors.count, unchanged: unchanged, scheduled: scheduled)
        scheduled = false
        let firewalls = planNetworkingAfresh(addresses: addresses, attached: attached, networks: networks)
        if let inputs, let regionMemo {
            let outcome = NetworkingOutcome(changes: Array(changes[before.changes...]), errors: Array(errors[before.errors...]),
                                            unchanged: unchanged - before.unchanged, scheduled: scheduled, firewalls: firewalls)
            regionMemo.keep(outcome, of: region, inputs: inputs)
        }
        scheduled = scheduled || before.scheduled
    }

    /// What a region's networking is planned from besides the instances' places (`attached`), for a planner with a
    /// memo: nil when a document cannot be told by its digest, a node's observation has no fingerprint known, or domains
    /// are deleted or kept on orphan nodes (what the DHCP and ruleset removals wait for).
    private func networkingInputs(addresses: [Address], attached: [Address: Attachment]) -> NetworkingInputs? {
        guard regionMemo != nil, let regionDocument, orphans.isEmpty, !changes.contains(where: { $0.action == .delete && $0.address.kind == .instance }) else { return nil }
        var observedPrints: [Address: String] = [:]
        observedPrints.reserveCapacity(observed.count)
        for address in observedOrder {
            guard let print = fingerprints[address] else { return nil }
            observedPrints[address] = print
        }
        typealias Document = FirewallRules.SharedInputs.Document
        var documents: [Document] = [Document(Optional(regionDocument))]
        documents += slice.networks.map(Document.init) + slice.floatingIPs.map(Document.init) + slice.loadBalancers.map(Document.init)
        documents += nodes.map(Document.init) + catalog.filters.filter { $0.region == nil || $0.region == self.region }.map(Document.init)
        var links: [NetworkingInputs.Link] = []
        links.reserveCapacity(addresses.count)
        for (instance, address) in zip(slice.instances, addresses) {
            let tenant = instance.tenant ?? ""
            let named = instance.spec.securityGroups?.value.map(\.value) ?? []
            for name in named.isEmpty ? ["default"] : named { documents.append(Document(catalog.securityGroups[TenantKey(tenant: tenant, name: name)])) }
            if let keypair = instance.spec.keypair?.value { documents.append(Document(catalog.keypairs[TenantKey(tenant: tenant, name: keypair)])) }
            links.append(NetworkingInputs.Link(instance, address: address, place: attached[address]))
        }
        guard !documents.contains(.unknown) else { return nil }
        return NetworkingInputs(documents: documents, instances: links, gateways: gateways, observed: observedPrints, hour: hour)
    }

    /// Plans the networking of a region with a spec; returns how many compute nodes have a ruleset of ours.
    private mutating func planNetworkingAfresh(addresses: [Address], attached: [Address: Attachment], networks: [String: Resource<NetworkSpec>]) -> Int {
        guard let spec else { return 0 }
        var attached = attached
        let bindings = floatingBindings(attached: attached, networks: networks)
        let floatingOf = Dictionary(bindings.map { ($0.instance, $0.floating) }, uniquingKeysWith: { first, _ in first })
        let zones = Dictionary(nodes.map { (nodeAddress($0.name), $0.spec.zone?.value ?? $0.name) }, uniquingKeysWith: { first, _ in first })
        var members: [FirewallRules.Member] = []
        members.reserveCapacity(addresses.count)
        for (instance, address) in zip(slice.instances, addresses) {
            guard let domain = attached[address] else { continue }
            let tenant = instance.tenant ?? ""
            let named = instance.spec.securityGroups?.value.map(\.value) ?? []
            let groups = named.isEmpty ? (catalog.securityGroups[TenantKey(tenant: tenant, name: "default")] != nil ? ["default"] : []) : named
            members.append(.init(address: address, ip: domain.ip, mac: domain.mac, network: instance.spec.network.value, groups: groups))
        }
        let membership = FirewallRules.membership(of: members)
        let proxies = proxyPlan(members: members, membership: membership)
        for (instance, address) in zip(slice.instances, addresses) {
            guard let place = attached[address] else { continue }
            let tenant = instance.tenant ?? ""
            let keypair = instance.spec.keypair.flatMap { catalog.keypairs[TenantKey(tenant: tenant, name: $0.value)] }
            var metadata = InstanceMetadata(
                address: address, hostname: instance.name, localIPv4: place.ip,
                publicIPv4: floatingOf[address], availabilityZone: instance.spec.zone?.value ?? zones[place.node] ?? place.node.name,
                keyName: keypair?.name, publicKey: keypair?.spec.publicKey.value, userData: instance.spec.userData?.value)
            metadata.publicDomain = proxies?.domains[address]
            attached[address]?.metadata = metadata
        }
        let filters = catalog.filters.filter { $0.region == nil || $0.region == self.region }
        let compute = addressedNodes
        let balancers = Set(nodes.filter { !$0.spec.has(.compute) && $0.spec.has(.loadbalancer) }.map { nodeAddress($0.name) })
        // What the load-balancer nodes reach on each instance: the public-domain port and the listeners' member ports.
        var balancerPorts: [IPv4Address: Set<Int>] = [:]
        for service in proxies?.services ?? [] {
            for server in service.servers { balancerPorts[server.ip, default: []].insert(server.port) }
        }
        let onNode = Dictionary(grouping: attached.values, by: \.node)
        let memberOf = Dictionary(members.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        // Each node's DHCP configuration and firewall inputs first; the rulesets (most of the work) are then rendered in
        // parallel, and the changes made in node order, DHCP before firewall, as one node at a time would. A node the
        // firewall memo knows runs what these inputs render is not rendered again.
        var work: [(seen: ObservedNode, dhcp: NodeDHCP, rules: FirewallRules?, known: Bool)] = []
        var shared: FirewallRules.SharedInputs?
        var reusable: [Address: RegionMemo.Node] = [:], kept: [Address: RegionMemo.Node] = [:]
        // What every node's ruleset shares, made once.
        let byName = networks.sorted { $0.key < $1.key }
        let regionRanges = byName.map(\.value).flatMap { [$0.spec.fixedRange.value] + ($0.spec.floatingRange.map { [$0.value] } ?? []) }
        let networkLocations = networks.mapValues(\.meta.location)
        var balancerSources: [String: [IPv4Address]] = [:]
        for (name, byNode) in gateways {
            let sources = byNode.filter { balancers.contains($0.key) }.map(\.value).sorted { $0.value < $1.value }
            if !sources.isEmpty { balancerSources[name] = sources }
        }
        // Each network's part of a node's DHCP configuration, read from its document once (not once per node).
        let served = byName.map { name, network in
            (name: name, bridge: network.spec.bridge.value, range: network.spec.fixedRange.value, dns: network.spec.dns?.value.map(\.value) ?? [],
             gateways: gateways[name] ?? [:])
        }
        for node in compute {
            guard let seen = observed[node] else { continue }
            var nodeNetworks: [NodeNetwork] = []
            for network in served {
                guard let gateway = network.gateways[node] else { continue }
                let hosts = (onNode[node] ?? []).filter { $0.bridge == network.bridge && network.range.contains($0.ip) }
                    .map { NodeNetwork.Host(mac: $0.mac, ip: $0.ip, name: $0.address.name, metadata: $0.metadata) }
                nodeNetworks.append(NodeNetwork(network: network.name, bridge: network.bridge, gateway: gateway, range: network.range, dns: network.dns,
                                                hosts: hosts))
            }
            // A load-balancer node only takes its address on each network: it runs no instance and no ruleset of ours.
            guard !balancers.contains(node) else {
                work.append((seen, NodeDHCP(networks: nodeNetworks), nil, false))
                continue
            }
            let local = Set((onNode[node] ?? []).map(\.address))
            var located = FirewallRules(region: region, spec: spec, networks: nodeNetworks, members: membership,
                                        local: local.compactMap { memberOf[$0] }.sorted { $0.ip.value < $1.ip.value },
                                        filters: filters, groups: catalog.securityGroups,
                                        bindings: bindings.filter { local.contains($0.instance) })
            located.regionRanges = regionRanges
            located.regionLocation = regionLocation
            located.networkLocations = networkLocations
            located.balancerSources = balancerSources
            located.balancerPorts = balancerPorts
            var known = false
            if let regionMemo {
                if shared == nil {
                    shared = located.sharedInputs(region: regionDocument)
                    reusable = regionMemo.nodes(of: region, shared: shared!)
                }
                if let memo = reusable[node], let rules = seen.firewall?.rules, seen.firewallDrift == nil, rules.sharesStorage(with: memo.observed),
                   memo.inputs == located.nodeInputs {
                    known = true
                    kept[node] = memo
                }
            }
            work.append((seen, NodeDHCP(networks: nodeNetworks), located, known))
        }
        let rendered = ResultSlots<Ruleset?>(count: work.count)
        ParallelWork.forEach(count: work.count, workers: ParallelWork.coreCount) { [work] index in
            rendered[index] = .some(work[index].known ? nil : work[index].rules?.ruleset(for: work[index].seen.address))
        }
        for (item, ruleset) in zip(work, rendered.values) {
            let seen = item.seen, dhcp = item.dhcp
            if seen.dhcp != dhcp {
                let fields: [Change.FieldChange] = seen.dhcp == nil
                    ? dhcp.networks.flatMap { [.init(field: "\($0.network) gateway", old: "", new: "\($0.gateway)"), .init(field: "\($0.network) hosts", old: "", new: "\($0.hosts.count)")] }
                    : dhcp.diff(from: seen.dhcp)
                changes.append(Change(address: Address(kind: .dhcp, region: self.region, name: seen.address.name), target: target(seen.address),
                                      action: seen.dhcp == nil ? .create : .update, reason: seen.dhcp == nil ? .new : .specChanged,
                                      fields: fields, operation: .configureDHCP(dhcp)))
            } else {
                unchanged += 1
            }
            if item.known {
                unchanged += 1
                continue
            }
            guard let ruleset else { continue }
            rulesets.append(ruleset)
            // Found as wanted: the next plan need not render it while nothing it is made from changes.
            if planFirewall(ruleset, on: seen), regionMemo != nil, let rules = seen.firewall?.rules, let inputs = item.rules?.nodeInputs {
                kept[seen.address] = .init(inputs: inputs, observed: rules)
            }
        }
        if let regionMemo, let shared { regionMemo.keep(kept, of: region, shared: shared, spared: work.count { $0.known }) }
        removeNetworking(keeping: Set(compute))
        planProxies(proxies)
        return work.count { $0.rules != nil }
    }

    /// A change loading `ruleset` when the node's differs (or was changed by hand); true when it runs `ruleset`.
    private mutating func planFirewall(_ ruleset: Ruleset, on seen: ObservedNode) -> Bool {
        let address = Address(kind: .firewall, region: region, name: seen.address.name)
        let same = seen.firewall?.hasRules(of: ruleset) ?? false
        guard !same || seen.firewallDrift != nil else {
            unchanged += 1
            return true
        }
        // A new ruleset is summed up (`firewall show` prints it); a changed one is shown rule by rule.
        var fields = seen.firewall == nil ? [.init(field: "rules", old: "", new: "\(ruleset.rules.count)")] : ruleset.diff(from: seen.firewall)
        if let drift = seen.firewallDrift { fields.insert(.init(field: "live ruleset", old: drift, new: "as rendered"), at: 0) }
        let reason: Change.Reason = seen.firewall == nil ? .new : seen.firewallDrift != nil ? .drifted : .specChanged
        changes.append(Change(address: address, target: target(seen.address), action: seen.firewall == nil ? .create : .update, reason: reason,
                              fields: fields, operation: .loadFirewall(ruleset)))
        return false
    }

    /// Takes StackLab's DHCP configuration and ruleset off nodes that are no longer compute nodes of the region.
    private mutating func removeNetworking(keeping: Set<Address>) {
        let kept = Set(orphans.map(\.node))
        for address in observedOrder where !keeping.contains(address) && !kept.contains(address) {
            let node = observed[address]!
            let reason: Change.Reason = spec == nil ? .regionRemoved : nodes.contains { nodeAddress($0.name) == node.address } ? .removed : .nodeRemoved
            let domainDeletes = changes.filter { $0.action == .delete && $0.target.node == node.address && $0.address.kind == .instance }.map(\.id)
            if let dhcp = node.dhcp, !dhcp.networks.isEmpty {
                changes.append(Change(address: Address(kind: .dhcp, region: region, name: node.address.name), target: target(node.address), action: .delete,
                                      reason: reason, fields: NodeDHCP(networks: []).diff(from: dhcp), dependsOn: domainDeletes,
                                      operation: .configureDHCP(NodeDHCP(networks: []))))
            }
            if let firewall = node.firewall, !firewall.rules.isEmpty || node.firewallDrift != nil {
                changes.append(Change(address: Address(kind: .firewall, region: region, name: node.address.name), target: target(node.address),
                                      action: .delete, reason: reason, dependsOn: domainDeletes,
                                      operation: .loadFirewall(Ruleset(node: node.address, rules: []))))
            }
        }
    }

    /// Floating IPs bound to instances: the address a FloatingIP names, else the one it has (read from the DNAT rules
    /// installed on the region's nodes), else the lowest free one in its network's floating range.
    private mutating func floatingBindings(attached: [Address: Attachment], networks: [String: Resource<NetworkSpec>]) -> [FirewallRules.Binding] {
        var had: [Address: IPv4Address] = [:]
        for node in observed.values {
            for rule in node.firewall?.rules ?? Ruleset.Rules() where rule.chain == .prerouting {
                if let (address, ip) = rule.floatingBinding { had[address] = ip }
            }
        }
        var pools: [String: AddressPool] = [:]
        for (name, network) in networks { if let range = network.spec.floatingRange?.value { pools[name] = AddressPool(range: range, reserved: []) } }
        let floating = slice.floatingIPs.sorted(byAddress: \.address)
        func network(of resource: Resource<FloatingIPSpec>) -> String? {
            resource.spec.network?.value ?? (networks.count == 1 ? networks.keys.first : nil)
        }
        var chosen: [Address: IPv4Address] = [:]
        for resource in floating {
            guard let ip = resource.spec.address?.value, let name = network(of: resource) else { continue }
            if pools[name]?.claim(ip) == true { chosen[resource.address] = ip }
        }
        for resource in floating where chosen[resource.address] == nil && resource.spec.address == nil {
            if let ip = had[resource.address], let name = network(of: resource), pools[name]?.claim(ip) == true { chosen[resource.address] = ip }
        }
        for resource in floating where chosen[resource.address] == nil && resource.spec.address == nil {
            guard let name = network(of: resource) else { continue }
            if let ip = pools[name]?.allocate() {
                chosen[resource.address] = ip
            } else {
                errors.append(.init(address: resource.address, message: "network '\(name)' has no free floating address left; widen its floatingRange or release a floating IP"))
            }
        }
        var bindings: [FirewallRules.Binding] = []
        for resource in floating {
            guard let ip = chosen[resource.address], let instance = resource.spec.instance?.value else { continue }
            let target = Address(kind: .instance, region: region, tenant: resource.tenant, name: instance)
            guard let domain = attached[target] else { continue }
            bindings.append(.init(floating: ip, instance: target, fixed: domain.ip, source: resource.address, location: resource.meta.location))
        }
        return bindings
    }
}
