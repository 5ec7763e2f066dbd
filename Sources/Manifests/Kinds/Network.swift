import YAML

/// Network managers StackLab drives.
public enum NetworkMode: String, Sendable, CaseIterable, Codable {
    /// nova-network FlatDHCP: one bridge, dnsmasq per host when multi-host.
    case flatDHCP = "FlatDHCP"
}

/// A region's tenant network: FlatDHCP, multi-host.
public struct NetworkSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.network
    static let fields = ["mode", "multiHost", "bridge", "fixedRange", "gateway", "dns", "floatingRange"]

    /// Network manager (FlatDHCP).
    public var mode: Located<NetworkMode>?
    /// Whether every compute node routes its own instances (default true).
    public var multiHost: Located<Bool>?
    /// Linux bridge name on each node (`br100`).
    public var bridge: Located<String>
    /// Instances' fixed addresses.
    public var fixedRange: Located<IPv4Network>
    /// Default gateway handed out by DHCP (inside the fixed range).
    public var gateway: Located<IPv4Address>
    /// DNS servers handed out by DHCP.
    public var dns: Located<[Located<IPv4Address>]>?
    /// Public addresses for floating IPs.
    public var floatingRange: Located<IPv4Network>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> NetworkSpec? {
        var mode: Located<NetworkMode>?, multiHost: Located<Bool>?, bridge: Located<String>?
        var fixedRange: Located<IPv4Network>?, gateway: Located<IPv4Address>?
        var dns: Located<[Located<IPv4Address>]>?, floatingRange: Located<IPv4Network>?
        guard try d.mapping(what(), required: ["bridge", "fixedRange", "gateway"], { key throws(YAMLError) in
            switch key.value {
            case "mode": mode = try d.choice("mode", NetworkMode.self)
            case "multiHost": multiHost = try d.bool("multiHost")
            case "bridge": bridge = try d.interfaceName("bridge")
            case "fixedRange": fixedRange = try d.cidr("fixedRange")
            case "gateway": gateway = try d.ipv4("gateway")
            case "dns": dns = try d.list("dns") { () throws(YAMLError) in try d.ipv4("dns") }
            case "floatingRange": floatingRange = try d.cidr("floatingRange")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let bridge, let fixedRange, let gateway else { return nil }
        return NetworkSpec(mode: mode, multiHost: multiHost, bridge: bridge, fixedRange: fixedRange, gateway: gateway,
                           dns: dns, floatingRange: floatingRange)
    }
}

extension ManifestDecoder {
    /// A Linux interface name: 1-15 characters, no '/' or spaces.
    func interfaceName(_ field: String) throws(YAMLError) -> Located<String>? {
        try parsed(field, expected: "a Linux interface name",
                   hint: "at most 15 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit (e.g. br100)") { text in
            guard (1...15).contains(text.utf8.count), let first = text.first, first.isASCII, first.isLetter || first.isNumber,
                  text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            else { return nil }
            return text
        }
    }
}

extension NetworkSpec {
    /// The addresses of the fixed range StackLab never gives an instance besides the network and broadcast addresses:
    /// the gateway and the DNS servers inside the range.
    public var reservedAddresses: [IPv4Address] {
        let range = fixedRange.value
        var reserved: [IPv4Address] = []
        for ip in [gateway.value] + (dns?.value.map(\.value) ?? []) where range.contains(ip) && ip != range.first && ip != range.last && !reserved.contains(ip) {
            reserved.append(ip)
        }
        return reserved
    }

    /// How many instances the fixed range can address when `computeNodes` compute nodes serve it: its host addresses,
    /// less the reserved ones and one address for each compute node (multi-host: every compute node is the gateway and
    /// DHCP server of its own instances, with an address of its own on the network). Validation and the planner's address
    /// pool count the same way, so a network that validates can be planned.
    public func instanceCapacity(computeNodes: Int) -> Int {
        let range = fixedRange.value
        let hosts = Int(range.last.value - range.first.value) - 1
        return max(0, hosts - reservedAddresses.count - computeNodes)
    }
}
