import YAML

/// How a tenant pays.
public enum BillingMode: String, Sendable, CaseIterable, Codable {
    case prepaid, payAsYouGo
}

/// Limits on what() a tenant may run (absent: unlimited).
public struct Quotas: Sendable, Encodable {
    /// Instances across all regions.
    public var instances: Located<Int>?
    /// vCPUs across all regions.
    public var vcpus: Located<Int>?
    /// RAM across all regions.
    public var ram: Located<ByteSize>?
    /// Volume capacity across all regions.
    public var volumes: Located<ByteSize>?
    /// Floating IPs across all regions.
    public var floatingIPs: Located<Int>?
    /// Load balancers across all regions.
    public var loadBalancers: Located<Int>?

    static let fields = ["instances", "vcpus", "ram", "volumes", "floatingIPs", "loadBalancers"]
}

/// A customer of the cloud.
public struct TenantSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.tenant
    static let fields = ["displayName", "contact", "billing", "priceList", "quotas"]

    /// Human name.
    public var displayName: Located<String>?
    /// Contact e-mail.
    public var contact: Located<String>?
    /// prepaid or payAsYouGo (default payAsYouGo).
    public var billing: Located<BillingMode>?
    /// The price list the tenant is billed by (default: the only one).
    public var priceList: Located<String>?
    /// Limits.
    public var quotas: Quotas?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> TenantSpec? {
        var spec = TenantSpec()
        try d.mapping(what()) { key throws(YAMLError) in
            switch key.value {
            case "displayName": spec.displayName = try d.string("displayName")
            case "contact":
                spec.contact = try d.parsed("contact", expected: "an e-mail address") { text in
                    let parts = text.split(separator: "@", omittingEmptySubsequences: false)
                    return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !text.contains(" ") ? text : nil
                }
            case "billing": spec.billing = try d.choice("billing", BillingMode.self)
            case "priceList": spec.priceList = try d.name("priceList")
            case "quotas":
                var quotas = Quotas()
                try d.mapping("quotas") { key throws(YAMLError) in
                    switch key.value {
                    case "instances": quotas.instances = try d.int("instances", in: 0...10_000_000)
                    case "vcpus": quotas.vcpus = try d.int("vcpus", in: 0...100_000_000)
                    case "ram": quotas.ram = try d.byteSize("ram")
                    case "volumes": quotas.volumes = try d.byteSize("volumes")
                    case "floatingIPs": quotas.floatingIPs = try d.int("floatingIPs", in: 0...10_000_000)
                    case "loadBalancers": quotas.loadBalancers = try d.int("loadBalancers", in: 0...10_000_000)
                    default: try d.unknownField(key, in: "quotas", known: Quotas.fields)
                    }
                }
                spec.quotas = quotas
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }
        return spec
    }
}
