import Manifests

/// The hypervisor-level definition of one instance: what its libvirt domain must look like on its node.
/// Derived from the manifests (flavor, image, network) plus placement and address allocation.
public struct DesiredDomain: Sendable, Hashable, Codable {
    /// The instance's address (`instance/sina/devops/gerrit`).
    public var address: Address
    /// The node it runs on (`node/<region>/<name>`).
    public var node: Address
    /// The libvirt domain name: `<tenant>:<name>` (':' never occurs in manifest names, so it is unambiguous).
    public var name: String
    /// Virtual CPUs.
    public var vcpus: Int
    /// Memory in KiB.
    public var memoryKiB: UInt64
    /// The root disk (a copy-on-write volume over the image) and, if the flavor has one, the ephemeral disk.
    public var disks: [Disk]
    /// The one network interface.
    public var interface: Interface
    /// Whether the domain should be running.
    public var running: Bool
    /// The flavor and image it was made from (recorded in its metadata, so plans can name what changed).
    public var flavor: String
    public var image: String
    /// The node it was copied from, while it is being moved (recorded in its metadata, so that after a crash between
    /// the copy and the old domain's delete the copy is known to be the newer one). Not part of the spec.
    public var origin: Address? {
        get { movingFrom?.value }
        set { movingFrom = newValue.map(Boxed.init) }
    }
    /// `origin`, boxed: a plan kept for later holds a domain per instance waiting to be created, and few move.
    private var movingFrom: Boxed<Address>?

    private enum CodingKeys: String, CodingKey {
        case address, node, name, vcpus, memoryKiB, disks, interface, running, flavor, image
        case movingFrom = "origin"
    }

    /// Creates a desired domain.
    public init(address: Address, node: Address, name: String, vcpus: Int, memoryKiB: UInt64, disks: [Disk], interface: Interface,
                running: Bool, flavor: String = "", image: String = "") {
        self.flavor = flavor
        self.image = image
        self.address = address
        self.node = node
        self.name = name
        self.vcpus = vcpus
        self.memoryKiB = memoryKiB
        self.disks = disks
        self.interface = interface
        self.running = running
    }

    /// How far a running domain can grow without a restart: its definition's maximum vCPUs and memory are this many
    /// times the flavor's. Unplugged vCPUs cost nothing; memory above the flavor's stays in the guest's balloon.
    public static let liveHeadroom = 2

    /// The definition's maximum vCPUs (`<vcpu>`; the flavor's count is `current`). QEMU's i440fx limit is 255.
    public var maxVcpus: Int { max(vcpus, min(vcpus * Self.liveHeadroom, 255)) }

    /// The definition's maximum memory in KiB (`<memory>`; the flavor's is `<currentMemory>`).
    public var maxMemoryKiB: UInt64 { memoryKiB * UInt64(Self.liveHeadroom) }

    /// A disk backed by a volume in a storage pool of the node.
    public struct Disk: Sendable, Hashable, Codable {
        /// Storage pool name.
        public var pool: String
        /// Volume name in the pool.
        public var volume: String
        /// Capacity in bytes.
        public var bytes: UInt64
        /// Guest device (`vda`).
        public var device: String
        /// The image it is cloned from (root disks), as the image's `source`.
        public var image: String?

        /// Creates a disk.
        public init(pool: String, volume: String, bytes: UInt64, device: String, image: String?) {
            self.pool = pool
            self.volume = volume
            self.bytes = bytes
            self.device = device
            self.image = image
        }
    }

    /// A bridged interface with a fixed address from StackLab's IPAM.
    public struct Interface: Sendable, Hashable, Codable {
        /// Linux bridge on the node.
        public var bridge: String
        /// MAC address, derived from the instance's address so it is stable.
        public var mac: String
        /// The fixed IPv4 address.
        public var ip: IPv4Address

        /// Creates an interface.
        public init(bridge: String, mac: String, ip: IPv4Address) {
            self.bridge = bridge
            self.mac = mac
            self.ip = ip
        }
    }

    /// A stable hash of everything that defines the domain (not the node it runs on nor its power state),
    /// stored in the domain's metadata so a changed spec is seen without parsing the whole XML.
    public var specHash: String {
        var hasher = StableHasher()
        hasher.combine(shapeHash)
        hasher.combine(decimal: UInt64(vcpus))
        hasher.combine(decimal: memoryKiB)
        for disk in disks { hasher.combine(decimal: disk.bytes) }
        hasher.combine(flavor)
        return hasher.hex
    }

