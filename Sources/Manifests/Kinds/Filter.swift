import YAML

/// IP protocols that rules match.
public enum IPProtocol: String, Sendable, CaseIterable, Codable {
    case tcp, udp, icmp, any
}

/// One egress allowance: these tenants may reach these internal networks on these ports.
public struct FilterRule: Sendable, Encodable {
    /// Tenant names, or `*` for every tenant.
    public var tenants: Located<[Located<String>]>
    /// Internal destinations allowed.
    public var to: Located<[Located<IPv4Network>]>
    /// Ports (none: all ports).
    public var ports: Located<[Located<PortRange>]>?
    /// Protocol (default tcp).
    public var proto: Located<IPProtocol>?

    static let fields = ["tenants", "to", "ports", "protocol"]

    private enum CodingKeys: String, CodingKey { case tenants, to, ports, proto = "protocol" }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> FilterRule? {
        var tenants: Located<[Located<String>]>?, to: Located<[Located<IPv4Network>]>?
        var ports: Located<[Located<PortRange>]>?, proto: Located<IPProtocol>?
        guard try d.mapping(what(), required: ["tenants", "to"], { key throws(YAMLError) in
            switch key.value {
            case "tenants": tenants = try d.list("tenants") { () throws(YAMLError) in try d.string("tenants") }
            case "to": to = try d.list("to") { () throws(YAMLError) in try d.cidr("to") }
            case "ports": ports = try d.list("ports") { () throws(YAMLError) in try d.portRange("ports") }
            case "protocol": proto = try d.choice("protocol", IPProtocol.self)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let tenants, let to else { return nil }
        return FilterRule(tenants: tenants, to: to, ports: ports, proto: proto)
    }
}

/// The SWS egress filter: internal segments tenants may not reach, except as the rules allow.
public struct FilterSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.filter
    static let fields = ["protect", "allow"]

    /// Internal networks protected from tenant traffic.
    public var protect: Located<[Located<IPv4Network>]>
    /// Exceptions.
    public var allow: Located<[FilterRule]>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> FilterSpec? {
        var protect: Located<[Located<IPv4Network>]>?, allow: Located<[FilterRule]>?
        guard try d.mapping(what(), required: ["protect"], { key throws(YAMLError) in
            switch key.value {
            case "protect": protect = try d.list("protect") { () throws(YAMLError) in try d.cidr("protect") }
            case "allow": allow = try d.list("allow") { () throws(YAMLError) in try FilterRule.decode(from: d, what: "an allow rule") }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let protect else { return nil }
        return FilterSpec(protect: protect, allow: allow)
    }
}
