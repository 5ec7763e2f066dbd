import YAML

/// A local-storage block volume.
public struct VolumeSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.volume
    static let fields = ["size", "instance", "device", "type", "snapshots", "from"]

    /// Capacity.
    public var size: Located<ByteSize>
    /// The instance (same tenant and region) it is attached to.
    public var instance: Located<String>?
    /// Guest device name (`vdb`).
    public var device: Located<String>?
    /// hdd or ssd (default hdd).
    public var type: Located<DiskType>?
    /// Snapshots kept of it in the region's object store.
    public var snapshots: Located<[Snapshot]>?
    /// The snapshot its content comes from when it is created.
    public var from: Located<SnapshotReference>?

    /// A snapshot of a volume: a one-off (taken once, kept until it leaves the list), or a schedule (`every`: one
    /// taken each time that many hours have passed since the last, named `<name>-<YYYYMMDDHH>` in UTC, the newest
    /// `keep` kept).
    public struct Snapshot: Sendable, Encodable, Hashable {
        public var name: Located<String>
        /// Hours between scheduled snapshots.
        public var every: Located<Int>?
        /// How many scheduled snapshots are kept (default 7).
        public var keep: Located<Int>?

        static let fields = ["name", "every", "keep"]

        /// The scheduled snapshots kept when `keep` is not given.
        public static let defaultKeep = 7

        static func decode(from d: ManifestDecoder) throws(YAMLError) -> Snapshot? {
            var name: Located<String>?, every: Located<Int>?, keep: Located<Int>?
            guard try d.mapping("a snapshot", required: ["name"], { key throws(YAMLError) in
                switch key.value {
                case "name": name = try d.name("name")
                case "every": every = try d.parsed("every", expected: "a period in hours or days", hint: "write 6h, 24h or 7d") { Self.hours($0) }
                case "keep": keep = try d.int("keep", in: 1...10_000)
                default: try d.unknownField(key, in: "a snapshot", known: fields)
                }
            }) != nil, let name else { return nil }
            return Snapshot(name: name, every: every, keep: keep)
        }

        /// `6h` → 6, `7d` → 168; nil for anything else.
        static func hours(_ text: String) -> Int? {
            guard let unit = text.last, let count = Int(text.dropLast()), count > 0, count <= 100_000 else { return nil }
            switch unit {
            case "h": return count
            case "d": return count * 24
            default: return nil
            }
        }
    }

    /// A stored snapshot: the volume (same tenant and region; it may have left the manifests) and the snapshot's name.
    public struct SnapshotReference: Sendable, Encodable, Hashable {
        public var volume: Located<String>
        public var snapshot: Located<String>

        static func decode(from d: ManifestDecoder) throws(YAMLError) -> Located<SnapshotReference>? {
            var volume: Located<String>?, snapshot: Located<String>?
            guard let mapping = try d.mapping("'from'", required: ["volume", "snapshot"], { key throws(YAMLError) in
                switch key.value {
                case "volume": volume = try d.name("volume")
                case "snapshot": snapshot = try d.string("snapshot")
                default: try d.unknownField(key, in: "'from'", known: ["volume", "snapshot"])
                }
            }), let volume, let snapshot else { return nil }
            return Located(SnapshotReference(volume: volume, snapshot: snapshot), at: d.location(mapping.mark))
        }
    }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> VolumeSpec? {
        var size: Located<ByteSize>?, instance: Located<String>?, device: Located<String>?, type: Located<DiskType>?
        var snapshots: Located<[Snapshot]>?, from: Located<SnapshotReference>?
        guard try d.mapping(what(), required: ["size"], { key throws(YAMLError) in
            switch key.value {
            case "size": size = try d.byteSize("size")
            case "instance": instance = try d.name("instance")
            case "device":
                device = try d.parsed("device", expected: "a guest disk name", hint: "write vdb, vdc, …") { text in
                    text.hasPrefix("vd") && text.count >= 3 && text.dropFirst(2).allSatisfy(\.isLowercase) ? text : nil
                }
            case "type": type = try d.choice("type", DiskType.self)
            case "snapshots": snapshots = try d.list("snapshots") { () throws(YAMLError) in try Snapshot.decode(from: d) }
            case "from": from = try SnapshotReference.decode(from: d)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let size else { return nil }
        return VolumeSpec(size: size, instance: instance, device: device, type: type, snapshots: snapshots, from: from)
    }
}

/// A public address routed to an instance.
public struct FloatingIPSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.floatingIP
    static let fields = ["address", "instance", "network"]

    /// A specific address from the floating range (default: allocated).
    public var address: Located<IPv4Address>?
    /// The instance (same tenant and region) it points at.
    public var instance: Located<String>?
    /// The network whose floating range it comes from (default: the region's only network).
    public var network: Located<String>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> FloatingIPSpec? {
        var spec = FloatingIPSpec()
        try d.mapping(what()) { key throws(YAMLError) in
            switch key.value {
            case "address": spec.address = try d.ipv4("address")
            case "instance": spec.instance = try d.name("instance")
            case "network": spec.network = try d.name("network")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }
        return spec
    }
}

/// Traffic direction of a security group rule.
public enum Direction: String, Sendable, CaseIterable, Codable {
    case ingress, egress
}

/// One security group rule.
public struct SecurityRule: Sendable, Encodable {
    /// ingress (default) or egress.
    public var direction: Located<Direction>?
    /// Protocol (default tcp).
    public var proto: Located<IPProtocol>?
    /// Ports (absent: all).
    public var ports: Located<PortRange>?
    /// Remote network (absent with no `group`: anywhere).
    public var cidr: Located<IPv4Network>?
    /// Remote security group of the same tenant.
    public var group: Located<String>?

    static let fields = ["direction", "protocol", "ports", "cidr", "group"]

    private enum CodingKeys: String, CodingKey { case direction, proto = "protocol", ports, cidr, group }
}

/// A tenant's firewall rules for its instances.
public struct SecurityGroupSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.securityGroup
    static let fields = ["description", "rules"]

    /// Free text.
    public var description: Located<String>?
    /// Rules.
    public var rules: Located<[SecurityRule]>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> SecurityGroupSpec? {
        var spec = SecurityGroupSpec()
        try d.mapping(what()) { key throws(YAMLError) in
            switch key.value {
            case "description": spec.description = try d.string("description")
            case "rules": spec.rules = try d.list("rules") { () throws(YAMLError) in try decodeRule(d) }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }
        return spec
    }

    private static func decodeRule(_ d: ManifestDecoder) throws(YAMLError) -> SecurityRule? {
        var rule = SecurityRule()
        var remotes = 0
        guard let mapping = try d.mapping("a rule", { key throws(YAMLError) in
            if key.value == "cidr" || key.value == "group" { remotes += 1 }
            switch key.value {
            case "direction": rule.direction = try d.choice("direction", Direction.self)
            case "protocol": rule.proto = try d.choice("protocol", IPProtocol.self)
            case "ports": rule.ports = try d.portRange("ports")
            case "cidr": rule.cidr = try d.cidr("cidr")
            case "group": rule.group = try d.name("group")
            default: try d.unknownField(key, in: "a rule", known: SecurityRule.fields)
            }
        }) else { return nil }
        if remotes == 2 {
            d.error("a rule takes 'cidr' or 'group', not both", at: mapping.mark)
        }
        return rule
    }
}

/// A tenant's SSH public key, injected into its instances.
public struct KeypairSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.keypair
    static let fields = ["publicKey"]

    /// The OpenSSH public key line.
    public var publicKey: Located<String>

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> KeypairSpec? {
        var key: Located<String>?
        guard try d.mapping(what(), required: ["publicKey"], { field throws(YAMLError) in
            if field.value == "publicKey" { key = try d.publicKey("publicKey") } else { try d.unknownField(field, in: what(), known: fields) }
        }) != nil else { return nil }
        return key.map { KeypairSpec(publicKey: $0) }
    }
}

