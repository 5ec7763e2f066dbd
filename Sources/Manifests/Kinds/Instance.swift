import YAML

/// Whether an instance should be running.
public enum PowerState: String, Sendable, CaseIterable, Codable {
    case running, stopped
}

/// How an instance is billed.
public enum BillingPeriod: String, Sendable, CaseIterable, Codable {
    case hourly, monthly
}

/// A tenant's virtual machine.
public struct InstanceSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.instance
    static let fields = ["flavor", "image", "network", "keypair", "securityGroups", "fixedIP", "zone", "node", "state", "billing", "userData"]

    /// Flavor name.
    public var flavor: Located<String>
    /// Image name.
    public var image: Located<String>
    /// Network name in the instance's region.
    public var network: Located<String>
    /// Keypair name of the same tenant.
    public var keypair: Located<String>?
    /// Security group names of the same tenant.
    public var securityGroups: Located<[Located<String>]>?
    /// A fixed address (default: allocated by StackLab's IPAM).
    public var fixedIP: Located<IPv4Address>?
    /// Availability zone to place it in.
    public var zone: Located<String>?
    /// A node to pin it to.
    public var node: Located<String>?
    /// running or stopped (default running).
    public var state: Located<PowerState>?
    /// hourly or monthly (default hourly).
    public var billing: Located<BillingPeriod>?
    /// cloud-init user data.
    public var userData: Located<String>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> InstanceSpec? {
        var flavor: Located<String>?, image: Located<String>?, network: Located<String>?
        var optional = InstanceSpec.Optionals()
        guard try d.mapping(what(), required: ["flavor", "image", "network"], { key throws(YAMLError) in
            switch key.value {
            case "flavor": flavor = try d.name("flavor")
            case "image": image = try d.name("image")
            case "network": network = try d.name("network")
            case "keypair": optional.keypair = try d.name("keypair")
            case "securityGroups": optional.securityGroups = try d.list("securityGroups") { () throws(YAMLError) in try d.name("securityGroups") }
            case "fixedIP": optional.fixedIP = try d.ipv4("fixedIP")
            case "zone": optional.zone = try d.name("zone")
            case "node": optional.node = try d.name("node")
            case "state": optional.state = try d.choice("state", PowerState.self)
            case "billing": optional.billing = try d.choice("billing", BillingPeriod.self)
            case "userData": optional.userData = try d.string("userData")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let flavor, let image, let network else { return nil }
        return InstanceSpec(flavor: flavor, image: image, network: network, keypair: optional.keypair,
                            securityGroups: optional.securityGroups, fixedIP: optional.fixedIP, zone: optional.zone,
                            node: optional.node, state: optional.state, billing: optional.billing, userData: optional.userData)
    }

    private struct Optionals {
        var keypair: Located<String>?, securityGroups: Located<[Located<String>]>?, fixedIP: Located<IPv4Address>?
        var zone: Located<String>?, node: Located<String>?, state: Located<PowerState>?
        var billing: Located<BillingPeriod>?, userData: Located<String>?
    }
}
