/// A resource's identity: kind + region (+ tenant) + name, stable across revisions.
/// Written `instance/sina/devops/gerrit`, `node/sina/sina-1`, `flavor/m1.small`.
public struct Address: Sendable, Hashable, Comparable, TextCodable {
    public static let textKind = "address"
    /// The kind.
    public var kind: Kind
    /// The region, for regional resources.
    public var region: String?
    /// The tenant, for tenant resources.
    public var tenant: String?
    /// The name.
    public var name: String

    /// Creates an address.
    public init(kind: Kind, region: String? = nil, tenant: String? = nil, name: String) {
        self.kind = kind
        self.region = region
        self.tenant = tenant
        self.name = name
    }

    /// `kind/region/tenant/name` with absent parts left out.
    public var description: String {
        var text = kind.addressName
        text.reserveCapacity(text.utf8.count + (region?.utf8.count ?? 0) + (tenant?.utf8.count ?? 0) + name.utf8.count + 3)
        if let region { text += "/" + region }
        if let tenant { text += "/" + tenant }
        text += "/" + name
        return text
    }

    /// Orders by kind, region, tenant, name (field by field: no strings are built to compare).
    public static func < (lhs: Address, rhs: Address) -> Bool {
        if lhs.kind != rhs.kind { return lhs.kind < rhs.kind }
        if lhs.region != rhs.region { return (lhs.region ?? "") < (rhs.region ?? "") }
        if lhs.tenant != rhs.tenant { return (lhs.tenant ?? "") < (rhs.tenant ?? "") }
        return lhs.name < rhs.name
    }


    /// Parses `kind/region/tenant/name` (exactly the parts the kind's scope has); nil when malformed.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.count <= 4, !parts.contains(where: \.isEmpty), let kind = Kind(addressName: parts[0]) else { return nil }
        let fits = switch kind.scope {
        case .global: parts.count == 2
        case .regional: parts.count == 3
        case .optionalRegion: parts.count == 2 || parts.count == 3
        case .tenantRegional: parts.count == 4
        case .tenantOptionalRegion: parts.count == 3 || parts.count == 4
        }
        guard fits else { return nil }
        self.kind = kind
        self.name = parts[parts.count - 1]
        switch kind.scope {
        case .tenantRegional, .tenantOptionalRegion:
            self.tenant = parts.count >= 3 ? parts[parts.count - 2] : nil
            self.region = parts.count == 4 ? parts[1] : nil
        case .global, .regional, .optionalRegion:
            self.region = parts.count == 3 ? parts[1] : nil
        }
    }
}

/// An address keys a JSON object by its text form (`{"node/lab/lab-1": …}`), as a dictionary of strings would.
extension Address: CodingKeyRepresentable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public var codingKey: any CodingKey { Key(stringValue: description) }

    public init?<T: CodingKey>(codingKey: T) {
        self.init(parsing: codingKey.stringValue)
    }
}
