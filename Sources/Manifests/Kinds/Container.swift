import YAML

/// Who may read a container without credentials.
public enum ContainerPublicAccess: String, Sendable, CaseIterable, Codable {
    /// Nobody: the tenant and the tenants it names.
    case none = "false"
    /// Anyone may read its objects (`.r:*`), not list them.
    case read
    /// Anyone may read and list its objects (`.r:*,.rlistings`).
    case list
}

/// A tenant's container in its region's object store (its Swift account): who else may read or write it, which web
/// pages may embed its public objects (the referrer ACL, Sina's 存储防火墙), and whether overwritten objects keep
/// their old versions.
public struct ContainerSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.container
    static let fields = ["public", "readers", "writers", "allowReferrers", "versioning"]

    public var publicAccess: Located<ContainerPublicAccess>?
    /// Other tenants that may read (and list) it.
    public var readers: Located<[Located<String>]>?
    /// Other tenants that may write (create, replace and delete objects in) it.
    public var writers: Located<[Located<String>]>?
    /// The hosts whose pages may read its public objects (`example.org`, `.example.org` for every subdomain): with them,
    /// an anonymous read must come with a `Referer` from one of these hosts.
    public var allowReferrers: Located<[Located<String>]>?
    public var versioning: Located<Bool>?

    /// The public access in force.
    public var effectivePublic: ContainerPublicAccess { publicAccess?.value ?? .none }

    private enum CodingKeys: String, CodingKey { case publicAccess = "public", readers, writers, allowReferrers, versioning }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> ContainerSpec? {
        var spec = ContainerSpec()
        guard try d.mapping(what(), { key throws(YAMLError) in
            switch key.value {
            case "public": spec.publicAccess = try d.choice("public", ContainerPublicAccess.self)
            case "readers": spec.readers = try d.list("readers") { () throws(YAMLError) in try d.name("readers") }
            case "writers": spec.writers = try d.list("writers") { () throws(YAMLError) in try d.name("writers") }
            case "allowReferrers":
                spec.allowReferrers = try d.list("allowReferrers") { () throws(YAMLError) in
                    try d.parsed("allowReferrers", expected: "a host name (example.org, or .example.org for its subdomains)",
                                 hint: "write the host alone, without http:// or a path") { Self.referrer($0) }
                }
            case "versioning": spec.versioning = try d.bool("versioning")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        return spec
    }

    /// A referrer host as Swift's `.r:` ACL matches it: letters, digits, '-' and '.', lower-cased; nil for anything else
    /// (a scheme, a path, a port, a wildcard or a character that would end the ACL list).
    static func referrer(_ text: String) -> String? {
        let host = text.lowercased()
        guard !host.isEmpty, host.utf8.count <= 253, host != ".", !host.hasSuffix("."),
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }),
              !host.dropFirst().contains("..") else { return nil }
        return host
    }
}
