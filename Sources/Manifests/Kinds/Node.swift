import YAML

/// What a physical server does in its region.
public enum Role: String, Sendable, CaseIterable, Codable, Hashable {
    /// Runs the API, scheduler, Swift proxy and network controller services.
    case controller
    /// Runs instances (a hypervisor).
    case compute
    /// Holds Swift object-storage devices.
    case storage
    /// Serves local-storage volumes.
    case volume
    /// Runs HAProxy for the region's public domains and tenant load balancers.
    case loadbalancer
}

/// How StackLab reaches a node over SSH.
public struct SSHSettings: Sendable, Encodable {
    /// Login user (default root).
    public var user: Located<String>?
    /// Port (default 22).
    public var port: Located<Int>?
    /// The pinned host key, as in known_hosts: `ssh-ed25519 AAAA…`.
    public var hostKey: Located<String>?

    static let fields = ["user", "port", "hostKey"]

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> SSHSettings? {
        var ssh = SSHSettings()
        guard try d.mapping(what(), { key throws(YAMLError) in
            switch key.value {
            case "user": ssh.user = try d.name("user")
            case "port": ssh.port = try d.int("port", in: 1...65535)
            case "hostKey": ssh.hostKey = try d.publicKey("hostKey")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        return ssh
    }
}

/// One disk of a storage node.
public struct Disk: Sendable, Encodable {
    /// Device name (`sdb`).
    public var name: Located<String>
    /// Capacity.
    public var size: Located<ByteSize>
    /// Ring weight (default: the size in GB, as Swift operators usually do).
    public var weight: Located<FixedPoint>?

    static let fields = ["name", "size", "weight"]

    /// The weight in force.
    public var effectiveWeight: Double {
        weight.map { Double($0.value.units) / 1e6 } ?? Double(size.value.bytes) / 1e9
    }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> Disk? {
        var name: Located<String>?, size: Located<ByteSize>?, weight: Located<FixedPoint>?
        guard try d.mapping(what(), required: ["name", "size"], { key throws(YAMLError) in
            switch key.value {
            case "name": name = try d.name("name")
            case "size": size = try d.byteSize("size")
            case "weight": weight = try d.decimal("weight")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let name, let size else { return nil }
        return Disk(name: name, size: size, weight: weight)
    }
}

/// A physical server of a region.
public struct NodeSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.node
    static let fields = ["address", "ssh", "libvirt", "roles", "cpus", "memory", "disks", "zone", "instanceStorage", "fileRoot"]
    /// The instance pool's capacity when a compute node does not say: 1 TiB.
    public static let defaultInstanceStorage = ByteSize(bytes: 1 << 40)

    /// Management IPv4 address.
    public var address: Located<IPv4Address>
    /// SSH settings.
    public var ssh: SSHSettings?
    /// libvirt URI (`qemu+ssh://root@10.0.0.1/system`) or `simulated`.
    public var libvirt: Located<String>
    /// What the node does.
    public var roles: Located<[Located<Role>]>
    /// Physical CPU threads.
    public var cpus: Located<Int>
    /// Physical memory.
    public var memory: Located<ByteSize>
    /// Disks (storage and volume nodes).
    public var disks: Located<[Disk]>?
    /// Availability zone (default: the node's own name, so every server is its own zone).
    public var zone: Located<String>?
    /// Capacity of the pool that holds instances' root and ephemeral disks (default 1 TiB): placement never
    /// overcommits it.
    public var instanceStorage: Located<ByteSize>?

    /// Where the node's host configuration is written (default `/`): a test host writes under a directory instead.
    public var fileRoot: Located<String>?

    /// `instanceStorage` or its default, in bytes.
    public var instanceStorageBytes: UInt64 { (instanceStorage?.value ?? Self.defaultInstanceStorage).bytes }

    /// Whether the node has `role`.
    public func has(_ role: Role) -> Bool { roles.value.contains { $0.value == role } }
    /// Whether the node runs on libvirt's test driver.
    public var isSimulated: Bool { libvirt.value == "simulated" }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> NodeSpec? {
        var address: Located<IPv4Address>?, ssh: SSHSettings?, libvirt: Located<String>?
        var roles: Located<[Located<Role>]>?, cpus: Located<Int>?, memory: Located<ByteSize>?
        var disks: Located<[Disk]>?, zone: Located<String>?, instanceStorage: Located<ByteSize>?, fileRoot: Located<String>?
        guard try d.mapping(what(), required: ["address", "libvirt", "roles", "cpus", "memory"], { key throws(YAMLError) in
            switch key.value {
            case "address": address = try d.ipv4("address")
            case "ssh": ssh = try SSHSettings.decode(from: d, what: "ssh settings")
            case "libvirt": libvirt = try d.libvirtURI("libvirt")
            case "roles": roles = try d.list("roles") { () throws(YAMLError) in try d.choice("roles", Role.self) }
            case "cpus": cpus = try d.int("cpus", in: 1...4096)
            case "memory": memory = try d.byteSize("memory")
            case "disks": disks = try d.list("disks") { () throws(YAMLError) in try Disk.decode(from: d, what: "a disk") }
            case "zone": zone = try d.name("zone")
            case "instanceStorage": instanceStorage = try d.byteSize("instanceStorage")
            case "fileRoot":
                fileRoot = try d.parsed("fileRoot", expected: "an absolute directory path", hint: "write e.g. /srv/test-hosts/node-1, or leave it out for /") { text in
                    let parts = text.split(separator: "/")
                    return text.hasPrefix("/") && !parts.contains("..") && !parts.contains(".") && text.utf8.count <= 4096
                        && !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? text : nil
                }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let address, let libvirt, let roles, let cpus, let memory else { return nil }
        return NodeSpec(address: address, ssh: ssh, libvirt: libvirt, roles: roles, cpus: cpus, memory: memory, disks: disks, zone: zone,
                        instanceStorage: instanceStorage, fileRoot: fileRoot)
    }
}

extension ManifestDecoder {
    /// `simulated`, or QEMU's system instance over SSH (`LibvirtURI`: no other transport, no query parameters).
    func libvirtURI(_ field: String) throws(YAMLError) -> Located<String>? {
        try parsed(field, expected: "'simulated' or a qemu+ssh://[user@]host[:port]/system URI", hint: LibvirtURI.hint) { text in
            LibvirtURI(parsing: text).map { _ in text }
        }
    }

    /// An OpenSSH public key line: `ssh-ed25519 AAAA… [comment]`.
    func publicKey(_ field: String) throws(YAMLError) -> Located<String>? {
        try parsed(field, expected: "an OpenSSH public key",
                   hint: "paste the key as in authorized_keys: ssh-ed25519 AAAA… (ed25519 or ECDSA; ssh-rsa works only for reading)") { text in
            let parts = text.split(separator: " ")
            let types = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
            guard parts.count >= 2, types.contains(String(parts[0])), parts[1].hasPrefix("AAAA"),
                  parts[1].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "/" || $0 == "=" })
            else { return nil }
            return text
        }
    }
}
