import Manifests

/// Renders one compute node's ruleset from the manifests and the region's placement: the SWS egress filter, security
/// groups, floating-IP NAT, and what instances may ask of the node itself (DHCP, DNS, metadata). Every rule is there
/// for a reason a packet can show: none is redundant with another or with the chains' accept policy.
public struct FirewallRules: Sendable {
    /// An instance as the firewall sees it.
    public struct Member: Sendable, Hashable {
        public var address: Address
        public var ip: IPv4Address
        /// Its MAC, and its port on the node (the tap device, `DesiredDomain.port(for:)`).
        public var mac: String
        public var port: String
        public var network: String
        /// Its security groups in force (the tenant's `default` group when it names none).
        public var groups: [String]

        public init(address: Address, ip: IPv4Address, mac: String, network: String, groups: [String]) {
            self.address = address
            self.ip = ip
            self.mac = mac
            port = DesiredDomain.port(for: address)
            self.network = network
            self.groups = groups
        }
    }

    /// A floating IP bound to an instance.
    public struct Binding: Sendable, Hashable {
        public var floating: IPv4Address
        public var instance: Address
        public var fixed: IPv4Address
        public var source: Address
        public var location: SourceLocation?

        public init(floating: IPv4Address, instance: Address, fixed: IPv4Address, source: Address, location: SourceLocation?) {
            self.floating = floating
            self.instance = instance
            self.fixed = fixed
            self.source = source
            self.location = location
        }
    }

    /// The port the node's metadata service listens on; instances reach it as 169.254.169.254:80.
    public static let metadataPort = 8775

    /// The region's name and spec (its internal ranges).
    public var region: String
    public var spec: RegionSpec?
    /// The node's networks (its gateway on each).
    public var networks: [NodeNetwork]
    /// Every instance of the region by security group (for source groups), and the node's own instances.
    public var members: [TenantKey: [Member]]
    public var local: [Member]
    public var filters: [Resource<FilterSpec>]
    /// Security groups by tenant and name.
    public var groups: [TenantKey: Resource<SecurityGroupSpec>]
    /// Floating IPs of the node's instances.
    public var bindings: [Binding]
    /// The fixed and floating ranges of every network of the region (what no Filter may open).
    public var regionRanges: [IPv4Network] = []
    /// Where the region and each network (by name) are declared, for the rules they alone cause.
    public var regionLocation: SourceLocation?
    public var networkLocations: [String: SourceLocation] = [:]
    /// The load-balancer nodes' addresses on each network (by name), and the ports they reach on each instance (by fixed
    /// IP): HAProxy has admitted the connection by then (a public domain only from its groups' sources).
    public var balancerSources: [String: [IPv4Address]] = [:]
    public var balancerPorts: [IPv4Address: Set<Int>] = [:]

    /// The members of each security group (by tenant and name), made once for the region.
    public static func membership(of members: [Member]) -> [TenantKey: [Member]] {
        var groups: [TenantKey: [Member]] = [:]
        for member in members {
            guard let tenant = member.address.tenant else { continue }
            for group in member.groups { groups[TenantKey(tenant: tenant, name: group), default: []].append(member) }
        }
        // By address: the rules do not depend on the order documents were read in.
        return groups.mapValues { $0.sorted { $0.ip.value < $1.ip.value } }
    }

    public init(region: String, spec: RegionSpec?, networks: [NodeNetwork], members: [TenantKey: [Member]], local: [Member], filters: [Resource<FilterSpec>],
                groups: [TenantKey: Resource<SecurityGroupSpec>], bindings: [Binding]) {
        self.region = region
        self.spec = spec
        self.networks = networks
        self.members = members
        self.local = local
        self.filters = filters
        self.groups = groups
        self.bindings = bindings
    }

