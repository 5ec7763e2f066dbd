/// A name within a tenant: a security group or keypair looked up by the name an instance gives, a volume whose
/// snapshots a region's object store keeps. Written `tenant/name` (the object store's key prefix for a volume's
/// snapshots; how it is encoded in a plan), read back only by `init(parsing:)`.
public struct TenantKey: Sendable, Hashable, Comparable, TextCodable {
    public static let textKind = "tenant/name key"
    public var tenant: String
    public var name: String

    public init(tenant: String, name: String) {
        self.tenant = tenant
        self.name = name
    }

    /// The key of a tenant resource (nil when it has no tenant).
    public init?(_ address: Address) {
        guard let tenant = address.tenant else { return nil }
        self.init(tenant: tenant, name: address.name)
    }

    /// `tenant/name` → the key; nil unless it is exactly two non-empty parts (tenant names hold no `/`).
    public init?(parsing text: some StringProtocol) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let tenant = text[..<slash], name = text[text.index(after: slash)...]
        guard !tenant.isEmpty, !name.isEmpty, !name.contains("/") else { return nil }
        self.init(tenant: String(tenant), name: String(name))
    }

    public var description: String { "\(tenant)/\(name)" }

    public static func < (lhs: TenantKey, rhs: TenantKey) -> Bool { (lhs.tenant, lhs.name) < (rhs.tenant, rhs.name) }

}
