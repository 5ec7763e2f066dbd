import Manifests

/// A compute node's part of one FlatDHCP multi-host network: its own address in the fixed range (the gateway and DHCP
/// server of the instances it hosts) and a DHCP host entry for each of them. Rendered as a dnsmasq configuration and
/// hosts file under `/etc/stacklab/dnsmasq/`.
public struct NodeNetwork: Sendable, Codable, Hashable {
    /// One DHCP host entry: the instance's MAC gets its fixed IP and its name.
    public struct Host: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
        public var mac: String
        public var ip: IPv4Address
        public var name: String
        /// What the node's metadata service tells the instance (a file of its own beside the hosts file).
        public var metadata: InstanceMetadata?

        public init(mac: String, ip: IPv4Address, name: String, metadata: InstanceMetadata? = nil) {
            self.mac = mac
            self.ip = ip
            self.name = name
            self.metadata = metadata
        }

        /// `mac,ip,name` (dnsmasq's `dhcp-hostsfile` line).
        public var description: String { "\(mac),\(ip),\(name)" }

        public static func < (lhs: Host, rhs: Host) -> Bool { lhs.ip.value < rhs.ip.value }
    }

    /// The manifest network.
    public var network: String
    /// The Linux bridge.
    public var bridge: String
    /// The node's own address in the fixed range (sticky: kept from run to run).
    public var gateway: IPv4Address
    /// The fixed range.
    public var range: IPv4Network
    /// DNS servers handed out.
    public var dns: [IPv4Address]
    /// The instances on this node, by IP.
    public var hosts: [Host]

    /// Creates a node network.
    public init(network: String, bridge: String, gateway: IPv4Address, range: IPv4Network, dns: [IPv4Address], hosts: [Host]) {
        self.network = network
        self.bridge = bridge
        self.gateway = gateway
        self.range = range
        self.dns = dns
        self.hosts = hosts.sorted()
    }

    /// Where its files live under the node's file root.
    public static let directory = "etc/stacklab/dnsmasq"

    /// The dnsmasq configuration: listens on the node's gateway address on the bridge, serves only static leases
    /// (StackLab's IPAM decides every address), and hands out the node itself as router.
    public var configuration: String {
        let mask = IPv4Address(range.prefix == 0 ? 0 : UInt32.max << (32 - UInt32(range.prefix)))
        var text = "# StackLab: network \(network) on this node (managed by StackLab)\n"
        text += "interface=\(bridge)\nbind-interfaces\nexcept-interface=lo\nlisten-address=\(gateway)\n"
        text += "dhcp-range=set:\(network),\(range.address),static,\(mask),12h\n"
        text += "dhcp-option=tag:\(network),option:router,\(gateway)\n"
        if !dns.isEmpty { text += "dhcp-option=tag:\(network),option:dns-server,\(dns.map(\.description).joined(separator: ","))\n" }
        text += "dhcp-hostsfile=/\(Self.directory)/\(network).hosts\n"
        return text
    }

    /// The `dhcp-hostsfile`: one line per instance on this node.
    public var hostsFile: String {
        hosts.map { "\($0)\n" }.joined()
    }

    /// Reads back what a node has installed for `network`; nil when the configuration is not StackLab's.
    public init?(network: String, configuration: String, hostsFile: String) {
        var bridge: String?, gateway: IPv4Address?, range: IPv4Network?, dns: [IPv4Address] = []
        for line in configuration.split(separator: "\n") {
            if line.hasPrefix("interface=") { bridge = String(line.dropFirst("interface=".count)) }
            if line.hasPrefix("listen-address=") { gateway = IPv4Address(parsing: line.dropFirst("listen-address=".count)) }
            if line.hasPrefix("dhcp-range=") {
                let parts = line.dropFirst("dhcp-range=".count).split(separator: ",")
                if parts.count >= 4, let address = IPv4Address(parsing: parts[1]), let mask = IPv4Address(parsing: parts[3]) {
                    range = IPv4Network(address: address, prefix: mask.value.nonzeroBitCount)
                }
            }
            if line.hasPrefix("dhcp-option=tag:\(network),option:dns-server,") {
                dns = line.split(separator: ",").dropFirst(2).compactMap { IPv4Address(parsing: $0) }
            }
        }
        guard configuration.hasPrefix("# StackLab:"), let bridge, let gateway, let range else { return nil }
        let hosts = hostsFile.split(separator: "\n").compactMap { line -> Host? in
            let parts = line.split(separator: ",")
            guard parts.count == 3, let ip = IPv4Address(parsing: parts[1]) else { return nil }
            return Host(mac: String(parts[0]), ip: ip, name: String(parts[2]))
        }
        self.init(network: network, bridge: bridge, gateway: gateway, range: range, dns: dns, hosts: hosts)
    }
}

/// What a compute node serves its instances: its part of each network, and its firewall. One change carries each.
public struct NodeDHCP: Sendable, Codable, Hashable {
    /// The node's networks, by name.
    public var networks: [NodeNetwork]

    public init(networks: [NodeNetwork]) {
        self.networks = networks.sorted { $0.network < $1.network }
    }

    /// What changes from `old`, entry by entry.
    public func diff(from old: NodeDHCP?) -> [Change.FieldChange] {
        var fields: [Change.FieldChange] = []
        let before = Dictionary((old?.networks ?? []).map { ($0.network, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(networks.map { ($0.network, $0) }, uniquingKeysWith: { first, _ in first })
        for name in Set(before.keys).union(after.keys).sorted() {
            let was = before[name], now = after[name]
            if was?.gateway != now?.gateway {
                fields.append(.init(field: "\(name) gateway", old: was.map { "\($0.gateway)" } ?? "", new: now.map { "\($0.gateway)" } ?? ""))
            }
            if was?.dns != now?.dns || was?.bridge != now?.bridge || was?.range != now?.range, was != nil, now != nil {
                fields.append(.init(field: "\(name) settings", old: "\(was!.bridge) \(was!.range) dns \(was!.dns.map(\.description).joined(separator: ","))",
                                    new: "\(now!.bridge) \(now!.range) dns \(now!.dns.map(\.description).joined(separator: ","))"))
            }
            let oldHosts = Set((was?.hosts ?? []).map(\.description)), newHosts = Set((now?.hosts ?? []).map(\.description))
            fields += (was?.hosts ?? []).filter { !newHosts.contains($0.description) }.map { .init(field: "- \(name) host", old: "\($0)", new: "") }
            fields += (now?.hosts ?? []).filter { !oldHosts.contains($0.description) }.map { .init(field: "+ \(name) host", old: "", new: "\($0)") }
            let oldMetadata = Dictionary((was?.hosts ?? []).map { ($0.description, $0.metadata) }, uniquingKeysWith: { first, _ in first })
            for host in now?.hosts ?? [] where oldHosts.contains(host.description) && oldMetadata[host.description] != host.metadata {
                fields.append(.init(field: "~ \(name) metadata", old: "", new: host.name))
            }
        }
        return fields
    }
}
