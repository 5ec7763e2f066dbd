import YAML

/// The three Swift rings.
public enum RingType: String, Sendable, CaseIterable, Codable {
    case account, container, object

    /// The storage server port Swift uses by default for this ring.
    public var defaultPort: Int {
        switch self {
        case .account: 6202
        case .container: 6201
        case .object: 6200
        }
    }
}

/// Which devices a ring uses.
public struct DeviceSelection: Sendable, Encodable {
    /// Node names (default: every storage node of the region).
    public var nodes: Located<[Located<String>]>?
    /// Disk names on those nodes (default: all their disks).
    public var disks: Located<[Located<String>]>?
    /// Storage server port (default by ring type).
    public var port: Located<Int>?

    static let fields = ["nodes", "disks", "port"]

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> DeviceSelection? {
        var selection = DeviceSelection()
        guard try d.mapping(what(), { key throws(YAMLError) in
            switch key.value {
            case "nodes": selection.nodes = try d.list("nodes") { () throws(YAMLError) in try d.name("nodes") }
            case "disks": selection.disks = try d.list("disks") { () throws(YAMLError) in try d.name("disks") }
            case "port": selection.port = try d.int("port", in: 1...65535)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        return selection
    }
}

/// A Swift ring of a region.
public struct RingSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.ring
    static let fields = ["type", "partPower", "replicas", "minPartHours", "overload", "devices"]

    /// account, container or object (default: the ring's name).
    public var type: Located<RingType>?
    /// log2 of the partition count (1...32).
    public var partPower: Located<Int>
    /// The largest part power accepted: 2^22 partitions (4 Mi) serve far more disks than a region has, and a larger
    /// one would cost the planner gigabytes per ring.
    public static let maxPartPower = 22
    /// Replica count, fractional allowed (≥ 1).
    public var replicas: Located<FixedPoint>
    /// Hours before a partition may move again (default 1).
    public var minPartHours: Located<Int>?
    /// Extra share a device may take beyond its weight to improve dispersion (default 0).
    public var overload: Located<FixedPoint>?
    /// Which devices the ring uses.
    public var devices: DeviceSelection?

    /// Replicas as a double.
    public var replicaCount: Double { Double(replicas.value.units) / 1e6 }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> RingSpec? {
        var type: Located<RingType>?, partPower: Located<Int>?, replicas: Located<FixedPoint>?
        var minPartHours: Located<Int>?, overload: Located<FixedPoint>?, devices: DeviceSelection?
        guard try d.mapping(what(), required: ["partPower", "replicas"], { key throws(YAMLError) in
            switch key.value {
            case "type": type = try d.choice("type", RingType.self)
            case "partPower": partPower = try d.int("partPower", in: 1...RingSpec.maxPartPower)
            case "replicas":
                replicas = try d.decimal("replicas")
                if let value = replicas, value.value.units < 1_000_000 {
                    d.report(.error("'replicas' must be at least 1, found \(value.value.formatted())", at: value.location,
                                    hint: "Swift needs one or more replicas; fractional values like 2.5 are allowed"))
                    replicas = nil
                }
            case "minPartHours": minPartHours = try d.int("minPartHours", in: 0...8760)
            case "overload": overload = try d.decimal("overload")
            case "devices": devices = try DeviceSelection.decode(from: d, what: "device selection")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let partPower, let replicas else { return nil }
        return RingSpec(type: type, partPower: partPower, replicas: replicas, minPartHours: minPartHours, overload: overload, devices: devices)
    }
}