    /// A stable hash of what a running domain cannot change: everything in `specHash` but its vCPUs, memory, disk sizes
    /// and flavor name. Two definitions with the same shape differ only in what can grow live (within the maximums).
    public var shapeHash: String {
        var hasher = StableHasher()
        hasher.combine(address)
        hasher.combine(name)
        for disk in disks {
            hasher.combine(disk.pool)
            hasher.combine(disk.volume)
            hasher.combine(disk.device)
            hasher.combine(disk.image ?? "")
        }
        hasher.combine(interface.bridge)
        hasher.combine(Self.port(for: address))
        hasher.combine(interface.mac)
        hasher.combine(interface.ip)
        hasher.combine(image)
        return hasher.hex
    }

    /// The domain name for an instance: `<tenant>:<name>`.
    public static func name(for address: Address) -> String {
        "\(address.tenant ?? "-"):\(address.name)"
    }

    /// A UUID derived from the instance's address (name-based, version 5 layout), so a domain keeps its UUID
    /// when it is redefined or recreated, and libvirt recognises a redefinition as the same domain.
    public var uuid: String { Self.uuid(for: address) }

    /// The UUID of the domain of the instance at `address`.
    public static func uuid(for address: Address) -> String {
        var high = uuidHigh, low = uuidLow
        high.combine(address)
        low.combine(address)
        let a = (high.value & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_5000
        let b = (low.value & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        // 8-4-4-4-12 hex digits: a's 16, then b's.
        return String(unsafeUninitializedCapacity: 36) { buffer in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digits in
                StableHasher.writeHex(a, into: digits, at: 0)
                StableHasher.writeHex(b, into: digits, at: 16)
                var out = 0
                for index in 0..<32 {
                    if index == 8 || index == 12 || index == 16 || index == 20 {
                        buffer[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    buffer[out] = digits[index]
                    out += 1
                }
            }
            return 36
        }
    }

    /// The hashers of a UUID's halves, their prefixes mixed in once.
    private static let uuidHigh: StableHasher = {
        var hasher = StableHasher()
        hasher.combine("uuid-high")
        return hasher
    }()
    private static let uuidLow: StableHasher = {
        var hasher = StableHasher()
        hasher.combine("uuid-low")
        return hasher
    }()

    /// The name of the instance's port on its node (the tap device libvirt makes for its interface, `<target dev>`):
    /// `sl-` and 12 hex digits of its address, 15 characters (Linux's limit). Stable across restarts and moves, so the
    /// node's ruleset binds the port to the instance's MAC and fixed IP before the instance starts; and never `vnet…`,
    /// which libvirt keeps for names it makes itself.
    public static func port(for address: Address) -> String {
        var hasher = StableHasher()
        hasher.combine("port")
        hasher.combine(address)
        return portPrefix + String(hasher.hex.prefix(12))
    }

    /// What every instance port's name starts with: a frame from a port with this prefix that the ruleset does not know
    /// is dropped.
    public static let portPrefix = "sl-"

    /// The pool that holds tenant volumes (Volume documents) on a node; instance disks live in `stacklab-instances`.
    public static let volumePool = "stacklab-volumes"

    /// The libvirt name of a Volume's volume: `v-<16 hex digits>` of its address (unique in the region, stable).
    public static func volumeName(for volume: Address) -> String {
        var hasher = StableHasher()
        hasher.combine(volume)
        return "v-" + hasher.hex
    }

    /// A short stable id for an instance's volumes: `i-<16 hex digits>`.
    public static func volumePrefix(for address: Address) -> String {
        var hasher = StableHasher()
        hasher.combine(address)
        return "i-" + hasher.hex
    }

    /// A MAC under QEMU's prefix (52:54:00) from a hash of `address`: the first candidate StackLab's MAC allocation
    /// tries for an instance, and the next ones (`attempt` 1, 2…) when it is taken on the network.
    public static func mac(for address: Address, attempt: Int = 0) -> String {
        var hasher = StableHasher()
        hasher.combine(address)
        if attempt > 0 { hasher.combine(decimal: UInt64(attempt)) }
        let value = hasher.value
        let bytes = [UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
        return "52:54:00:" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
