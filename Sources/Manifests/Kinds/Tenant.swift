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
    /// Bytes and objects the tenant's account may hold in each region's object store (Swift's account quotas, which
    /// only the reseller admin StackLab signs in as may set).
    public var storage: Located<ByteSize>?
    public var objects: Located<Int>?

    static let fields = ["instances", "vcpus", "ram", "volumes", "floatingIPs", "loadBalancers", "storage", "objects"]
}

/// Who may log in to a tenant's console: named tokens, each kept in git only as its SHA-256 (`stacklab tenant token`
/// makes one and prints the line to commit).
public struct ConsoleAccess: Sendable, Encodable {
    public struct Token: Sendable, Encodable {
        public var name: Located<String>
        /// The token's SHA-256, 64 lower-case hexadecimal digits.
        public var sha256: Located<String>
    }

    public var tokens: [Token]

    static let fields = ["tokens"]
    static let tokenFields = ["name", "sha256"]
}

/// A customer of the cloud.
public struct TenantSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.tenant
    static let fields = ["displayName", "contact", "billing", "priceList", "quotas", "console"]

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
    /// Console logins.
    public var console: ConsoleAccess?

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
                    case "storage": quotas.storage = try d.byteSize("storage")
                    case "objects": quotas.objects = try d.int("objects", in: 0...Int(Int64.max))
                    default: try d.unknownField(key, in: "quotas", known: Quotas.fields)
                    }
                }
                spec.quotas = quotas
            case "console":
                var tokens: [ConsoleAccess.Token] = []
                try d.mapping("console") { key throws(YAMLError) in
                    guard key.value == "tokens" else { return try d.unknownField(key, in: "console", known: ConsoleAccess.fields) }
                    _ = try d.list("tokens") { () throws(YAMLError) -> ConsoleAccess.Token? in
                        var name: Located<String>?, sha256: Located<String>?
                        try d.mapping("a console token", required: ConsoleAccess.tokenFields) { key throws(YAMLError) in
                            switch key.value {
                            case "name": name = try d.name("name")
                            case "sha256":
                                sha256 = try d.parsed("sha256", expected: "64 lower-case hexadecimal digits (a token's SHA-256)",
                                                      hint: "stacklab tenant token TENANT NAME prints the line to commit") { text in
                                    text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) } ? text : nil
                                }
                            default: try d.unknownField(key, in: "a console token", known: ConsoleAccess.tokenFields)
                            }
                        }
                        guard let name, let sha256 else { return nil }
                        return ConsoleAccess.Token(name: name, sha256: sha256)
                    }.map { tokens = $0.value }
                }
                spec.console = ConsoleAccess(tokens: tokens)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }
        return spec
    }
}
