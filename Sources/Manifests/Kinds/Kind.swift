/// Every kind of manifest document StackLab understands.
public enum Kind: String, Sendable, CaseIterable, Codable, Comparable {
    case region = "Region", node = "Node", network = "Network", filter = "Filter", ring = "Ring"
    case flavor = "Flavor", image = "Image", priceList = "PriceList", tenant = "Tenant"
    case instance = "Instance", volume = "Volume", floatingIP = "FloatingIP"
    case securityGroup = "SecurityGroup", keypair = "Keypair", loadBalancer = "LoadBalancer", alarm = "Alarm", container = "Container"
    case pipeline = "Pipeline"
    /// Derived per node, never written in a manifest: a compute node's nftables ruleset, and its gateway addresses and
    /// DHCP host entries (`firewall/sina/sina-2`, `dhcp/sina/sina-2`).
    case firewall = "Firewall", dhcp = "DHCP"
    /// Derived per load-balancer node, never written in a manifest: the node's HAProxy configuration (public domains and
    /// the tenants' load balancers of its region, `haproxy/sina/sina-lb`).
    case haproxy = "HAProxy"
    /// Derived from a Volume's `snapshots`: one snapshot in the region's object store
    /// (`snapshot/sina/devops/gerrit-data@nightly-2026120100`).
    case snapshot = "Snapshot"

    /// Whether StackLab derives it rather than reading it from manifests.
    public var isDerived: Bool { self == .firewall || self == .dhcp || self == .haproxy || self == .snapshot }

    /// The kinds a manifest document may have.
    public static let manifestKinds = allCases.filter { !$0.isDerived }

    /// How a document of this kind is scoped.
    public enum Scope: Sendable {
        /// One per cloud: name is unique cloud-wide.
        case global
        /// Belongs to one region (`region` required).
        case regional
        /// Global, or limited to one region when `region` is given.
        case optionalRegion
        /// Belongs to a tenant and a region.
        case tenantRegional
        /// Belongs to a tenant; `region` optional.
        case tenantOptionalRegion
    }

    /// How this kind is scoped.
    public var scope: Scope {
        switch self {
        case .region, .flavor, .image, .priceList, .tenant, .pipeline: .global
        case .node, .network, .ring, .firewall, .dhcp, .haproxy: .regional
        case .filter: .optionalRegion
        case .instance, .volume, .floatingIP, .loadBalancer, .alarm, .container, .snapshot: .tenantRegional
        case .securityGroup, .keypair: .tenantOptionalRegion
        }
    }

    /// Lower-case form used in addresses (`instance/sina/devops/gerrit`).
    public var addressName: String { Self.addressNames[ordinal] }

    /// Each kind's address name, by `ordinal` (made once: addresses are written and hashed by the hundred thousand).
    private static let addressNames = allCases.map { $0.rawValue.lowercased() }

    /// The kind's place in declaration order (what `allCases` lists), without making `allCases`.
    var ordinal: Int {
        switch self {
        case .region: 0
        case .node: 1
        case .network: 2
        case .filter: 3
        case .ring: 4
        case .flavor: 5
        case .image: 6
        case .priceList: 7
        case .tenant: 8
        case .instance: 9
        case .volume: 10
        case .floatingIP: 11
        case .securityGroup: 12
        case .keypair: 13
        case .loadBalancer: 14
        case .alarm: 15
        case .container: 16
        case .pipeline: 17
        case .firewall: 18
        case .dhcp: 19
        case .haproxy: 20
        case .snapshot: 21
        }
    }

    /// Kinds accept lower-case address names on the command line.
    public init?(addressName: String) {
        guard let kind = Kind.allCases.first(where: { $0.addressName == addressName.lowercased() }) else { return nil }
        self = kind
    }

    /// Orders by declaration order (regions first, tenant resources last).
    public static func < (lhs: Kind, rhs: Kind) -> Bool {
        lhs.ordinal < rhs.ordinal
    }
}
