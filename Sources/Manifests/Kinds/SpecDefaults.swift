/// A spec whose optional fields have defaults: `show --format json` prints them, so the JSON is the spec StackLab
/// acts on, not only what was written.
public protocol SpecDefaults {
    /// The fields left out of the manifest, with the values StackLab uses for them (`name` is the resource's name).
    func defaultedFields(name: String) -> [(key: String, value: any Encodable)]
}

struct SpecKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension RegionSpec: SpecDefaults {
    public func defaultedFields(name: String) -> [(key: String, value: any Encodable)] {
        var fields: [(key: String, value: any Encodable)] = []
        if environment == nil { fields.append(("environment", Environment.production)) }
        if cpuAllocationRatio == nil { fields.append(("cpuAllocationRatio", effectiveCPURatio)) }
        if ramAllocationRatio == nil { fields.append(("ramAllocationRatio", effectiveRAMRatio)) }
        if maxDeleteShare == nil { fields.append(("maxDeleteShare", 0.25)) }
        return fields
    }
}

extension TenantSpec: SpecDefaults {
    public func defaultedFields(name: String) -> [(key: String, value: any Encodable)] {
        billing == nil ? [("billing", BillingMode.payAsYouGo)] : []
    }
}

extension NodeSpec: SpecDefaults {
    public func defaultedFields(name: String) -> [(key: String, value: any Encodable)] {
        var fields: [(key: String, value: any Encodable)] = []
        if zone == nil { fields.append(("zone", name)) }
        if instanceStorage == nil { fields.append(("instanceStorage", Self.defaultInstanceStorage)) }
        if fileRoot == nil { fields.append(("fileRoot", "/")) }
        return fields
    }
}

extension FlavorSpec: SpecDefaults {
    public func defaultedFields(name: String) -> [(key: String, value: any Encodable)] {
        var fields: [(key: String, value: any Encodable)] = []
        if ephemeral == nil { fields.append(("ephemeral", ByteSize(bytes: 0))) }
        if diskType == nil { fields.append(("diskType", DiskType.hdd)) }
        return fields
    }
}

extension InstanceSpec: SpecDefaults {
    public func defaultedFields(name: String) -> [(key: String, value: any Encodable)] {
        var fields: [(key: String, value: any Encodable)] = []
        if state == nil { fields.append(("state", PowerState.running)) }
        if billing == nil { fields.append(("billing", BillingPeriod.hourly)) }
        return fields
    }
}

extension RingSpec: SpecDefaults {
    public func defaultedFields(name: String) -> [(key: String, value: any Encodable)] {
        var fields: [(key: String, value: any Encodable)] = []
        if type == nil { fields.append(("type", RingType(rawValue: name) ?? .object)) }
        if minPartHours == nil { fields.append(("minPartHours", 1)) }
        if overload == nil { fields.append(("overload", 0.0)) }
        return fields
    }
}