    /// The ruleset for `node`.
    public func ruleset(for node: Address) -> Ruleset {
        var rules = portBindings()
        let regionSource = "region/\(region)"
        // A Filter opens the provider's internal ranges, never an instance: every fixed and floating range of the region's
        // networks is left out of what it opens, so instance-to-instance ingress is decided by security groups alone.
        let instanceRanges = Self.unique(regionRanges)
        let notInstances = instanceRanges.isEmpty ? "" : " ip daddr != \(Self.set(instanceRanges.map(\.description)))"
        for network in networks {
            let bridge = "iifname \"\(network.bridge)\""
            let here = local.filter { $0.network == network.network }
            // SWS egress filter: the openings first, then the drop of new connections to internal ranges.
            for filter in filters {
                for (index, allow) in (filter.spec.allow?.value ?? []).enumerated() {
                    let tenants = Set(allow.tenants.value.map(\.value))
                    let sources = here.filter { tenants.contains("*") || tenants.contains($0.address.tenant ?? "") }.map(\.ip)
                    guard !sources.isEmpty else { continue }
                    let to = allow.to.value.map(\.value.description)
                    let ports = Self.ports(proto: allow.proto?.value ?? .tcp, ranges: allow.ports?.value.map(\.value) ?? [])
                    rules.append(.init(.forward, "\(bridge) ip saddr \(Self.set(sources.map(\.description))) ip daddr \(Self.set(to))\(notInstances)\(ports) accept",
                                       source: "filter/\(filter.name)#\(index + 1)", at: allow.tenants.location))
                }
            }
            var protected = spec?.effectiveInternalRanges ?? []
            for filter in filters { protected += filter.spec.protect.value.map(\.value) }
            protected = Self.unique(protected).filter { !network.range.contains($0) }
            if !protected.isEmpty {
                rules.append(.init(.forward, "\(bridge) ip saddr \(network.range) ip daddr != \(network.range) ip daddr \(Self.set(protected.map(\.description))) ct state new drop",
                                   source: "\(regionSource) internalRanges", at: spec?.internalRanges?.location ?? regionLocation))
            }
            // The region's load-balancer nodes reach the ports their public domains and listeners forward to.
            if let sources = balancerSources[network.network] {
                for member in here.sorted(by: { $0.ip.value < $1.ip.value }) {
                    guard let ports = balancerPorts[member.ip], !ports.isEmpty else { continue }
                    rules.append(.init(.forward, "ip saddr \(Self.set(sources.map(\.description))) ip daddr \(member.ip) tcp dport \(Self.set(ports.sorted().map(String.init)))"
                                       + " accept", source: "haproxy/\(region)", at: spec?.publicDomains?.location ?? regionLocation))
                }
            }
            // Security groups: allow-only ingress to each instance, then no other new connection in.
            for member in here.sorted(by: { $0.ip.value < $1.ip.value }) {
                for name in member.groups {
                    guard let tenant = member.address.tenant, let group = groups[TenantKey(tenant: tenant, name: name)] else { continue }
                    for (index, rule) in (group.spec.rules?.value ?? []).enumerated() where (rule.direction?.value ?? .ingress) == .ingress {
                        var text = "ip daddr \(member.ip)"
                        if let cidr = rule.cidr?.value, cidr.prefix > 0 {
                            text += " ip saddr \(cidr)"
                        } else if let source = rule.group?.value {
                            let peers = (members[TenantKey(tenant: tenant, name: source)] ?? []).filter { $0.address != member.address }
                            guard !peers.isEmpty else { continue }
                            text += " ip saddr \(Self.set(peers.map(\.ip.description)))"
                        }
                        text += Self.ports(proto: rule.proto?.value ?? .tcp, ranges: rule.ports.map { [$0.value] } ?? [])
                        rules.append(.init(.forward, text + " accept", source: "securitygroup/\(tenant)/\(name)#\(index + 1)",
                                           at: rule.ports?.location ?? rule.proto?.location ?? group.meta.location))
                    }
                }
            }
            if !here.isEmpty {
                rules.append(.init(.forward, "ip daddr \(Self.set(here.map(\.ip.description))) ct state new drop",
                                   source: "securitygroups default deny", at: nil))
            }
            // The node itself: DHCP and DNS from its dnsmasq, the metadata service, nothing else new.
            rules.append(.init(.input, "\(bridge) udp dport { 53, 67 } accept", source: "network/\(region)/\(network.network) dhcp+dns", at: networkLocations[network.network]))
            rules.append(.init(.input, "\(bridge) tcp dport 53 accept", source: "network/\(region)/\(network.network) dns", at: networkLocations[network.network]))
            rules.append(.init(.input, "\(bridge) ip daddr \(network.gateway) tcp dport \(Self.metadataPort) accept",
                               source: "network/\(region)/\(network.network) metadata", at: networkLocations[network.network]))
            rules.append(.init(.input, "\(bridge) ct state new drop", source: "network/\(region)/\(network.network) node protection", at: networkLocations[network.network]))
            rules.append(.init(.prerouting, "\(bridge) ip daddr 169.254.169.254 tcp dport 80 dnat to \(network.gateway):\(Self.metadataPort)",
                               source: "network/\(region)/\(network.network) metadata", at: networkLocations[network.network]))
            for binding in bindings.filter({ network.range.contains($0.fixed) }).sorted(by: { $0.floating.value < $1.floating.value }) {
                rules.append(.init(.prerouting, "ip daddr \(binding.floating) dnat to \(binding.fixed)", source: binding.source.description, at: binding.location))
                rules.append(.init(.output, "ip daddr \(binding.floating) dnat to \(binding.fixed)", source: binding.source.description, at: binding.location))
                rules.append(.init(.postrouting, "ip saddr \(binding.fixed) ip daddr != \(network.range) snat to \(binding.floating)",
                                   source: binding.source.description, at: binding.location))
            }
            rules.append(.init(.postrouting, "ip saddr \(network.range) ip daddr != \(network.range) masquerade",
                               source: "network/\(region)/\(network.network) outbound", at: networkLocations[network.network]))
        }
        let (trafficRules, counters) = traffic()
        return Ruleset(node: node, rules: rules + trafficRules, counters: counters)
    }

