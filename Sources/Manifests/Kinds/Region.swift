import YAML

/// Whether a region serves tenants or is the CI gate's staging ground.
public enum Environment: String, Sendable, CaseIterable, Codable {
    case production, staging
}

/// A region: one sponsor's site, at least three servers. Region-wide settings live here.
public struct RegionSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.region
    static let fields = ["sponsor", "description", "environment", "cpuAllocationRatio", "ramAllocationRatio", "maxDeleteShare", "internalRanges"]

    /// Who provides the hardware.
    public var sponsor: Located<String>?
    /// Free text.
    public var description: Located<String>?
    /// production or staging (default production).
    public var environment: Located<Environment>?
    /// vCPUs scheduled per physical CPU (default 16).
    public var cpuAllocationRatio: Located<FixedPoint>?
    /// RAM scheduled per physical byte (default 1.5).
    public var ramAllocationRatio: Located<FixedPoint>?
    /// Largest share of the region's instances one plan may delete without `--allow-mass-delete` (default 0.25).
    public var maxDeleteShare: Located<FixedPoint>?
    /// The provider's internal networks, which the SWS egress filter keeps instances from opening connections to
    /// unless a Filter allows it (default 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16).
    public var internalRanges: Located<[Located<IPv4Network>]>?

    /// The internal ranges in force.
    public var effectiveInternalRanges: [IPv4Network] {
        internalRanges?.value.map(\.value) ?? ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].compactMap { try? IPv4Network.parse($0).get() }
    }

    /// The CPU allocation ratio in force.
    public var effectiveCPURatio: Double { cpuAllocationRatio.map { Double($0.value.units) / 1e6 } ?? 16 }
    /// The RAM allocation ratio in force.
    public var effectiveRAMRatio: Double { ramAllocationRatio.map { Double($0.value.units) / 1e6 } ?? 1.5 }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> RegionSpec? {
        var spec = RegionSpec()
        try d.mapping(what()) { key throws(YAMLError) in
            switch key.value {
            case "sponsor": spec.sponsor = try d.string("sponsor")
            case "description": spec.description = try d.string("description")
            case "environment": spec.environment = try d.choice("environment", Environment.self)
            case "cpuAllocationRatio": spec.cpuAllocationRatio = try d.positive(d.decimal("cpuAllocationRatio"), "cpuAllocationRatio")
            case "ramAllocationRatio": spec.ramAllocationRatio = try d.positive(d.decimal("ramAllocationRatio"), "ramAllocationRatio")
            case "maxDeleteShare": spec.maxDeleteShare = try d.decimal("maxDeleteShare")
            case "internalRanges": spec.internalRanges = try d.list("internalRanges") { () throws(YAMLError) in try d.cidr("internalRanges") }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }
        return spec
    }
}

extension ManifestDecoder {
    /// Passes `value` through if it is greater than zero; otherwise reports it.
    func positive(_ value: Located<FixedPoint>?, _ field: String) -> Located<FixedPoint>? {
        guard let value else { return nil }
        guard value.value.units > 0 else {
            report(.error("'\(field)' must be greater than zero", at: value.location))
            return nil
        }
        return value
    }
}
