import YAML

/// Disk media a flavor's root disk lives on.
public enum DiskType: String, Sendable, CaseIterable, Codable {
    case hdd, ssd
}

/// An instance size.
public struct FlavorSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.flavor
    static let fields = ["vcpus", "ram", "disk", "ephemeral", "diskType"]

    /// Virtual CPUs.
    public var vcpus: Located<Int>
    /// Memory.
    public var ram: Located<ByteSize>
    /// Root disk.
    public var disk: Located<ByteSize>
    /// Ephemeral disk (default none).
    public var ephemeral: Located<ByteSize>?
    /// hdd or ssd (default hdd).
    public var diskType: Located<DiskType>?

    /// Root plus ephemeral disk, in bytes (saturating: a sum past 16 EiB fits nowhere anyway).
    /// The smallest RAM and root disk a flavor may give: below them a guest cannot boot (and libvirt refuses some).
    public static let minimumRAM = ByteSize(bytes: 64 << 20)
    public static let minimumDisk = ByteSize(bytes: 1 << 30)

    public var diskDemand: UInt64 {
        disk.value.bytes.saturatingAdd(ephemeral?.value.bytes ?? 0)
    }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> FlavorSpec? {
        var vcpus: Located<Int>?, ram: Located<ByteSize>?, disk: Located<ByteSize>?
        var ephemeral: Located<ByteSize>?, diskType: Located<DiskType>?
        guard try d.mapping(what(), required: ["vcpus", "ram", "disk"], { key throws(YAMLError) in
            switch key.value {
            case "vcpus": vcpus = try d.int("vcpus", in: 1...1024)
            case "ram": ram = try d.byteSize("ram", atLeast: FlavorSpec.minimumRAM)
            case "disk": disk = try d.byteSize("disk", atLeast: FlavorSpec.minimumDisk)
            case "ephemeral": ephemeral = try d.byteSize("ephemeral")
            case "diskType": diskType = try d.choice("diskType", DiskType.self)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let vcpus, let ram, let disk else { return nil }
        return FlavorSpec(vcpus: vcpus, ram: ram, disk: disk, ephemeral: ephemeral, diskType: diskType)
    }
}