    /// Addresses an instance's traffic to or from stays inside the provider: the region's networks (fixed and floating),
    /// its internal ranges and every Filter's protected ones, link-local (the metadata service), multicast and the
    /// broadcast address.
    var internalRanges: [IPv4Network] {
        var ranges = regionRanges + networks.map(\.range) + (spec?.effectiveInternalRanges ?? [])
        for filter in filters { ranges += filter.spec.protect.value.map(\.value) }
        ranges += Self.specialRanges
        return Self.unique(ranges)
    }

    /// Link-local, multicast and the broadcast address, parsed once.
    static let specialRanges = ["169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32"].compactMap(IPv4Network.init(parsing:))

    /// Four named counters per instance of the node (out and in, public and internal) and the rules that count each
    /// IPv4 frame of its port into one of them: through a load-balancer node is public (a public domain or listener),
    /// then anything to or from `internalRanges` is internal, the rest public. Counting decides nothing: every rule
    /// falls through to the chains' accept policy.
    func traffic() -> ([Ruleset.Rule], [TrafficCounter]) {
        let members = local.sorted { $0.port < $1.port }
        guard !members.isEmpty else { return ([], []) }
        var counters: [TrafficCounter] = []
        var rules: [Ruleset.Rule] = []
        let balancers = Set(balancerSources.values.joined()).sorted { $0.value < $1.value }.map(\.description)
        let inside = internalRanges.map(\.description)
        // A frame leaving the bridge through a port counts as received only when it is addressed to the port's own MAC:
        // the bridge also floods broadcasts, multicasts and frames for MACs it has not learnt to every port, and those
        // were not sent to the instance. (What a port sends carries its own MAC: the anti-spoofing checks it.)
        let addressed = "oifname . ether daddr " + Self.braced(members.map { "\"\($0.port)\" . \($0.mac)" }) + " "
        for direction in TrafficCounter.Direction.allCases {
            let (chain, port, peer): (Ruleset.Chain, String, String) = direction == .outbound ? (.trafficOut, "iifname", "ip daddr")
                : (.trafficIn, "oifname", addressed + "ip saddr")
            func map(_ scope: TrafficCounter.Scope) -> String {
                Self.braced(members.map { "\"\($0.port)\" : \"\(TrafficCounter(instance: $0.address, port: $0.port, direction: direction, scope: scope).name)\"" })
            }
            let what = "traffic: \(direction.rawValue)"
            if !balancers.isEmpty {
                rules.append(.init(chain, "\(peer) \(Self.set(balancers)) counter name \(port) map \(map(.public)) return", source: "\(what) through a load balancer, public"))
            }
            rules.append(.init(chain, "\(peer) \(Self.set(inside)) counter name \(port) map \(map(.internal)) return", source: "\(what) internal"))
            rules.append(.init(chain, (direction == .inbound ? addressed : "") + "ether type ip counter name \(port) map \(map(.public))", source: "\(what) public"))
            for member in members {
                for scope in TrafficCounter.Scope.allCases { counters.append(TrafficCounter(instance: member.address, port: member.port, direction: direction, scope: scope)) }
            }
        }
        return (rules, counters)
    }

