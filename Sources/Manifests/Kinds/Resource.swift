import YAML

/// The identity part of every document: kind, name, and the region and tenant it belongs to.
public struct ObjectMeta: Sendable {
    /// The document's kind.
    public var kind: Kind
    /// The name, unique within its scope.
    public var name: Located<String>
    /// The region, for regional resources.
    public var region: Located<String>?
    /// The owning tenant, for tenant resources.
    public var tenant: Located<String>?
    /// Where the document starts.
    public var location: SourceLocation
    /// A digest of the document's source (see `DesiredModel.stampDigests`): equal digests, equal resources.
    public var digest: UInt64 = 0

    /// The resource's address.
    public var address: Address {
        Address(kind: kind, region: region?.value, tenant: tenant?.value, name: name.value)
    }
}

/// A decoded manifest document: its identity and its typed spec.
///
/// The spec is kept in a shared, immutable box: a model of 100,000 instances is merged, sliced and kept (the service
/// holds the last few revisions) by copying resources, and a copy is then the identity and one reference instead of
/// every field of the spec (an instance's is about 450 bytes).
public struct Resource<Spec: ResourceSpec>: Sendable {
    /// Identity.
    public var meta: ObjectMeta
    @usableFromInline var box: SpecBox<Spec>
    /// The desired state. Inlinable, so that reading one field of it in another module reads that field in place
    /// instead of copying the whole spec out of its box first.
    @inlinable public var spec: Spec {
        get { box.value }
        set { box = SpecBox(newValue) }
    }

    /// A resource.
    public init(meta: ObjectMeta, spec: Spec) {
        self.meta = meta
        box = SpecBox(spec)
    }

    /// The name.
    public var name: String { meta.name.value }
    /// The region, if any.
    public var region: String? { meta.region?.value }
    /// The tenant, if any.
    public var tenant: String? { meta.tenant?.value }
    /// The address.
    public var address: Address { meta.address }
}

/// Where a resource's spec lives (see `Resource`).
@usableFromInline final class SpecBox<Spec: Sendable>: Sendable {
    @usableFromInline let value: Spec
    @usableFromInline init(_ value: Spec) { self.value = value }
}

/// A kind's spec: the desired state of one resource.
public protocol ResourceSpec: Sendable, Encodable {
    /// The kind whose `spec` this is.
    static var kind: Kind { get }
}

/// A spec that decodes itself from manifest events.
protocol DecodableSpec: ResourceSpec {
    /// The fields `spec` accepts, for "unknown field" hints.
    static var fields: [String] { get }
    /// Decodes the spec; nil (with diagnostics) when it is unusable.
    static func decode(from decoder: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> Self?
}

extension Resource: Encodable {
    private enum CodingKeys: String, CodingKey { case kind, name, region, tenant, address, source, spec }

    /// Encodes identity, source position and spec.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(meta.kind, forKey: .kind)
        try container.encode(meta.name, forKey: .name)
        try container.encodeIfPresent(meta.region, forKey: .region)
        try container.encodeIfPresent(meta.tenant, forKey: .tenant)
        try container.encode(address, forKey: .address)
        if let files = encoder.userInfo[.sourceFiles] as? SourceFiles {
            try container.encode(files.describe(meta.location), forKey: .source)
        }
        let specEncoder = container.superEncoder(forKey: .spec)
        try spec.encode(to: specEncoder)
        if let defaults = spec as? any SpecDefaults {
            // JSONEncoder merges a second keyed container of the same encoder into the first.
            var fields = specEncoder.container(keyedBy: SpecKey.self)
            for (key, value) in defaults.defaultedFields(name: meta.name.value) { try fields.encode(value, forKey: SpecKey(stringValue: key)) }
        }
    }
}

extension CodingUserInfoKey {
    /// Set to a `SourceFiles` to include each resource's `path:line:column` in JSON output.
    public static let sourceFiles = CodingUserInfoKey(rawValue: "stacklab.sourceFiles")!
}