    /// The anti-spoofing of the node's instance ports (bridge family, before the bridge forwards or delivers a frame): a
    /// frame from an instance's port carries its own MAC; ARP from it speaks only for its own MAC and fixed IP; IPv4 from
    /// it has its fixed IP as source (or 0.0.0.0 for a DHCP request before it has one); nothing else (no IPv6, VLAN
    /// tags or other protocols: no network has IPv6). A frame from a port named like an instance's that the ruleset does
    /// not know is dropped, and so is one from a tap libvirt named itself (`vnetN`). Each port's frames are marked with its fixed IP, which the metadata service reads from the
    /// connection (`tcp_fwmark_accept`): it answers for the instance behind the port, whatever address a request claims.
    /// One rule per check over a set of every port, so a node of many instances matches each frame in constant time.
    func portBindings() -> [Ruleset.Rule] {
        let ports = "iifname \"\(DesiredDomain.portPrefix)*\""
        // A tap libvirt named itself (a domain defined before ports were named, or one StackLab does not own) is bound to
        // nothing: it gets nothing onto the bridge until its instance is restarted with its port's name.
        let unnamed = Ruleset.Rule(.ports, "iifname \"vnet*\" drop", source: "instance ports: unnamed taps")
        let members = local.sorted { $0.port < $1.port }
        guard !members.isEmpty else {
            return [unnamed, .init(.ports, "\(ports) drop", source: "instance ports: none on this node")]
        }
        let macs = Self.braced(members.map { "\"\($0.port)\" . \($0.mac)" })
        let arps = Self.braced(members.map { "\"\($0.port)\" . \($0.mac) . \($0.ip)" })
        let ips = Self.braced(members.map { "\"\($0.port)\" . \($0.ip)" })
        let marks = Self.braced(members.map { "\"\($0.port)\" : \(Self.mark(for: $0.ip))" })
        return [
            unnamed,
            .init(.ports, "\(ports) iifname . ether saddr != \(macs) drop", source: "instance ports: own MAC"),
            .init(.ports, "\(ports) iifname . arp saddr ether . arp saddr ip != \(arps) drop", source: "instance ports: ARP for own address"),
            .init(.ports, "\(ports) ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept", source: "instance ports: DHCP before an address"),
            .init(.ports, "\(ports) iifname . ip saddr != \(ips) drop", source: "instance ports: own fixed IP"),
            .init(.ports, "\(ports) ether type != { ip, arp } drop", source: "instance ports: IPv4 and ARP only"),
            .init(.ports, "\(ports) meta mark set iifname map \(marks)", source: "instance ports: mark for the metadata service"),
        ]
    }

    /// The packet mark of an instance port's frames: its fixed IP as a 32-bit number (hexadecimal).
    public static func mark(for ip: IPv4Address) -> String {
        "0x" + String(ip.value, radix: 16)
    }

    /// ` tcp dport { 22, 8000-8100 }`, ` ip protocol icmp`, or nothing for any protocol.
    static func ports(proto: IPProtocol, ranges: [PortRange]) -> String {
        switch proto {
        case .any: return ""
        case .icmp: return " ip protocol icmp"
        case .tcp, .udp:
            guard !ranges.isEmpty else { return " ip protocol \(proto.rawValue)" }
            let items = ranges.map { $0.lower == $0.upper ? "\($0.lower)" : "\($0.lower)-\($0.upper)" }
            return " \(proto.rawValue) dport \(items.count == 1 ? items[0] : set(items))"
        }
    }

    /// `{ a, b }`, even for one item (a concatenation or a map is matched against a set only).
    static func braced(_ items: [String]) -> String {
        "{ " + items.joined(separator: ", ") + " }"
    }

    /// `{ a, b }`, or the one item alone.
    static func set(_ items: [String]) -> String {
        items.count == 1 ? items[0] : "{ " + items.joined(separator: ", ") + " }"
    }

    /// Networks without repeats, and without those inside another in the list (nft refuses overlapping set elements).
    static func unique(_ networks: [IPv4Network]) -> [IPv4Network] {
        var kept: [IPv4Network] = []
        for network in networks.sorted(by: { $0.prefix < $1.prefix }) where !kept.contains(where: { $0.contains(network) }) {
            kept.append(network)
        }
        return kept.sorted { $0.address.value < $1.address.value }
    }
}
